"""The key ceremony through the real CLI, for key lifecycle tests: signer,
enrolled and certified advocates and supervisors, recovery key, first org key.
Also seals records locally and loads them (with their envelopes) for tests."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
from click.testing import CliRunner

import keys
import schemas
from fieldvault import cli
from tests import factories
from tests.conftest import PASSWORD

SIGNER_PASS = 'signer passphrase long enough'
KEY_PASS = 'advocate passphrase long enough'
RECOVERY_PASS = 'recovery passphrase long enough'


def day(offset: int) -> str:
    """Return the UTC date ``offset`` days from today, YYYY-MM-DD."""
    return (dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=offset)).isoformat()


class Ceremony:
    """Homes of every staff member, logged in against ``url``."""

    def __init__(self, url: str, tmp_path, org: str, create_user) -> None:
        self.url = url
        self.org = org
        self.tmp_path = tmp_path
        self.runner = CliRunner()
        self.homes: dict[str, str] = {}
        self._create_user = create_user

    def run(self, args, input_text=None, *, ok=True):
        result = self.runner.invoke(cli, args, input=input_text, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    def login(self, name: str, roles, team='team-a') -> str:
        self._create_user(name, roles, team)
        home = str(self.tmp_path / f'home-{name}')
        self.run(['login', '--server', self.url, '--username', name, '--home', home,
                  '--password', PASSWORD])
        self.homes[name] = home
        return home

    def token(self, name: str) -> str:
        import json
        import pathlib
        return json.loads((pathlib.Path(self.homes[name]) / 'session.json').read_text())['token']

    def setup(self, *, advocates=('adv-1',), supervisors=('sup-1',), workers=('worker-1',),
              kid='oek-1') -> None:
        """Run the whole first-key ceremony."""
        self.login('admin-1', ['admin'])
        for name in advocates:
            self.login(name, ['advocate'])
        for name in supervisors:
            self.login(name, ['supervisor'])
        for name in workers:
            self.login(name, ['worker'])
        out = self.run(['admin', '--home', self.homes['admin-1'], 'init-signer'],
                       f'{SIGNER_PASS}\n{SIGNER_PASS}\n').output
        self.signer_fingerprint = out.split('fingerprint: ')[1].splitlines()[0]
        for name in (*advocates, *supervisors):
            out = self.run(['advocate', '--home', self.homes[name], 'enroll'],
                           f'{KEY_PASS}\n{KEY_PASS}\n').output
            fingerprint = out.split('admin: ')[1].strip()
            self.run(['admin', '--home', self.homes['admin-1'], 'certify', name,
                      '--fingerprint', fingerprint], f'{SIGNER_PASS}\n')
        for name in (*advocates, *supervisors, *workers):
            self.run(['pin', '--home', self.homes[name], '--fingerprint',
                      self.signer_fingerprint])
        self.recovery_file = self.tmp_path / 'recovery.json'
        self.run(['recovery', 'create', '--out', str(self.recovery_file)],
                 f'{RECOVERY_PASS}\n{RECOVERY_PASS}\n')
        self.run(['keys', '--home', self.homes['admin-1'], 'init', '--kid', kid, '--org',
                  self.org, '--recovery', str(self.recovery_file)], f'{SIGNER_PASS}\n')

    def join(self, name: str, roles, team='team-a') -> str:
        """Add a person after the first key: log in, enroll, get certified, pin."""
        home = self.login(name, roles, team)
        out = self.run(['advocate', '--home', home, 'enroll'], f'{KEY_PASS}\n{KEY_PASS}\n').output
        fingerprint = out.split('admin: ')[1].strip()
        self.run(['admin', '--home', self.homes['admin-1'], 'certify', name,
                  '--fingerprint', fingerprint], f'{SIGNER_PASS}\n')
        self.run(['pin', '--home', home, '--fingerprint', self.signer_fingerprint])
        return home

    def keys_as(self, name: str, *args, input_text=None, ok=True):
        """Run ``fieldvault keys --home <name's home> ARGS``."""
        return self.run(['keys', '--home', self.homes[name], *args], input_text, ok=ok)

    def admin(self, *args, ok=True):
        return self.run(['keys', '--home', self.homes['admin-1'], *args], f'{SIGNER_PASS}\n',
                        ok=ok)

    def manifest(self) -> dict:
        signed = httpx.get(self.url + '/keys/manifest', timeout=10).json()
        pinned = httpx.get(self.url + '/keys/signer', timeout=10).json()['public']
        return keys.verify_manifest(signed['signed'], pinned)

    def census(self) -> dict:
        return httpx.get(self.url + '/keys/census', timeout=60, headers={
            'Authorization': f'Bearer {self.token("admin-1")}'}).json()['census']

    def keyring(self, name: str) -> keys.Keyring:
        """Unlock ``name``'s grants here (what their CLI does)."""
        mine = httpx.get(self.url + '/advocates/me', timeout=10, headers={
            'Authorization': f'Bearer {self.token(name)}'}).json()
        personal = keys.AdvocateKey.unwrap(mine['wrapped'], KEY_PASS)
        pinned = httpx.get(self.url + '/keys/signer', timeout=10).json()['public']
        return keys.open_holdings(mine['grants'], personal, org=self.org,
                                  pinned_public_b64=pinned, manifest_body=self.manifest())


def sealed_records(org: str, manifest_body: dict, owner: str, count: int):
    """Return ``[(plain, sealed, envelope)]`` of ``count`` contact records."""
    out = []
    paths = list(schemas.identifying_paths('contact'))
    for _index in range(count):
        plain = factories.make_contact(owner=owner, org=org,
                                       notes=f'lifecycle note {uuid.uuid4().hex[:12]}')
        sealed, envelope = keys.seal_document(plain, paths=paths, org=org,
                                              manifest_body=manifest_body)
        out.append((plain, sealed, envelope))
    return out


def load_records(couch, records_db: str, keyvault_db: str, items, batch: int = 1000) -> None:
    """Write sealed records and envelopes straight into the databases."""
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        couch.bulk_docs(records_db, [sealed for _p, sealed, _e in chunk])
        couch.bulk_docs(keyvault_db, [envelope for _p, _s, envelope in chunk])


def opens(document: dict, envelopes: list, keyring, org: str) -> dict:
    return keys.open_document(document, envelopes=envelopes, keyring=keyring,
                              paths=schemas.identifying_paths(document['type']), org=org)

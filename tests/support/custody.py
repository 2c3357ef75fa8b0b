"""A whole deployment for stateful key-custody tests, and the oracle that
judges it by opening records with the keys people actually hold.

``Deployment`` builds a fresh set of databases on the session's real
pouchdb-server, ``create_app`` on them, serves it over loopback, and drives
it the way staff do: the real ``fieldvault`` CLI for ceremonies (each person
has their own home folder), the HTTP API for what admins do from the web
console, and a real device's Basic credentials for sync pushes.

``KeyOracle`` turns stored grants into org private keys, once per grant
(Argon2id unwraps each personal key once), and answers "does this record
open with these keys".
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from typing import Any

import httpx
from click.testing import CliRunner

import keys
import schemas
from fieldvault import cli
from keys.shares import LIVE_STATUSES
from service.app import build_services, create_app
from service.cli import ensure_databases
from service.config import Config
from tests import factories
from tests.conftest import PASSWORD, TEST_PASSWORD_PARAMS
from tests.support.live import LiveServer

SIGNER_PASS = 'signer passphrase long enough'
KEY_PASS = 'advocate passphrase long enough'
RECOVERY_PASS = 'recovery passphrase long enough'
TEAM = 'team-a'
WORKER = 'worker-1'
ADMIN = 'admin-1'
#: The sealing waiting period of the machine's deployment: real, so that an
#: account made for a sealing is refused by the product, not by luck.
WAITING_DAYS = 7


def day(offset: int) -> str:
    """Return the UTC date ``offset`` days from today, YYYY-MM-DD."""
    return (dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=offset)).isoformat()


def _random_rev(generation: int, parent: str | None = None) -> tuple[str, dict[str, Any]]:
    """Return a device-made revision id and its ``_revisions`` history."""
    digest = uuid.uuid4().hex
    ids = [digest] + ([parent.split('-', 1)[1]] if parent else [])
    return f'{generation}-{digest}', {'start': generation, 'ids': ids}


class Outcome:
    """What one CLI or HTTP step answered: accepted or refused, and the text."""

    def __init__(self, ok: bool, text: str) -> None:
        self.ok = ok
        self.text = text

    def __repr__(self) -> str:
        return f'Outcome(ok={self.ok}, text={self.text[-160:]!r})'


class Deployment:
    """One fresh fieldvault deployment, with a signer, a recovery key and staff.

    Args:
        couchdb_url: The session's pouchdb-server.
        workdir: A private folder for homes, the recovery file and backups.
    """

    def __init__(self, couchdb_url: str, workdir) -> None:
        self.workdir = workdir
        self.config = Config(couchdb_url=couchdb_url,
                             db_prefix=f'm{uuid.uuid4().hex[:10]}_', org='org-test',
                             sealing_waiting_days=WAITING_DAYS, **TEST_PASSWORD_PARAMS)
        self.org = self.config.org
        self.services = build_services(self.config)
        ensure_databases(self.services)
        self.live = LiveServer(create_app(services=self.services))
        self.url = self.live.url
        self.runner = CliRunner()
        self.homes: dict[str, str] = {}
        self.env = {'FIELDVAULT_COUCHDB_URL': couchdb_url,
                    'FIELDVAULT_DB_PREFIX': self.config.db_prefix,
                    'FIELDVAULT_ORG': self.org,
                    'FIELDVAULT_PASSWORD_HASH_MEMORY_KIB': '1024',
                    'FIELDVAULT_PASSWORD_HASH_ITERATIONS': '1'}
        self.recovery_file = workdir / 'recovery.json'
        self._device: dict[str, str] | None = None

    # -- plumbing ------------------------------------------------------------

    def db(self, name: str) -> str:
        return self.services.db(name)

    @property
    def couch(self):
        return self.services.couch

    def close(self) -> None:
        """Stop serving and drop this deployment's databases."""
        self.live.stop()
        for name in ('records', 'keyvault', 'directory', 'config', 'audit', 'quarantine'):
            try:
                self.couch.delete_db(self.db(name))
            except Exception:  # noqa: BLE001 - best effort; the server is per session
                pass
        self.couch.close()

    def cli(self, args: list[str], input_text: str | None = None, *,
            env: dict[str, str] | None = None) -> Outcome:
        result = self.runner.invoke(cli, args, input=input_text, env=env,
                                    catch_exceptions=False)
        return Outcome(result.exit_code == 0, result.output)

    def home(self, name: str) -> str:
        return self.homes.setdefault(name, str(self.workdir / f'home-{name}'))

    def login(self, name: str) -> Outcome:
        """Log ``name`` in afresh (a changed role or password ends sessions)."""
        return self.cli(['login', '--server', self.url, '--username', name,
                         '--home', self.home(name), '--password', PASSWORD])

    def as_user(self, name: str, args: list[str], input_text: str | None = None) -> Outcome:
        """Run a staff command on ``name``'s machine, logged in first."""
        logged = self.login(name)
        if not logged.ok:
            return logged
        return self.cli(args, input_text)

    def token(self, name: str) -> str | None:
        answer = httpx.post(self.url + '/auth/login', timeout=30,
                            json={'username': name, 'password': PASSWORD})
        return answer.json()['token'] if answer.status_code == 200 else None

    def api(self, name: str, method: str, path: str, body: Any = None) -> httpx.Response:
        """Call the API as ``name`` (an expired or refused login answers 401)."""
        token = self.token(name)
        headers = {'Authorization': f'Bearer {token}'} if token else {}
        return httpx.request(method, self.url + path, json=body, headers=headers, timeout=60)

    # -- ceremonies ----------------------------------------------------------

    def create_user_directly(self, name: str, roles: list[str]) -> None:
        """An account made by the operator long before the run (no admin involved).

        Its ``created_at`` lies beyond the sealing waiting period, as for
        staff who have been there for months.
        """
        self.services.accounts.create_user(name, PASSWORD, roles, team=TEAM)
        doc = self.user(name)
        doc['created_at'] = int(time.time()) - (WAITING_DAYS + 30) * 86400
        self.couch.put(self.db('directory'), doc)

    def first_key(self, custodians: list[str]) -> None:
        """Signer, enrolled and certified custodians, recovery key, ``oek-1``."""
        out = self.as_user(ADMIN, ['admin', '--home', self.home(ADMIN), 'init-signer'],
                           f'{SIGNER_PASS}\n{SIGNER_PASS}\n')
        assert out.ok, out
        self.signer_fingerprint = out.text.split('fingerprint: ')[1].splitlines()[0]
        for name in custodians:
            enrolled = self.enroll_and_certify(name)
            assert enrolled.ok, enrolled
        assert self.cli(['recovery', 'create', '--out', str(self.recovery_file)],
                        f'{RECOVERY_PASS}\n{RECOVERY_PASS}\n').ok
        out = self.as_user(ADMIN, ['keys', '--home', self.home(ADMIN), 'init', '--kid', 'oek-1',
                                   '--org', self.org, '--recovery', str(self.recovery_file)],
                           f'{SIGNER_PASS}\n')
        assert out.ok, out
        self.pin(WORKER)

    def pin(self, name: str) -> Outcome:
        return self.as_user(name, ['pin', '--home', self.home(name), '--fingerprint',
                                   self.signer_fingerprint])

    def enroll_and_certify(self, name: str) -> Outcome:
        """``name`` enrolls a personal key; the admin checks the fingerprint and certifies."""
        out = self.as_user(name, ['advocate', '--home', self.home(name), 'enroll'],
                           f'{KEY_PASS}\n{KEY_PASS}\n')
        if not out.ok:
            return out
        fingerprint = out.text.split('admin: ')[1].strip()
        out = self.as_user(ADMIN, ['admin', '--home', self.home(ADMIN), 'certify', name,
                                   '--fingerprint', fingerprint], f'{SIGNER_PASS}\n')
        if out.ok:
            self.pin(name)
        return out

    def admin_keys(self, *args: str) -> Outcome:
        return self.as_user(ADMIN, ['keys', '--home', self.home(ADMIN), *args],
                            f'{SIGNER_PASS}\n')

    def operator(self, *args: str) -> Outcome:
        return self.cli(list(args), env=self.env)

    # -- reading the deployment ----------------------------------------------

    def manifest(self) -> dict[str, Any]:
        signed = self.couch.get(self.db('config'), 'key-manifest')['signed']
        return keys.verify_manifest(signed, self.signer_public())

    def signer_public(self) -> str:
        return self.couch.get(self.db('config'), 'org-signer')['public']

    def docs(self, name: str, prefix: str = '') -> list[dict[str, Any]]:
        return [doc for doc in self.couch.iter_prefix(self.db(name), prefix)
                if not doc['_id'].startswith('_')]

    def user(self, name: str) -> dict[str, Any] | None:
        return self.couch.get_or_none(self.db('directory'), f'user:{name}')

    def record_revisions(self) -> list[dict[str, Any]]:
        """Every leaf revision of every live record (conflicts included)."""
        found = []
        for doc in self.docs('records'):
            found.append(doc)
            for rev in self.couch.request('GET', f'/{self.db("records")}/{doc["_id"]}',
                                          params={'conflicts': 'true'}).json().get(
                                              '_conflicts', []):
                found.append(self.couch.request('GET', f'/{self.db("records")}/{doc["_id"]}',
                                                params={'rev': rev}).json())
        return found

    # -- a worker's tablet ---------------------------------------------------

    def device(self) -> dict[str, str]:
        """Basic credentials of the worker's enrolled tablet (enrolled once)."""
        if self._device is None:
            code = self.api(ADMIN, 'POST', '/devices', {'worker': WORKER}).json()[
                'enrollment_code']
            creds = httpx.post(self.url + '/devices/enroll', json={'code': code},
                               timeout=30).json()
            raw = f'{creds["device_id"]}:{creds["secret"]}'.encode()
            self._device = {'Authorization': 'Basic ' + base64.b64encode(raw).decode()}
        return self._device

    def push(self, docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Push documents as the tablet's replicator does (``new_edits: false``).

        Returns:
            The refusals by ``_id``; such a push answers nothing for a stored document.
        """
        answer = httpx.post(self.url + '/sync/records/_bulk_docs', headers=self.device(),
                            json={'docs': docs, 'new_edits': False}, timeout=60)
        assert answer.status_code == 201, answer.text
        return {entry['id']: entry for entry in answer.json()}

    @staticmethod
    def as_new_revision(doc: dict[str, Any], parent: str | None = None) -> dict[str, Any]:
        """``doc`` as a tablet's next revision after ``parent`` (or its first)."""
        generation = int(parent.split('-', 1)[0]) + 1 if parent else 1
        rev, history = _random_rev(generation, parent)
        return dict(doc, _rev=rev, _revisions=history)

    def seal(self, plain: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Seal a record as a tablet does, to the manifest's active key."""
        return keys.seal_document(plain, paths=schemas.identifying_paths(plain['type']),
                                  org=self.org, manifest_body=self.manifest())

    def new_identity(self, client_id: str) -> dict[str, Any]:
        return factories.make_record('identity', owner=WORKER, org=self.org,
                                     client_id=client_id,
                                     legal_last_name=f'Last{uuid.uuid4().hex[:10]}')


class KeyOracle:
    """Org private keys as people hold them, unwrapped once and cached.

    Args:
        org: Org id.
        signer_public: The pinned signer (grants are verified as clients do).
    """

    def __init__(self, org: str, signer_public: str) -> None:
        self.org = org
        self.signer_public = signer_public
        self._personal: dict[tuple[str, str], keys.AdvocateKey | None] = {}
        self._grants: dict[str, keys.OrgKeyPair | None] = {}
        self._pubs: dict[str, tuple[str, str]] = {}

    def personal(self, holder: str, wrapped: dict[str, Any], passphrase: str):
        """The unwrapped personal key of ``holder`` (None if it does not unwrap)."""
        cache_key = (holder, json.dumps(wrapped, sort_keys=True))
        if cache_key not in self._personal:
            try:
                self._personal[cache_key] = keys.AdvocateKey.unwrap(wrapped, passphrase)
            except keys.KeysError:
                self._personal[cache_key] = None
        return self._personal[cache_key]

    def remember_versions(self, manifest_body: dict[str, Any]) -> None:
        """Keep the public key of every version a verified manifest ever listed."""
        for entry in manifest_body['keys']:
            if entry.get('pub'):
                self._pubs.setdefault(entry['kid'], (entry['suite'], entry['pub']))

    def _every_version(self) -> dict[str, Any]:
        """A manifest body listing every version ever seen as live.

        A share carries no signature: it is bound to the manifest's ``pub``
        of its version. Key ids are never reused, so a share that opens
        against this body holds the real key of that version, whatever the
        current manifest says of it (a key that exists anywhere).
        """
        return {'org': self.org, 'keys': [
            {'kid': kid, 'suite': suite, 'pub': pub, 'status': 'active'}
            for kid, (suite, pub) in sorted(self._pubs.items())]}

    def open_grant(self, grant: dict[str, Any], personal) -> keys.OrgKeyPair | None:
        """The org key in a grant or share, as its holder's client opens it.

        A grant must carry the pinned signer's signature; a share must hold
        the private key of the ``pub`` a manifest listed for its version.
        """
        if personal is None:
            return None
        cache_key = json.dumps({k: v for k, v in grant.items() if k != '_rev'},
                               sort_keys=True) + personal.key_id
        if cache_key not in self._grants:
            try:
                if grant.get('type') == 'share':
                    self._grants[cache_key] = keys.open_share(
                        grant, personal, org=self.org, manifest_body=self._every_version())
                else:
                    self._grants[cache_key] = keys.open_grant(
                        grant, personal, org=self.org, pinned_public_b64=self.signer_public)
            except keys.KeysError:
                self._grants[cache_key] = None
        return self._grants[cache_key]

    def client_keyring(self, grants: list[dict[str, Any]], personal,
                       manifest_body: dict[str, Any]) -> keys.Keyring | None:
        """The keys the CLI's ``advocate open`` can use from these grants and shares.

        Like the CLI: only holdings of versions the manifest lists count (a
        share only of a live version), and a holding that does not open
        fails only the records that need its version.
        """
        if personal is None:
            return None
        listed = {entry['kid']: entry for entry in manifest_body['keys']}
        opened = []
        for grant in grants:
            entry = listed.get(grant.get('kek'))
            if entry is None:
                continue
            if grant.get('type') == 'share' and entry['status'] not in LIVE_STATUSES:
                continue
            key = self.open_grant(grant, personal)
            if key is not None:
                opened.append(key)
        if not opened:
            return None
        try:
            return keys.Keyring(opened)
        except keys.KeysError:
            return None


def keyrings(org_keys: list[keys.OrgKeyPair]) -> list[keys.Keyring]:
    """Spread keys over keyrings with one key per version each (all are tried)."""
    layers: list[dict[str, keys.OrgKeyPair]] = []
    seen = set()
    for key in org_keys:
        if (key.kid, key.public_b64()) in seen:
            continue
        seen.add((key.kid, key.public_b64()))
        for layer in layers:
            if key.kid not in layer:
                layer[key.kid] = key
                break
        else:
            layers.append({key.kid: key})
    return [keys.Keyring(layer.values()) for layer in layers]


def opens(document: dict[str, Any], envelopes: list[dict[str, Any]],
          rings: list[keys.Keyring], org: str) -> dict[str, Any] | None:
    """Return the plaintext if any envelope of ``document`` opens with any keyring."""
    listed = set((document.get('fle') or {}).get('keys', {}))
    candidates = [envelope for envelope in envelopes
                  if isinstance(envelope, dict) and envelope.get('rkid') in listed
                  and envelope.get('doc') == document.get('_id')]
    for envelope in candidates:
        for ring in rings:
            if envelope.get('kek') not in ring:
                continue
            try:
                return keys.open_document(document, envelopes=[envelope], keyring=ring,
                                          paths=schemas.identifying_paths(document['type']),
                                          org=org)
            except keys.KeysError:
                continue
    return None

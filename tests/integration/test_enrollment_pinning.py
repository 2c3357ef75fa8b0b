"""The signer fingerprint travels out of band: a real PouchDB 9 tablet enrolls
with the code the admin's CLI prints (secret plus the admin's pinned signer
fingerprint) and refuses to seal when the operator has rewritten the
``org-signer`` and ``key-manifest`` documents of the config database."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

import keys
import schemas
from tests import factories
from tests.conftest import PASSWORD
from tests.integration.conftest import ORG, ROOT, TABLET
from tests.support.lifecycle import Ceremony

pytestmark = pytest.mark.integration

_CODE = re.compile(r'enrollment code: (fve1\.\S+)')


def _new_tablet(stack, code: str, name: str, plain_docs: list[dict]) -> dict:
    config = {'dir': str(stack.tmp_path / f'tablet-{name}'), 'url': stack.service.url + '/sync/',
              'db': 'records', 'action': 'enroll_and_seal', 'base_url': stack.service.url,
              'enrollment_code': code, 'org': ORG, 'plain_docs': plain_docs,
              'paths': {doc['type']: list(schemas.identifying_paths(doc['type']))
                        for doc in plain_docs}}
    path = stack.tmp_path / f'{name}-{time.time_ns()}.json'
    path.write_text(json.dumps(config))
    done = subprocess.run(['node', str(TABLET), str(path)], cwd=ROOT, capture_output=True,
                          timeout=120)
    assert done.stdout, done.stderr.decode()[-2000:]
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def _register(ceremony, worker: str, qr_path) -> str:
    out = ceremony.run(['devices', '--home', ceremony.homes['admin-1'], 'register', worker,
                        '--qr-out', str(qr_path)]).output
    return _CODE.search(out).group(1)


def test_a_new_tablet_refuses_a_signer_the_operator_swapped(stack, tmp_path):
    services = stack.services
    ceremony = Ceremony(stack.service.url, tmp_path, ORG,
                        lambda name, roles, team: services.accounts.create_user(
                            name, PASSWORD, roles, team=team))
    ceremony.setup(advocates=('adv-1',), supervisors=(), workers=())
    services.accounts.create_user('w-new', PASSWORD, ['worker'], team='team-a')
    real_kid = ceremony.manifest()['keys'][0]['kid']

    # The honest server: the code's fingerprint is the admin's pin, the tablet seals.
    qr = tmp_path / 'enroll.svg'
    code = _register(ceremony, 'w-new', qr)
    fingerprint = ceremony.signer_fingerprint.replace(' ', '')
    assert code.endswith('.' + fingerprint) and qr.read_text().startswith('<?xml')
    first = factories.make_record('contact', owner='w-new', org=ORG)
    honest = _new_tablet(stack, code, 'honest', [first])
    assert honest['ok'] and honest['kid'] == real_kid, honest
    stored = services.couch.get(services.db('records'), first['_id'])
    assert list(stored['fle']['keys'].values())[0]['kek'] == real_kid

    # The operator rewrites the config database: their signer, their org key.
    operator = keys.SigningKey.generate()
    their_key = keys.OrgKeyPair.generate('oek-op')
    config_db = services.db('config')
    signer_doc = services.couch.get(config_db, 'org-signer')
    services.couch.put(config_db, dict(signer_doc, public=operator.public_b64(),
                                       fingerprint=operator.fingerprint()))
    manifest_doc = services.couch.get(config_db, 'key-manifest')
    body = keys.build_manifest(ORG, manifest_doc['seq'] + 1, [their_key.manifest_entry('active')])
    services.couch.put(config_db, dict(manifest_doc, seq=body['seq'],
                                       signed=keys.sign_manifest(body, operator)))

    # The admin registers a new tablet: the code still carries the admin's pin.
    code = _register(ceremony, 'w-new', tmp_path / 'enroll-2.png')
    assert code.endswith('.' + fingerprint)
    second = factories.make_record('contact', owner='w-new', org=ORG)
    refused = _new_tablet(stack, code, 'after-rewrite', [second])
    assert refused == {'ok': False, 'refused': 'SignerMismatch', 'ids': [], 'denied': 0}
    assert services.couch.get_or_none(services.db('records'), second['_id']) is None
    vault = services.couch.all_docs(services.db('keyvault'), include_docs=True)
    assert not [row for row in vault if (row.get('doc') or {}).get('kek') == 'oek-op']

"""The example records in docs/examples work as docs/OPERATIONS.md says:
each validates, and each a worker may capture is submitted through the real
CLI by ``worker-1`` of the default org, stored with every identifying field
sealed."""

from __future__ import annotations

import json
import pathlib
import uuid

import pytest

import schemas
from schemas import lifecycle
from service.config import Config
from tests.conftest import TEST_PASSWORD_PARAMS
from tests.support.lifecycle import Ceremony

pytestmark = pytest.mark.functional

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / 'docs' / 'examples'
TYPES = sorted(path.stem for path in EXAMPLES.glob('*.json'))


@pytest.fixture
def test_config(couch_server) -> Config:
    """The examples name the default org, as a fresh deployment has it."""
    return Config(couchdb_url=couch_server.url, db_prefix=f't{uuid.uuid4().hex[:10]}_',
                  **TEST_PASSWORD_PARAMS)


def test_there_is_an_example_of_every_record_type():
    assert TYPES == sorted(schemas.RECORD_TYPES)


@pytest.mark.parametrize('doc_type', TYPES)
def test_each_example_is_valid_and_refused_in_the_clear_by_the_api(doc_type, client, users):
    document = json.loads((EXAMPLES / f'{doc_type}.json').read_text())
    assert schemas.validate_document(document, sealed=False) == document
    token = users.token('adv-maria', ['advocate'])
    answer = client.simulate_post('/records/validate', json=document,
                                  headers=users.bearer(token))
    assert answer.status_code == 422, answer.text
    present = [pointer for pointer in schemas.identifying_paths(doc_type)
               if schemas.pointers.resolve(document, pointer) is not None]
    assert present
    for pointer in present:
        node = answer.json['fields']
        for token_ in pointer.strip('/').split('/'):
            node = node[token_]
        value = schemas.pointers.resolve(document, pointer)
        texts = [value] if isinstance(value, str) else []
        assert all(text not in answer.text for text in texts)


def test_each_example_is_submitted_by_worker_1_as_documented(live, services, users, tmp_path,
                                                             test_config):
    assert test_config.org == 'org-default'
    ceremony = Ceremony(live.url, tmp_path, test_config.org,
                        lambda name, roles, team: users.create(name, roles, team=team))
    ceremony.setup(workers=('worker-1',))
    home = ceremony.homes['worker-1']
    records = services.db('records')
    # In the order of a worker's day: the case's field actions need the
    # screening that records the youth's assent and the youth's signed
    # participation consent (the consent example is a release of
    # information, so the participation consent is made from it).
    participation = dict(json.loads((EXAMPLES / 'consent.json').read_text()),
                         _id=f'consent:{uuid.uuid4()}', consent_type='program_participation')
    participation_file = tmp_path / 'participation.json'
    participation_file.write_text(json.dumps(participation))
    submitted = ceremony.run(['intake', '--home', home, 'submit', str(participation_file)])
    assert f'submitted {participation["_id"]}' in submitted.output
    order = ['contact', 'screening', *TYPES]
    for doc_type in dict.fromkeys(name for name in order if name in lifecycle.CAPTURE['worker']):
        path = EXAMPLES / f'{doc_type}.json'
        plain = json.loads(path.read_text())
        result = ceremony.run(['intake', '--home', home, 'submit', str(path)])
        assert f'submitted {plain["_id"]}' in result.output
        stored = services.couch.get(records, plain['_id'])
        paths = list(schemas.identifying_paths(doc_type))
        present = [pointer for pointer in paths
                   if schemas.pointers.resolve(plain, pointer) is not None]
        assert present, f'{doc_type} example holds no identifying value'
        for pointer in present:
            assert schemas.pointers.resolve(stored, pointer)['fle'] == 1
        assert stored['owner'] == 'worker-1'

"""Erasure reaches the bytes: after a sealing, no file of the embedded
database (pouchdb-server's data folder) holds a byte string of the youth's
shredded envelopes, while another youth's envelopes are still there and open."""

from __future__ import annotations

import pathlib

import pytest

import keys
import schemas
from sync.erasure import _FREEZE, rebuild_database
from tests.functional.test_sealed_late_arrivals import (  # noqa: F401 - the world fixture
    _screening,
    _seal,
    _youth_code,
    world,
)
from tests.functional.test_sync_gateway import ORG, _push, _with_rev

pytestmark = pytest.mark.functional


def _fragments(envelope) -> list[bytes]:
    """Every 12-character slice of the envelope's sealed key (``enc``) and ciphertext (``ct``).

    LevelDB may Snappy-compress its table files, which can split a long
    string; a slice survives unless a copy operation lands inside it.
    """
    found = []
    for name in ('enc', 'ct'):
        value = envelope[name]
        found += [value[start:start + 12].encode() for start in range(0, len(value) - 11, 12)]
    return found


def _files_holding(data_dir: pathlib.Path, fragments: list[bytes]) -> dict[str, int]:
    """Return ``{file: fragments found}`` over every file under the database's folder."""
    hits = {}
    for path in data_dir.rglob('*'):
        if path.is_file():
            raw = path.read_bytes()
            count = sum(1 for fragment in fragments if fragment in raw)
            if count:
                hits[str(path.relative_to(data_dir))] = count
    return hits


def test_no_byte_of_a_shredded_envelope_remains_in_the_database_files(
        client, world, services, couch_server):
    code = _youth_code()
    sealed_docs = [_with_rev(doc) for _ in range(2) for doc in _screening(world, code)]
    kept_record, kept_envelope = (_with_rev(doc) for doc in _screening(world, _youth_code(code)))
    assert _push(client, world['device'], [*sealed_docs, kept_record, kept_envelope]).json == []
    shredded = [doc for doc in sealed_docs if doc['_id'].startswith('rk:')]
    # A second revision of one of them is refused and quarantined whole (an
    # envelope holds no plaintext): that copy must go too.
    again = _with_rev(dict(shredded[0], kek='oek-0'), 1, 'd' * 32)
    assert [entry['error'] for entry in _push(client, world['device'], [again]).json] == [
        'forbidden']
    data_dir = pathlib.Path(couch_server.data_dir)
    # The scan sees through the storage format: before the sealing it finds them.
    for envelope in shredded:
        assert _files_holding(data_dir, _fragments(envelope))

    _seal(client, world, code)

    for envelope in shredded:
        assert _files_holding(data_dir, _fragments(envelope)) == {}
    assert _files_holding(data_dir, _fragments(kept_envelope))
    # The other youth's record still opens, with the envelope the vault kept.
    opened = client.simulate_post(f'/records/{kept_record["_id"]}/open',
                                  json={'purpose': 'case_management'},
                                  headers=world['h']['sup'])
    assert opened.status_code == 200, opened.text
    org_key = world['org_key']
    plain = keys.open_document(opened.json['document'], envelopes=opened.json['envelopes'],
                               keyring=keys.Keyring([org_key]),
                               paths=schemas.identifying_paths('screening'), org=ORG)
    assert plain['youth_code'] == kept_record['youth_code']
    # The rebuilt vault still refuses the shredded keys and keeps its other documents.
    vault = services.db('keyvault')
    assert all(services.couch.all_docs(vault, keys=[doc['_id']])[0]['value']['deleted']
               for doc in shredded)
    assert services.couch.get(vault, kept_envelope['_id'])['_rev'] == kept_envelope['_rev']
    assert not services.couch.db_exists(f'{vault}__rebuild')


def test_a_frozen_vault_fails_writes_for_a_retry_and_a_stopped_rebuild_is_merged_back(
        services):
    """Writes during a rebuild fail as errors PouchDB retries; a left-over copy is never lost."""
    couch, db = services.couch, services.db('keyvault')
    couch.put(db, {'_id': 'grant:keep', 'type': 'grant'})
    spare = f'{db}__rebuild'
    couch.ensure_db(spare)
    couch.put(spare, {'_id': 'grant:only-in-the-copy', 'type': 'grant'})
    couch.put(spare, dict(_FREEZE))
    answer = couch.bulk_docs(spare, [{'_id': 'rk:late', 'type': 'rk'}])
    assert answer[0].get('error') not in (None, 'forbidden', 'unauthorized')
    rebuild_database(couch, db)
    assert {row['id'] for row in couch.all_docs(db)} == {'grant:keep', 'grant:only-in-the-copy'}
    assert not couch.db_exists(spare)

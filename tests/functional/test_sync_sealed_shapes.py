"""The gateway stores a pushed record only when its sealed values and header have the fle/1 shape.

Each broken record differs from one the gateway accepts in a single member,
so its refusal can only come from that shape rule; the quarantined copy
keeps no broken sealed value.
"""

from __future__ import annotations

import copy

import pytest

import fle
from tests.functional.test_sync_gateway import ORG, _enroll, _push, _with_rev
from tests.integration.records import publish_test_manifest, sealed_contact

pytestmark = pytest.mark.functional


@pytest.fixture(autouse=True)
def published(services):
    """The manifest the test records are sealed to, so their envelopes are accepted."""
    return publish_test_manifest(services.couch, services.db('config'), ORG)


@pytest.fixture
def admin(users):
    return users.bearer(users.token('admin-shapes', ['admin']))


def _first_sealed(record):
    return next(name for name, value in record.items()
                if isinstance(value, dict) and 'ct' in value)


def _break_nonce(record, name):
    record[name]['n'] = fle.base64url.encode(bytes(16))


def _break_ciphertext_length(record, name):
    record[name]['ct'] = fle.base64url.encode(fle.base64url.decode(record[name]['ct'])[:-1])


def _break_ciphertext_spelling(record, name):
    # The last character of 16 + 32k bytes carries 2 unused bits: set them.
    last = record[name]['ct'][-1]
    alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    record[name]['ct'] = record[name]['ct'][:-1] + alphabet[alphabet.index(last) | 1]


def _break_rkid(record, name):
    record[name]['rk'] = record[name]['rk'].upper()


def _break_commit(record, name):
    entry = next(iter(record['fle']['keys'].values()))
    entry['commit'] = fle.base64url.encode(bytes(31))


BREAKS = {
    'nonce_not_12_bytes': _break_nonce,
    'ciphertext_impossible_length': _break_ciphertext_length,
    'ciphertext_not_canonical': _break_ciphertext_spelling,
    'rkid_uppercase': _break_rkid,
    'header_commit_not_32_bytes': _break_commit,
}


@pytest.mark.parametrize('rule', sorted(BREAKS))
def test_a_record_breaking_one_shape_rule_is_refused_and_kept_without_it(
        client, users, admin, services, rule):
    worker = f'w-shape-{rule.replace("_", "-")}'
    creds = _enroll(client, users, admin, worker)
    good, good_envelope = sealed_contact(worker, ORG)
    broken, broken_envelope = sealed_contact(worker, ORG)
    broken = copy.deepcopy(broken)
    name = _first_sealed(broken)
    BREAKS[rule](broken, name)
    docs = [_with_rev(doc) for doc in (good_envelope, good, broken_envelope, broken)]
    result = _push(client, creds, docs)
    assert result.status_code == 201, result.text
    assert [(entry['id'], entry['error']) for entry in result.json] == [
        (broken['_id'], 'forbidden')]
    assert services.couch.get_or_none(services.db('records'), good['_id'])
    assert services.couch.get_or_none(services.db('records'), broken['_id']) is None
    kept = [row['doc']['doc'] for row in services.couch.all_docs(
        services.db('quarantine'), include_docs=True) if row['doc'].get('doc_id') == broken['_id']]
    assert len(kept) == 1
    if rule == 'header_commit_not_32_bytes':
        assert [set(entry) for entry in kept[0]['fle']['keys'].values()] == [{'kek', 'at'}]
    else:
        assert name not in kept[0]

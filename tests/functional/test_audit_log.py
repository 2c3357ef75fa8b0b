"""The audit log: `fieldvault audit verify` against each kind of tampering,
`GET /audit` for supervisors (their team) and admins (all), team
attribution of events, and refusal of bad queries."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from fieldvault import cli
from service.audit import event_hash
from service.cli_audit import verify_chain

pytestmark = pytest.mark.functional



def _fill(services, count=6):
    for index in range(count):
        services.audit.record('login' if index % 2 else 'record_released',
                              actor=f'user:u{index}', subject=f'identity:{index}',
                              team='team-a', details={'n': index})


def _event(services, seq):
    return services.couch.get(services.db('audit'), f'event:{seq:012d}')


def _verify(env):
    return CliRunner().invoke(cli, ['audit', 'verify'], env=env)


def test_verify_passes_on_an_untouched_log(services, env):
    _fill(services)
    result = _verify(env)
    assert result.exit_code == 0, result.output
    assert 'intact: 6 events' in result.output
    head = result.output.split('head ')[1].split()[0]
    anchored = CliRunner().invoke(cli, ['audit', 'verify', '--head', head], env=env)
    assert anchored.exit_code == 0, anchored.output


def test_verify_names_an_edited_event(services, env):
    _fill(services)
    event = _event(services, 3)
    event['details']['n'] = 99
    services.couch.put(services.db('audit'), event)
    result = _verify(env)
    assert result.exit_code != 0
    assert 'edited: event seq 3 (kind record_released)' in result.output
    assert 'seq 4' not in result.output  # one edit, one finding


def test_verify_names_an_edited_event_even_when_rehashed(services, env):
    _fill(services)
    event = _event(services, 2)
    event['actor'] = 'user:someone-else'
    event['hash'] = event_hash(event)
    services.couch.put(services.db('audit'), event)
    result = _verify(env)
    assert result.exit_code != 0
    assert 'chain broken at event seq 3 (kind record_released)' in result.output


def test_verify_names_a_removed_event(services, env):
    _fill(services)
    event = _event(services, 4)
    services.couch.delete(services.db('audit'), event['_id'], event['_rev'])
    result = _verify(env)
    assert result.exit_code != 0
    assert 'removed: seq 4 missing before event seq 5 (kind record_released)' in result.output


def test_verify_names_a_reordered_event(services, env):
    _fill(services)
    db = services.db('audit')
    second, third = _event(services, 2), _event(services, 3)
    # Swap the two events' places, each keeping its own content and hash.
    for target, source in ((second, third), (third, second)):
        body = {k: v for k, v in source.items() if k not in ('_id', '_rev')}
        services.couch.put(db, {'_id': target['_id'], '_rev': target['_rev'], **body})
    result = _verify(env)
    assert result.exit_code != 0
    assert 'reordered: event seq 3 (kind record_released) is stored at position ' \
           '000000000002' in result.output
    assert 'reordered: event seq 2 (kind login)' in result.output


def test_verify_detects_truncation_against_a_noted_head(services, env):
    _fill(services)
    head = _verify(env).output.split('head ')[1].split()[0]
    last = _event(services, 6)
    services.couch.delete(services.db('audit'), last['_id'], last['_rev'])
    assert _verify(env).exit_code == 0  # a cut tail alone is invisible ...
    result = CliRunner().invoke(cli, ['audit', 'verify', '--head', head], env=env)
    assert result.exit_code != 0 and 'anchor: seq 6' in result.output  # ... but not to --head
    bad = CliRunner().invoke(cli, ['audit', 'verify', '--head', 'nonsense'], env=env)
    assert bad.exit_code != 0 and 'SEQ:HASH' in bad.output


def test_verify_chain_memory_is_a_stream():
    # verify_chain consumes a generator lazily: it never needs the whole log.
    def events():
        prev = '0' * 64
        for seq in range(1, 20001):
            event = {'_id': f'event:{seq:012d}', 'seq': seq, 'kind': 'k', 'prev': prev}
            event['hash'] = event_hash(event)
            prev = event['hash']
            yield event
    assert list(verify_chain(events())) == []


def test_supervisors_see_their_team_and_admins_see_all(client, services, users):
    admin = users.token('adm', ['admin'], team=None)
    sup_a = users.token('sup-a', ['supervisor'], team='team-a')
    sup_b = users.token('sup-b', ['supervisor'], team='team-b')
    users.token('adv-a', ['advocate'], team='team-a')
    users.token('adv-b', ['advocate'], team='team-b')
    users.create('worker-a', ['worker'], team='team-a')
    # A device of team-a's worker: registration and enrollment are team-a events.
    code = client.simulate_post('/devices', json={'worker': 'worker-a'},
                                headers=users.bearer(admin)).json['enrollment_code']
    device = client.simulate_post('/devices/enroll', json={'code': code}).json
    client.simulate_post(f'/devices/{device["device_id"]}/revoke', headers=users.bearer(admin))

    everything = client.simulate_get('/audit', params={'limit': '500'},
                                     headers=users.bearer(admin)).json
    assert everything['next'] is None
    kinds = [event['kind'] for event in everything['events']]
    for kind in ('login', 'device_registered', 'device_enrolled', 'device_revoked'):
        assert kind in kinds
    seqs = [event['seq'] for event in everything['events']]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))

    team_a = client.simulate_get('/audit', headers=users.bearer(sup_a)).json['events']
    assert team_a and {event['team'] for event in team_a} == {'team-a'}
    actors = {event['actor'] for event in team_a}
    assert 'user:adv-a' in actors and 'user:adv-b' not in actors
    assert {'device_registered', 'device_enrolled', 'device_revoked'} <= \
        {event['kind'] for event in team_a}
    team_b = client.simulate_get('/audit', headers=users.bearer(sup_b)).json['events']
    assert {event['actor'] for event in team_b} == {'user:sup-b', 'user:adv-b'}

    # Paging: small pages cover the same events, in order, without repeats.
    paged, after = [], 0
    while after is not None:
        page = client.simulate_get('/audit', params={'after': str(after), 'limit': '2'},
                                   headers=users.bearer(admin)).json
        assert len(page['events']) <= 2
        paged += page['events']
        after = page['next']
    assert [event['seq'] for event in paged] == seqs[:len(paged)]
    assert len(paged) >= len(seqs)


@pytest.mark.parametrize('params', [
    {'limit': '0'}, {'limit': '501'}, {'limit': 'ten'}, {'after': '-1'}, {'after': '1.5'},
    {'bogus': '1'},
])
def test_audit_refuses_bad_queries(client, users, params):
    admin = users.token('adm-q', ['admin'])
    result = client.simulate_get('/audit', params=params, headers=users.bearer(admin))
    assert result.status_code == 422, (params, result.text)
    assert result.json['code'] == 'validation_failed'


def test_an_event_at_a_whole_second_still_verifies(services):
    """JavaScript returns 1795868304.0 as 1795868304; the hash must not depend on that."""
    from service.audit import AuditLog
    log = AuditLog(services.couch, services.db('audit'), clock=lambda: 1795868304.0)
    written = log.record('login', actor='user:u1')
    stored = services.couch.get(services.db('audit'), written['_id'])
    assert stored['at'] == '2026-11-28T12:18:24.000Z'
    assert event_hash(stored) == stored['hash']

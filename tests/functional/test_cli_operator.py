"""Operator commands against the real database: users, devices, the audit
log and the quarantine, each as an operator would use them, and none of them
prints an identifying value."""

from __future__ import annotations

import base64
import re

import pytest
from click.testing import CliRunner

from fieldvault import cli
from tests.conftest import PASSWORD
from tests.functional.test_sync_gateway import ORG, _push, _with_rev
from tests.integration.records import plain_contact
from tests.support.lifecycle import Ceremony

pytestmark = pytest.mark.functional

CANARY = 'Canary Quarantine Person 7731'


def _run(env, *args):
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_users_list(env, users):
    users.create('w-ops', ['worker'], team='north')
    users.create('adv-ops', ['advocate'], team='north')
    out = _run(env, 'users', 'list')
    assert re.search(r'adv-ops\s+advocate\s+north\s+enabled', out)
    assert re.search(r'w-ops\s+worker\s+north\s+enabled', out)
    assert 'password' not in out and '$argon2' not in out


def test_devices_register_enroll_list_revoke(live, users, client, tmp_path, test_config):
    ceremony = Ceremony(live.url, tmp_path, test_config.org,
                        lambda name, roles, team: users.create(name, roles, team=team))
    ceremony.setup(advocates=(), supervisors=(), workers=('w-dev',))
    admin = ['devices', '--home', ceremony.homes['admin-1']]
    out = ceremony.run([*admin, 'register', 'w-dev', '--label', 'tablet 3']).output
    device_id = re.search(r'device (d-[0-9a-f]{32}) for w-dev', out).group(1)
    code = out.split('enrollment code: ')[1].split()[0]
    enrolled = client.simulate_post('/devices/enroll', json={'code': code.split('.')[1]})
    assert enrolled.status_code == 201, enrolled.text
    creds = enrolled.json
    listed = ceremony.run([*admin, 'list']).output
    assert re.search(rf'{device_id}\s+w-dev\s+tablet 3\s+active', listed), listed
    basic = 'Basic ' + base64.b64encode(f'{creds["device_id"]}:{creds["secret"]}'.encode()).decode()
    assert client.simulate_get('/sync/records/', headers={'Authorization': basic}).status_code == 200
    assert f'device {device_id} revoked' in ceremony.run([*admin, 'revoke', device_id]).output
    assert client.simulate_get('/sync/records/', headers={'Authorization': basic}).status_code == 401
    assert re.search(rf'{device_id}\s+w-dev\s+tablet 3\s+revoked',
                     ceremony.run([*admin, 'list']).output)


def _enrolled_device(client, users, worker):
    admin = users.bearer(users.token('admin-q', ['admin']))
    users.create(worker, ['worker'])
    registered = client.simulate_post('/devices', json={'worker': worker}, headers=admin)
    return client.simulate_post('/devices/enroll',
                                json={'code': registered.json['enrollment_code']}).json


def test_quarantine_list_and_show_keep_identifying_values_out(env, users, client):
    creds = _enrolled_device(client, users, 'w-q')
    refused = _with_rev(plain_contact('w-q', ORG, notes=CANARY))
    answer = _push(client, creds, [refused])
    assert [entry['error'] for entry in answer.json] == ['forbidden']
    listed = _run(env, 'quarantine', 'list')
    quarantine_id = re.search(r'(q:[0-9a-f]{32})', listed).group(1)
    assert refused['_id'] in listed and creds['device_id'] in listed
    shown = _run(env, 'quarantine', 'show', quarantine_id)
    assert refused['_id'] in shown
    assert CANARY not in listed + shown
    assert CANARY not in _run(env, 'audit', 'show', '--limit', '1000', '--json')
    none = _run(env, 'quarantine', 'list', '--rule', 'no-such-rule')
    assert quarantine_id not in none


def test_users_unlock_lifts_a_login_lockout(env, users, client, services):
    users.create('adv-locked-out', ['advocate'])
    wrong = {'username': 'adv-locked-out', 'password': 'not the password at all'}
    for _attempt in range(10):
        if client.simulate_post('/auth/login', json=wrong).status_code == 429:
            break
    right = {'username': 'adv-locked-out', 'password': PASSWORD}
    assert client.simulate_post('/auth/login', json=right).status_code == 429
    assert 'adv-locked-out may log in again' in _run(env, 'users', 'unlock', 'adv-locked-out')
    assert client.simulate_post('/auth/login', json=right).status_code == 200
    assert 'login_unlocked' in _run(env, 'audit', 'show', '--kind', 'login_unlocked')
    missing = CliRunner().invoke(cli, ['users', 'unlock', 'nobody-here'], env=env)
    assert missing.exit_code == 1

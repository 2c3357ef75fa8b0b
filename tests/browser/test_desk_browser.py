"""The desk in a real headless Chromium: what an advocate and a supervisor do
with it, by mouse and by keyboard alone, at 1280x800."""

from __future__ import annotations

import time
import uuid

import pytest
from playwright.sync_api import expect

from tests.support.desk import (
    CANARY_CONFLICT, CANARY_CORRECTION, CANARY_NOTE, DeskWorld, FakeClock)
from tests.support.lifecycle import KEY_PASS

pytestmark = pytest.mark.browser


@pytest.fixture
def world(live, users, tmp_path, test_config, services):
    made = DeskWorld(live, users, tmp_path, test_config, services)
    yield made
    made.stop()


def _unlock(page, desk, passphrase=KEY_PASS):
    page.goto(desk.url)
    page.get_by_label('Key passphrase').fill(passphrase)
    page.get_by_role('button', name='Unlock').click()


def _open(page, name, purpose='case_management'):
    page.get_by_role('button', name=name).click()
    page.get_by_label('Purpose of this release').select_option(purpose)
    page.get_by_role('button', name='Open record').click()


def _row(page, label):
    """The answer text shown for one question label."""
    return page.locator('#record-body dt', has_text=label).first.locator(
        'xpath=following-sibling::dd[1]')


def test_advocate_finds_opens_and_reads_a_record(world, page, shots, services, captured_logs):
    desk = world.desk('adv-1')
    page.goto(desk.url)
    expect(page.get_by_role('heading', name='Unlock your key')).to_be_visible()
    shots(page, 'desk-unlock')
    _unlock(page, desk)
    expect(page.get_by_role('heading', name='Caseload')).to_be_visible()
    expect(page.locator('#caseload-caption')).to_contain_text('3 found')
    page.get_by_label('Youth code').fill('quiet-river-07')
    page.get_by_role('button', name='Search').click()
    expect(page.locator('#caseload-caption')).to_contain_text('2 found')
    shots(page, 'desk-caseload')
    _open(page, 'Open contact quiet-river-07')
    expect(page.get_by_role('heading', name='Contact quiet-river-07')).to_be_visible()
    expect(_row(page, 'Notes')).to_have_text(CANARY_NOTE)
    expect(_row(page, 'Type of contact')).to_have_text('Street outreach')
    shots(page, 'desk-record')
    page.get_by_role('button', name='Back to the list').last.click()
    page.get_by_role('button', name='Open screening quiet-river-07').click()
    page.get_by_label('Purpose of this release').select_option('safety_planning')
    page.get_by_label('Language').select_option('es')
    page.get_by_role('button', name='Open record').click()
    expect(page.get_by_role('heading', name='Evaluación quiet-river-07')).to_be_visible()
    expect(page.locator('#record-body')).to_contain_text(
        '¿Alguna vez recibiste algo (un lugar donde quedarte, regalos, comida, dinero) a cambio '
        'de sexo?')
    expect(page.locator('#record-body')).to_contain_text('Sí (Alguna vez)')
    shots(page, 'desk-record-es')
    events = [(doc['subject'], doc['details']['purpose'])
              for doc in services.couch.iter_prefix(services.db('audit'), 'event:')
              if doc['kind'] == 'record_released']
    assert events == [(world.contact['_id'], 'case_management'),
                      (world.screening['_id'], 'safety_planning')]
    assert CANARY_NOTE not in world.server_side_text() + captured_logs.getvalue()


def test_wrong_passphrase_and_missing_grant_say_so(world, page):
    desk = world.desk('adv-1')
    _unlock(page, desk, 'this is not the passphrase')
    expect(page.get_by_role('alert')).to_contain_text('Wrong passphrase')
    expect(page.get_by_role('heading', name='Unlock your key')).to_be_visible()
    world.ceremony.join('adv-2', ['advocate'])
    newcomer = world.desk('adv-2')
    _unlock(page, newcomer)
    _open(page, 'Open contact quiet-river-07')
    expect(page.get_by_role('alert')).to_contain_text('you hold no grant of oek-1')


def test_the_address_without_its_secret_is_refused(world, page):
    desk = world.desk('adv-1')
    answer = page.goto(desk.origin + '/')
    assert answer.status == 403
    expect(page.locator('body')).to_contain_text('secret_required')
    assert page.get_by_label('Key passphrase').count() == 0


def test_the_desk_locks_when_idle(world, page):
    clock = FakeClock()
    desk = world.desk('adv-1', idle_seconds=120, clock=clock)
    _unlock(page, desk)
    expect(page.get_by_role('heading', name='Caseload')).to_be_visible()
    clock.now += 121
    # The desk locks itself (its own idle check), and the page, which asks
    # for the desk's state every few seconds, falls back to the unlock form
    # without anyone touching it: no click, since the form may already be gone.
    expect(page.get_by_role('heading', name='Unlock your key')).to_be_visible(timeout=20_000)
    expect(page.get_by_role('status')).to_have_text('The desk is locked.')
    assert desk.session._opener is None


def test_correction_and_conflict_round_trip(world, page, shots, captured_logs):
    left, right = world.make_conflict(world.other)
    desk = world.desk('sup-1')
    _unlock(page, desk)
    _open(page, 'Open contact quiet-river-07')
    field = page.get_by_label('Notes', exact=True)
    expect(field).to_have_value(CANARY_NOTE)
    field.fill(CANARY_CORRECTION)
    shots(page, 'desk-correction')
    page.get_by_role('button', name='Save correction').click()
    expect(page.get_by_role('status')).to_have_text('Correction saved as a new revision.')
    expect(_row(page, 'Notes')).to_have_text(CANARY_CORRECTION)
    page.get_by_role('button', name='Audit trail').click()
    expect(page.get_by_role('list', name='Audit trail')).to_contain_text('record_corrected')
    shots(page, 'desk-audit')
    page.get_by_role('button', name='Conflicts').click()
    page.get_by_role('button', name='Resolve contact brave-stone-11').click()
    page.get_by_label('Purpose of opening both revisions').select_option('record_correction')
    page.get_by_role('button', name='Open both revisions').click()
    expect(page.locator('#compare-body')).to_contain_text(CANARY_CONFLICT)
    # Keep the revision that is not the current one: it becomes the current one.
    expect(page.locator('#compare-body section').nth(1)).to_contain_text('Drop-in center')
    page.get_by_role('button', name='Keep revision 2').click()
    expect(page.get_by_role('status')).to_have_text('Conflict resolved.')
    expect(page.locator('#conflicts-body')).to_have_text('No open conflicts.')
    stored = world.services.couch.get(world.services.db('records'), world.other['_id'],
                                      conflicts='true')
    assert '_conflicts' not in stored and stored['contact_type'] == 'drop_in'
    kept = world.server_side_text() + captured_logs.getvalue()
    assert CANARY_CORRECTION not in kept and CANARY_CONFLICT not in kept


def test_supervisor_releases_a_quarantined_record_and_sees_the_holders(world, page, shots):
    services = world.services
    doc = services.couch.get(services.db('records'), world.other['_id'])
    services.couch.delete(services.db('records'), doc['_id'], doc['_rev'])
    doc = {key: value for key, value in doc.items() if key != '_rev'}
    doc['_id'] = f'contact:{uuid.uuid4()}'
    entry_id = f'q:{uuid.uuid4().hex}'
    services.couch.put(services.db('quarantine'), {
        '_id': entry_id, 'type': 'quarantine', 'device': 'dev-w1', 'worker': 'worker-1',
        'db': 'records', 'at': round(time.time(), 3), 'batch': 'b1', 'rule': 'unknown_schema',
        'reason': 'Refused.', 'fields': {}, 'doc_id': doc['_id'], 'doc': doc, 'redacted': 0})
    desk = world.desk('sup-1')
    _unlock(page, desk)
    page.get_by_role('button', name='Quarantine').click()
    expect(page.locator('#quarantine-body')).to_contain_text('unknown_schema')
    page.get_by_label('Device').fill('dev-other')
    page.get_by_role('button', name='Filter').click()
    expect(page.get_by_role('status')).to_have_text('0 refused documents.')
    page.get_by_label('Device').fill('dev-w1')
    page.get_by_role('button', name='Filter').click()
    expect(page.get_by_role('status')).to_have_text('1 refused documents.')
    shots(page, 'desk-quarantine')
    page.get_by_role('button', name='Release contact refused by unknown_schema').click()
    expect(page.get_by_role('status')).to_have_text('Released back to the records.')
    assert services.couch.get(services.db('records'), doc['_id'])['owner'] == 'worker-1'
    events = [event['kind'] for event in services.couch.iter_prefix(services.db('audit'), 'event:')]
    assert 'quarantine_released' in events
    page.get_by_role('button', name='Key holders').click()
    expect(page.locator('#holders-body')).to_contain_text('oek-1')
    expect(page.locator('#holders-body')).to_contain_text('adv-1')
    shots(page, 'desk-holders')


def _focused_name(page) -> str:
    return page.evaluate("""() => {
        const node = document.activeElement;
        if (!node) return '';
        if (node.labels && node.labels.length) return node.labels[0].textContent.trim();
        return (node.getAttribute('aria-label') || node.textContent || '').trim();
    }""")


def test_keyboard_alone_reaches_every_action(world, page):
    desk = world.desk('sup-1')
    page.goto(desk.url)
    expect(page.get_by_label('Key passphrase')).to_be_focused()
    page.keyboard.type(KEY_PASS)
    page.keyboard.press('Enter')
    expect(page.get_by_role('heading', name='Caseload')).to_be_focused()
    reached = []
    for _ in range(40):
        page.keyboard.press('Tab')
        reached.append(_focused_name(page))
    for action in ('Skip to content', 'Caseload', 'Conflicts', 'Quarantine', 'Key holders',
                   'Lock', 'Youth code', 'Record type', 'Worker', 'From date', 'To date',
                   'Screening result', 'Open conflicts only', 'Search',
                   'Open contact quiet-river-07', 'Open screening quiet-river-07',
                   'Open contact brave-stone-11'):
        assert action in reached, (action, reached)
    # Open a record with the keyboard only.
    page.get_by_role('button', name='Open contact quiet-river-07').focus()
    page.keyboard.press('Enter')
    expect(page.get_by_role('heading', name='Open a record')).to_be_focused()
    page.keyboard.press('Tab')
    assert _focused_name(page).startswith('Purpose of this release')
    page.keyboard.type('case')
    page.keyboard.press('Tab')
    page.keyboard.press('Tab')
    assert _focused_name(page) == 'Open record'
    page.keyboard.press('Enter')
    expect(page.get_by_role('heading', name='Contact quiet-river-07')).to_be_focused()
    expect(_row(page, 'Notes')).to_have_text(CANARY_NOTE)
    after = []
    for _ in range(15):
        page.keyboard.press('Tab')
        after.append(_focused_name(page))
    assert {'Notes', 'Save correction', 'Audit trail', 'Back to the list'} <= set(after), after

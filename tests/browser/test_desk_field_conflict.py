"""A conflict made in the field and resolved on the desk: one worker's two
enrolled tablets (PouchDB 9 in node) edit the same record offline and push it
through the gateway of the service under gunicorn; a supervisor resolves it
in the desk in headless Chromium."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

import keys
import schemas
from fieldvault_client.desk.app import DeskServer
from fieldvault_client.desk.session import DeskSession
from fieldvault_client.home import Home
from tests import factories
from tests.conftest import PASSWORD
from tests.integration.conftest import ORG
from tests.support.desk import CANARY_CONFLICT, CANARY_NOTE, FakeClock
from tests.support.lifecycle import KEY_PASS, Ceremony

pytestmark = pytest.mark.browser

#: The other tablet's offline edit of the note; never reaches the service in clear.
CANARY_FIRST_TABLET = 'Tablet canary Itzpapalotl-2207'


def _edit_offline(stack, tablet: dict, stored: dict, note: str, contact_type: str) -> None:
    """Reseal the note as a tablet would, store it in the tablet's PouchDB, then push."""
    edited, envelope = keys.reseal_fields(stored, {'/notes': note}, org=ORG,
                                          manifest_body=tablet['manifest'],
                                          device=tablet['creds']['device_id'])
    edited['contact_type'] = contact_type
    # The tablet's own PouchDB makes the new revision (new_edits), on top of
    # the revision it holds; the push is a plain PouchDB replication.
    pushed = stack.tablet(tablet['creds'], 'push', name=tablet['name'], docs=[edited, envelope])
    assert pushed['ok'] and pushed['result']['docs_written'] == 2, pushed
    assert pushed['denied'] == 0, pushed


def test_two_tablets_conflict_is_resolved_on_the_desk(stack, tmp_path, page, shots):
    services = stack.services
    records_db = services.db('records')
    ceremony = Ceremony(stack.service.url, tmp_path, ORG,
                        lambda name, roles, team: services.accounts.create_user(
                            name, PASSWORD, roles, team=team))
    ceremony.setup(advocates=(), supervisors=('sup-1',), workers=('worker-1',))
    manifest = ceremony.manifest()
    tablets = [{'name': name, 'creds': stack.enroll('worker-1'), 'manifest': manifest}
               for name in ('tablet-a', 'tablet-b')]

    # Tablet A captures the record and pushes it; tablet B pulls it.
    plain = factories.make_contact(owner='worker-1', org=ORG, notes=CANARY_NOTE,
                                   youth_code='still-lake-23')
    sealed, envelope = keys.seal_document(plain, paths=schemas.identifying_paths('contact'),
                                          org=ORG, manifest_body=manifest,
                                          device=tablets[0]['creds']['device_id'])
    pushed = stack.tablet(tablets[0]['creds'], 'push', name='tablet-a', docs=[sealed, envelope])
    assert pushed['ok'] and pushed['result']['docs_written'] == 2, pushed
    pulled = stack.tablet(tablets[1]['creds'], 'pull', name='tablet-b')
    assert sealed['_id'] in pulled['ids'], pulled
    base = services.couch.get(records_db, sealed['_id'])

    # Both edit it offline, then both push: the server holds a conflict.
    _edit_offline(stack, tablets[0], base, CANARY_FIRST_TABLET, 'drop_in')
    _edit_offline(stack, tablets[1], base, CANARY_CONFLICT, 'hotline')
    current = services.couch.get(records_db, sealed['_id'], conflicts='true')
    assert len(current['_conflicts']) == 1, current
    other = services.couch.get(records_db, sealed['_id'], rev=current['_conflicts'][0])
    assert {current['contact_type'], other['contact_type']} == {'drop_in', 'hotline'}
    for revision in (current, other):
        assert revision['_rev'].startswith('2-')
        assert CANARY_FIRST_TABLET not in str(revision) and CANARY_CONFLICT not in str(revision)

    # The supervisor sees the conflict, opens both revisions with a purpose
    # (decrypted on the desk) and keeps the one that is not current.
    desk = DeskServer(DeskSession(Home(ceremony.homes['sup-1']), idle_seconds=600,
                                  clock=FakeClock())).start()
    try:
        page.goto(desk.url)
        page.get_by_label('Key passphrase').fill(KEY_PASS)
        page.get_by_role('button', name='Unlock').click()
        expect(page.get_by_role('heading', name='Caseload')).to_be_visible()
        page.get_by_role('button', name='Conflicts').click()
        expect(page.locator('#conflicts-body')).to_contain_text('1 other revision(s)')
        page.get_by_role('button', name='Resolve contact still-lake-23').click()
        page.get_by_label('Purpose of opening both revisions').select_option('record_correction')
        page.get_by_role('button', name='Open both revisions').click()
        notes = {current['_rev']: CANARY_FIRST_TABLET if current['contact_type'] == 'drop_in'
                 else CANARY_CONFLICT}
        notes[other['_rev']] = ({CANARY_FIRST_TABLET, CANARY_CONFLICT} - set(notes.values())).pop()
        first = page.get_by_role('region', name='Revision 1')
        second = page.get_by_role('region', name='Revision 2')
        expect(first).to_contain_text(notes[current['_rev']])
        expect(second).to_contain_text(notes[other['_rev']])
        shots(page, 'desk-conflict')
        second.get_by_role('button', name='Keep revision 2').click()
        expect(page.get_by_role('status')).to_have_text('Conflict resolved.')
        expect(page.locator('#conflicts-body')).to_have_text('No open conflicts.')
    finally:
        desk.stop()

    # One live revision, the kept one's content (notes' ciphertext and its
    # record keys included); the resolution is audited.
    resolved = services.couch.get(records_db, sealed['_id'], conflicts='true')
    assert '_conflicts' not in resolved, resolved
    kept = {key: value for key, value in other.items() if key != '_rev'}
    assert {key: value for key, value in resolved.items() if key != '_rev'} == kept
    events = list(services.couch.iter_prefix(services.db('audit'), 'event:'))
    assert [(event['subject'], event['details']['purpose']) for event in events
            if event['kind'] == 'record_released'] == [(sealed['_id'], 'record_correction')]
    assert [(event['subject'], event['actor'], event['details']) for event in events
            if event['kind'] == 'conflict_resolved'] == [
        (sealed['_id'], 'user:sup-1', {'kept': 'other', 'discarded': 1})]

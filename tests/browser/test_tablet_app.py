"""The tablet app in a real headless chromium: enrollment with the pinned
signer, offline capture sealed before storage, sync through the gateway,
refusals, the manifest check and the wipe on revocation."""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
import uuid

import pytest

import keys
from sync.sealed import SealedRegistry
from tests.support.lifecycle import KEY_PASS, day

pytestmark = pytest.mark.browser

QYIT_ITEMS = ('QYIT_1', 'QYIT_2', 'QYIT_3', 'QYIT_4')

# Everything the browser keeps for the app: every IndexedDB database (all
# object stores, keys and values), Cache Storage, localStorage, sessionStorage.
_SCAN = """async () => {
  const out = [];
  const request = (r) => new Promise((ok, fail) => { r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
  for (const info of await indexedDB.databases()) {
    out.push('db:' + info.name);
    const db = await request(indexedDB.open(info.name));
    for (const name of db.objectStoreNames) {
      const store = db.transaction(name).objectStore(name);
      out.push(JSON.stringify(await request(store.getAllKeys())), JSON.stringify(await request(store.getAll())));
    }
    db.close();
  }
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    for (const key of await cache.keys()) out.push(key.url, await (await cache.match(key)).text());
  }
  for (const storage of [localStorage, sessionStorage]) {
    for (let i = 0; i < storage.length; i++) out.push(storage.key(i), storage.getItem(storage.key(i)));
  }
  return out.join('\\n');
}"""


def _shot(page, name: str) -> None:
    """Save a screenshot for docs/screenshots when ``FIELDVAULT_TEST_SCREENSHOTS`` names it.

    An ordinary run takes the screenshot too (it must render), into a
    temporary folder, so the suite never rewrites the documentation.
    """
    target = pathlib.Path(os.environ.get('FIELDVAULT_TEST_SCREENSHOTS') or tempfile.mkdtemp())
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / f'{name}.png'), full_page=True)


def _enroll(page, field, code: str) -> None:
    page.goto(field.app_url)
    page.wait_for_selector('#enroll-code')
    page.fill('#enroll-code', code)
    page.click('#enroll-button')
    # The form appears once the packs and schemas arrived through replication.
    page.wait_for_selector('#instrument', timeout=60_000)
    page.wait_for_function(
        "document.querySelector('#save') && !document.querySelector('#save').disabled",
        timeout=60_000)


def _capture(page, *, youth_code: str | None = None, answers=None, notes=None) -> str:
    if youth_code is not None:
        page.fill('#youth-code', youth_code)
    code = page.input_value('#youth-code')
    page.check('#confidentiality')
    for item, value in (answers or {}).items():
        page.select_option(f'#answer-{item}', value)
    for item, text in (notes or {}).items():
        page.fill(f'#note-{item}', text)
    page.click('#save')
    page.wait_for_selector(f'#saved:has-text("{code}")')
    return code


def _pending(page) -> int:
    page.wait_for_selector('#status-pending[data-count]')
    return int(page.get_attribute('#status-pending', 'data-count'))


def _wait_pending(page, count: int, timeout: int = 60_000) -> None:
    page.wait_for_function(
        f"document.querySelector('#status-pending')?.dataset.count === '{count}'", timeout=timeout)


def _screenings(stack) -> list[dict]:
    return [doc for doc in stack.records() if doc.get('type') == 'screening']


def _open(field, record_id: str) -> dict:
    out = field.ceremony.run(['advocate', '--home', field.ceremony.homes['adv-1'], 'open',
                              record_id, '--purpose', 'supervisor_review'], f'{KEY_PASS}\n').output
    return json.loads(out[out.index('{'):])


def test_offline_capture_is_sealed_synced_and_opens_exactly_as_typed(field, context):
    page = context.new_page()
    page.goto(field.app_url)
    page.wait_for_selector('#enroll-code')
    _shot(page, 'en-enroll')
    page.click('#lang-toggle')
    page.wait_for_selector('#enroll-button:has-text("Inscribir")')
    _shot(page, 'es-enroll')
    page.click('#lang-toggle')
    _enroll(page, field, field.register())
    page.evaluate('navigator.serviceWorker.ready.then(() => true)')

    context.set_offline(True)
    page.reload()
    page.wait_for_selector('#instrument')
    assert page.inner_text('#status-online') == 'Offline'
    marker = uuid.uuid4().hex[:10]
    canaries = {item: f'CANARY-{item}-{marker} Ñandú «x»' for item in QYIT_ITEMS}
    typed = {'QYIT_1': 'no', 'QYIT_3': 'yes'}
    with_canaries = _capture(page, answers=typed, notes=canaries)
    plain_note = _capture(page, answers={'QYIT_2': 'unsure'}, notes={'QYIT_2': 'short note'})
    no_notes = _capture(page)
    assert _pending(page) == 3
    assert page.inner_text('#status-online') == 'Offline'
    listed = page.inner_text('#intake-list')
    for code in (with_canaries, plain_note, no_notes):
        assert code in listed
    _shot(page, 'en-capture')

    stored = page.evaluate(_SCAN)
    # The scan reads the stores: the sealed records and their envelopes are there.
    assert stored.count('"fle"') >= 3 and 'rk:' in stored and 'fieldvault.device' in stored
    assert marker not in stored and 'CANARY' not in stored

    context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    _wait_pending(page, 0)
    page.wait_for_selector('#intake-list li[data-state="synced"] >> nth=2')
    assert 'Last sync: never' not in page.inner_text('#status')

    records = {doc['youth_code']: doc for doc in _screenings(field.stack)}
    assert set(records) == {with_canaries, plain_note, no_notes}
    assert set(records[with_canaries]['response_notes']) == {'fle', 'rk', 'n', 'ct'}
    assert set(records[plain_note]['response_notes']) == {'fle', 'rk', 'n', 'ct'}
    assert records[no_notes]['response_notes'] is None
    assert marker not in json.dumps(field.stack.records())

    opened = _open(field, records[with_canaries]['_id'])
    assert opened['response_notes'] == [{'item_code': item, 'text': canaries[item]}
                                        for item in QYIT_ITEMS]
    assert [(r['item_code'], r['value']) for r in opened['responses']] == \
        sorted(typed.items())
    assert _open(field, records[plain_note]['_id'])['response_notes'] == [
        {'item_code': 'QYIT_2', 'text': 'short note'}]

    services = field.stack.services
    events = [row['doc'] for row in services.couch.all_docs(services.db('audit'),
                                                            include_docs=True)
              if row['id'].startswith('event:')]
    accepted = [event for event in events if event['kind'] == 'push_accepted']
    assert accepted and sum(e['details']['records'] for e in accepted) == 3
    assert sum(e['details']['envelopes'] for e in accepted) == 3
    assert all(e['details']['worker'] == 'worker-1' for e in accepted)
    assert marker not in json.dumps(events)

    assert marker not in page.evaluate(_SCAN)
    page.click('#lang-toggle')
    page.wait_for_selector('#save:has-text("Sellar y guardar")')
    _shot(page, 'es-capture')


def test_a_form_with_an_invalid_answer_cannot_be_sealed(field, context):
    page = context.new_page()
    _enroll(page, field, field.register())
    page.fill('#youth-code', 'Maria Lopez')
    page.fill('#note-QYIT_1', 'x' * 1001)
    page.evaluate("document.querySelector('#note-QYIT_1').removeAttribute('maxlength')")
    page.fill('#note-QYIT_1', 'x' * 1001)
    page.click('#save')
    page.wait_for_selector('#form-errors li')
    errors = page.inner_text('#form-errors')
    assert 'youth_code: not in the expected form' in errors
    assert 'response_notes: longer than 1000 characters' in errors
    page.click('#lang-toggle')
    page.click('#save')
    page.wait_for_selector('#form-errors:has-text("no tiene la forma esperada")')
    page.click('#lang-toggle')
    assert _pending(page) == 0
    assert 'Maria' not in page.evaluate(_SCAN)
    # Answers without the confidentiality explanation are refused too.
    page.fill('#youth-code', 'quiet-river-07')
    page.fill('#note-QYIT_1', '')
    page.select_option('#answer-QYIT_1', 'yes')
    page.click('#save')
    page.wait_for_selector('#form-errors li')
    assert 'confidentiality' in page.inner_text('#form-errors')
    assert _pending(page) == 0 and page.query_selector('#intake-list') is None


def test_a_refused_record_shows_its_reason(field, context):
    page = context.new_page()
    _enroll(page, field, field.register())
    stack = field.stack
    SealedRegistry(stack.services.couch, stack.services.db('directory')).add(
        youth_codes=['sealed-youth-01'])
    _capture(page, youth_code='sealed-youth-01')
    page.wait_for_selector('#intake-list li[data-state="refused"] .reason', timeout=60_000)
    reason = page.inner_text('#intake-list li[data-state="refused"] .reason')
    assert "this youth's records are sealed" in reason
    _wait_pending(page, 0)
    _shot(page, 'en-refused')
    page.click('#lang-toggle')
    page.wait_for_selector('#intake-list li[data-state="refused"] .reason:has-text("sellados")')
    _shot(page, 'es-refused')
    assert not _screenings(stack)
    quarantined = stack.services.couch.all_docs(stack.services.db('quarantine'), include_docs=True)
    assert [row['doc']['rule'] for row in quarantined
            if row['doc'].get('doc_id', '').startswith('screening:')] == ['youth_sealed']
    # Capture again: the refused record goes (its tombstone syncs) and a new
    # form opens for the same youth.
    page.click('#intake-list li[data-state="refused"] .redo')
    page.wait_for_selector('#intake-list li[data-state="refused"]', state='detached')
    assert page.input_value('#youth-code') == 'sealed-youth-01'
    _wait_pending(page, 0)  # the refused record's tombstone syncs too


def test_revoking_the_device_wipes_the_app_on_its_next_sync(field, context):
    page = context.new_page()
    _enroll(page, field, field.register())
    _capture(page)
    _wait_pending(page, 0)
    device_id = json.loads(page.evaluate("localStorage.getItem('fieldvault.device')"))['device_id']
    assert any(name.endswith('fieldvault-records') for name in page.evaluate(
        '(async () => (await indexedDB.databases()).map((db) => db.name))()'))

    field.ceremony.run(['devices', '--home', field.ceremony.homes['admin-1'], 'revoke',
                        device_id])
    # The live sync's next request (or this one) learns of the revocation.
    page.evaluate("document.querySelector('#sync-now')?.click()")
    page.wait_for_selector('#enroll-code', timeout=60_000)
    assert 'revoked' in page.inner_text('#notice')
    _shot(page, 'en-revoked')
    names = page.evaluate('(async () => (await indexedDB.databases()).map((db) => db.name))()')
    assert not [name for name in names if 'fieldvault' in name], names
    assert page.evaluate("localStorage.getItem('fieldvault.device')") is None
    assert device_id not in page.evaluate(_SCAN)


def test_a_signer_that_is_not_the_codes_is_never_pinned(field, context):
    services = field.stack.services
    operator = keys.SigningKey.generate()
    config_db = services.db('config')
    signer = services.couch.get(config_db, 'org-signer')
    services.couch.put(config_db, dict(signer, public=operator.public_b64(),
                                       fingerprint=operator.fingerprint()))
    page = context.new_page()
    page.goto(field.app_url)
    page.fill('#enroll-code', field.register())
    page.click('#enroll-button')
    page.wait_for_selector('#enroll-error:has-text("Do not trust this server")')
    assert page.evaluate("localStorage.getItem('fieldvault.device')") is None
    assert page.query_selector('#instrument') is None


def test_a_bad_or_older_manifest_stops_sealing(field, context):
    services = field.stack.services
    config_db = services.db('config')
    page = context.new_page()
    _enroll(page, field, field.register())
    first = services.couch.get(config_db, 'key-manifest')

    # A manifest whose body was changed after signing.
    forged = json.loads(json.dumps(first))
    forged['signed']['body']['seq'] += 5
    services.couch.put(config_db, forged)
    page.wait_for_selector('#seal-blocked:not([hidden])', timeout=60_000)
    assert 'could not be verified' in page.inner_text('#seal-blocked')
    assert page.is_disabled('#save')
    _shot(page, 'en-blocked')

    # A genuine newer manifest lifts the stop; replaying the older one stops it again.
    services.couch.put(config_db, dict(
        first, _rev=services.couch.get(config_db, 'key-manifest')['_rev']))
    field.ceremony.admin('rotate', '--kid', 'oek-2', '--accept-until', day(7))
    page.wait_for_function("document.querySelector('#seal-blocked').hidden", timeout=60_000)
    _capture(page)
    seq = json.loads(page.evaluate("localStorage.getItem('fieldvault.device')"))['min_seq']
    assert seq == services.couch.get(config_db, 'key-manifest')['seq'] > first['seq']
    current = services.couch.get(config_db, 'key-manifest')
    services.couch.put(config_db, dict(first, _rev=current['_rev']))
    page.wait_for_selector('#seal-blocked:not([hidden])', timeout=60_000)
    listed = page.locator('#intake-list li').count()
    assert listed == 1
    page.evaluate("document.querySelector('#save').disabled = false")
    page.click('#save')
    page.wait_for_selector('#seal-blocked:not([hidden])')
    assert page.locator('#intake-list li').count() == listed

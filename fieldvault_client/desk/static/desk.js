// The desk page. Every text from the service or a record is set with
// textContent, never as HTML. Nothing here is stored in the browser.
'use strict';

const state = {user: null, roles: [], purposes: [], offset: 0, next: null, record: null,
               conflict: null, view: 'unlock'};

const $ = (id) => document.getElementById(id);

function say(text) { $('status').textContent = text; }
function alarm(text) { $('alert').textContent = text; }

async function api(method, path, body) {
  const options = {method, headers: {'Accept': 'application/json'}, credentials: 'same-origin'};
  if (body !== undefined) {
    options.headers['Content-Type'] = 'application/json';
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let data = {};
  try { data = await response.json(); } catch (e) { data = {}; }
  if (!response.ok) {
    if (data.code === 'locked') { showLocked(); }
    const error = new Error(data.message || ('Request failed: ' + response.status));
    error.code = data.code;
    throw error;
  }
  return data;
}

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  return node;
}

function show(view) {
  state.view = view;
  for (const section of document.querySelectorAll('main > section')) {
    section.hidden = section.id !== 'view-' + view;
  }
  for (const button of document.querySelectorAll('#nav button[data-view]')) {
    if (button.dataset.view === view) button.setAttribute('aria-current', 'page');
    else button.removeAttribute('aria-current');
  }
  const heading = document.querySelector('#view-' + view + ' h2');
  if (heading) heading.focus();
}

function showLocked() {
  $('nav').hidden = true;
  $('whoami').textContent = '';
  say('The desk is locked.');
  show('unlock');
  $('passphrase').focus();
}

function applyRoles() {
  const supervisor = state.roles.includes('supervisor');
  for (const node of document.querySelectorAll('.supervisor')) node.hidden = !supervisor;
}

function fillPurposes(select) {
  while (select.options.length > 1) select.remove(1);
  for (const code of state.purposes) {
    select.add(new Option(code.replace(/_/g, ' '), code));
  }
}

async function refreshState() {
  const current = await api('GET', '/api/state');
  state.user = current.user; state.roles = current.roles || []; state.purposes = current.purposes;
  if (!current.unlocked) { if (state.view !== 'unlock') showLocked(); return false; }
  return true;
}

async function unlock(event) {
  event.preventDefault();
  alarm('');
  say('Unlocking (this takes a moment)...');
  try {
    const current = await api('POST', '/api/unlock', {passphrase: $('passphrase').value});
    $('passphrase').value = '';
    state.user = current.user; state.roles = current.roles; state.purposes = current.purposes;
    $('whoami').textContent = 'Signed in as ' + current.user;
    $('nav').hidden = false;
    applyRoles();
    fillPurposes($('purpose')); fillPurposes($('compare-purpose'));
    say('Unlocked.');
    show('caseload');
    await loadCaseload(0);
  } catch (error) {
    say('');
    alarm(error.message);
    $('passphrase').focus();
  }
}

function caseloadQuery(offset) {
  const params = new URLSearchParams();
  const form = new FormData($('filters'));
  for (const [name, value] of form.entries()) if (value) params.set(name, value);
  params.set('limit', '20');
  params.set('offset', String(offset));
  return params;
}

function resultText(record) {
  if (!record.result) return '';
  if (record.result.concern_level) return record.result.concern_level.replace(/_/g, ' ');
  if (record.result.positive_screen === true) return 'positive';
  if (record.result.positive_screen === false) return 'negative';
  return '';
}

async function loadCaseload(offset) {
  alarm('');
  let answer;
  try { answer = await api('GET', '/api/caseload?' + caseloadQuery(offset)); }
  catch (error) { alarm(error.message); return; }
  state.offset = offset; state.next = answer.next;
  const body = document.querySelector('#caseload-table tbody');
  body.replaceChildren();
  for (const record of answer.records) {
    const row = el('tr');
    row.append(el('td', (record.date || '').slice(0, 10)), el('td', record.type),
               el('td', record.youth_code || ''), el('td', record.worker),
               el('td', resultText(record)), el('td', record.conflicts ? 'yes' : 'no'));
    const cell = el('td');
    const open = el('button', 'Open', {type: 'button',
      'aria-label': 'Open ' + record.type + ' ' + (record.youth_code || record.id)});
    open.addEventListener('click', () => askPurpose(record));
    cell.append(open);
    row.append(cell);
    body.append(row);
  }
  $('caseload-caption').textContent = 'Records of your team: ' + answer.total + ' found, showing ' +
    (answer.records.length ? (offset + 1) + ' to ' + (offset + answer.records.length) : 'none');
  $('prev-page').disabled = offset === 0;
  $('next-page').disabled = answer.next === null;
  say(answer.total + ' records found.');
}

function askPurpose(record) {
  state.record = record;
  $('open-what').textContent = 'Record ' + record.type + ' ' + (record.youth_code || '') +
    ' of ' + (record.date || '').slice(0, 10) + ' (' + record.id + ')';
  $('purpose').value = '';
  show('open');
}

function renderView(view, container, withCorrection) {
  container.replaceChildren();
  for (const section of view.sections) {
    container.append(el('h3', section.title));
    const list = el('dl', null, {'class': 'record'});
    for (const row of section.rows) {
      list.append(el('dt', row.label), el('dd', row.text));
    }
    container.append(list);
  }
  if (!withCorrection) return;
  const fields = $('correct-fields');
  fields.replaceChildren();
  let any = false;
  for (const section of view.sections) {
    for (const row of section.rows) {
      if (!row.editable) continue;
      any = true;
      const id = 'fix-' + row.pointer.slice(1);
      fields.append(el('label', row.label, {'for': id}));
      const input = el('textarea', null, {id, name: row.pointer, rows: '2'});
      input.value = row.value || '';
      input.dataset.original = row.value || '';
      fields.append(input);
    }
  }
  $('correct-form').hidden = !any;
}

async function openRecord(event) {
  event.preventDefault();
  alarm('');
  const purpose = $('purpose').value;
  if (!purpose) { alarm('Choose the purpose of this release.'); $('purpose').focus(); return; }
  const lang = $('lang').value;
  try {
    const view = await api('POST', '/api/records/' + encodeURIComponent(state.record.id) +
                                   '/open?lang=' + lang, {purpose});
    showRecord(view);
  } catch (error) { alarm(error.message); }
}

function showRecord(view) {
  state.record.view = view;
  document.documentElement.lang = view.lang;
  $('record-heading').textContent = view.title + ' ' + (state.record.youth_code || '');
  renderView(view, $('record-body'), true);
  $('audit-body').replaceChildren();
  say('Record opened.');
  show('record');
}

async function correct(event) {
  event.preventDefault();
  alarm('');
  const values = {};
  for (const input of $('correct-fields').querySelectorAll('textarea')) {
    if (input.value !== input.dataset.original) values[input.name] = input.value;
  }
  if (!Object.keys(values).length) { alarm('Nothing was changed.'); return; }
  try {
    const view = await api('POST', '/api/records/' + encodeURIComponent(state.record.id) +
                                   '/correct?lang=' + $('lang').value, {values});
    showRecord(view);
    say('Correction saved as a new revision.');
  } catch (error) { alarm(error.message); }
}

async function auditTrail() {
  try {
    const answer = await api('GET', '/api/records/' + encodeURIComponent(state.record.id) + '/audit');
    const list = el('ol', null, {'aria-label': 'Audit trail'});
    for (const event of answer.events) {
      const when = String(event.at).slice(0, 19).replace('T', ' ');
      const purpose = event.details && event.details.purpose ? ' (' + event.details.purpose + ')' : '';
      list.append(el('li', when + ' ' + event.kind + ' by ' + event.actor + purpose));
    }
    $('audit-body').replaceChildren(el('h3', 'Audit trail'), list);
    say(answer.events.length + ' audit events.');
  } catch (error) { alarm(error.message); }
}

async function loadConflicts() {
  let answer;
  try { answer = await api('GET', '/api/caseload?conflicts=open&limit=200'); }
  catch (error) { alarm(error.message); return; }
  const list = el('ul');
  for (const record of answer.records) {
    const item = el('li', record.type + ' ' + (record.youth_code || '') + ' ' +
                    (record.date || '').slice(0, 10) + ', ' + record.conflicts + ' other revision(s) ');
    const button = el('button', 'Resolve', {type: 'button',
      'aria-label': 'Resolve ' + record.type + ' ' + (record.youth_code || record.id)});
    button.addEventListener('click', () => { state.conflict = record; $('compare-body').replaceChildren(); show('compare'); });
    item.append(button);
    list.append(item);
  }
  $('conflicts-body').replaceChildren(answer.records.length ? list : el('p', 'No open conflicts.'));
  say(answer.total + ' records with open conflicts.');
}

async function compare(event) {
  event.preventDefault();
  alarm('');
  const purpose = $('compare-purpose').value;
  if (!purpose) { alarm('Choose the purpose of this release.'); $('compare-purpose').focus(); return; }
  let answer;
  try {
    answer = await api('POST', '/api/records/' + encodeURIComponent(state.conflict.id) +
                               '/revisions?lang=' + $('lang').value, {purpose});
  } catch (error) { alarm(error.message); return; }
  const body = $('compare-body');
  body.replaceChildren();
  answer.revisions.forEach((view, index) => {
    const column = el('section', null, {'aria-label': 'Revision ' + (index + 1)});
    column.append(el('h3', 'Revision ' + (index + 1) + (index === 0 ? ' (current)' : '')));
    const holder = el('div');
    renderView(view, holder, false);
    column.append(holder);
    const keep = el('button', 'Keep revision ' + (index + 1), {type: 'button'});
    keep.addEventListener('click', () => resolve(view.rev));
    column.append(keep);
    body.append(column);
  });
  say('Both revisions opened.');
}

async function resolve(rev) {
  try {
    await api('POST', '/api/records/' + encodeURIComponent(state.conflict.id) + '/resolve', {keep: rev});
    show('conflicts');
    await loadConflicts();
    say('Conflict resolved.');
  } catch (error) { alarm(error.message); }
}

async function loadQuarantine() {
  let answer;
  const params = new URLSearchParams();
  for (const [name, value] of new FormData($('quarantine-filters')).entries()) if (value) params.set(name, value);
  try { answer = await api('GET', '/api/quarantine?' + params); }
  catch (error) { alarm(error.message); return; }
  const table = el('table');
  table.append(el('caption', 'Refused documents of your team: ' + answer.total));
  const head = el('tr');
  for (const name of ['Refused at', 'Rule', 'Device', 'Worker', 'Type', 'Actions']) head.append(el('th', name, {scope: 'col'}));
  const thead = el('thead');
  thead.append(head);
  table.append(thead);
  const body = el('tbody');
  for (const entry of answer.entries) {
    const row = el('tr');
    const when = new Date(entry.at * 1000).toISOString().slice(0, 19).replace('T', ' ');
    row.append(el('td', when), el('td', entry.rule), el('td', entry.device || entry.source),
               el('td', entry.worker), el('td', entry.type || ''));
    const cell = el('td');
    if (entry.releasable) {
      const release = el('button', 'Release', {type: 'button', 'aria-label': 'Release ' + entry.type + ' refused by ' + entry.rule});
      release.addEventListener('click', () => quarantineAction(entry.id, 'release'));
      cell.append(release);
    }
    const discard = el('button', 'Discard', {type: 'button', 'aria-label': 'Discard ' + (entry.type || 'document') + ' refused by ' + entry.rule});
    discard.addEventListener('click', () => quarantineAction(entry.id, 'discard'));
    cell.append(discard);
    row.append(cell);
    body.append(row);
  }
  table.append(body);
  $('quarantine-body').replaceChildren(table);
  say(answer.total + ' refused documents.');
}

async function quarantineAction(id, action) {
  alarm('');
  try {
    await api('POST', '/api/quarantine/' + encodeURIComponent(id) + '/' + action, {});
    await loadQuarantine();
    $('quarantine-heading').focus();
    say(action === 'release' ? 'Released back to the records.' : 'Discarded.');
  } catch (error) { alarm(error.message); }
}

async function loadHolders() {
  let answer;
  try { answer = await api('GET', '/api/holders'); }
  catch (error) { alarm(error.message); return; }
  const table = el('table');
  table.append(el('caption', 'Who holds each key version'));
  const head = el('tr');
  for (const name of ['Version', 'Status', 'Envelopes', 'Holders', 'Recovery only']) head.append(el('th', name, {scope: 'col'}));
  const thead = el('thead');
  thead.append(head);
  table.append(thead);
  const body = el('tbody');
  for (const version of answer.versions) {
    const row = el('tr');
    row.append(el('td', version.kid), el('td', version.status), el('td', version.envelopes),
               el('td', version.holders.map((h) => h.user).join(', ')),
               el('td', version.recovery_only ? 'yes' : 'no'));
    body.append(row);
  }
  table.append(body);
  $('holders-body').replaceChildren(table);
  say(answer.versions.length + ' key versions.');
}

const loaders = {caseload: () => loadCaseload(state.offset), conflicts: loadConflicts,
                 quarantine: loadQuarantine, holders: loadHolders};

document.addEventListener('DOMContentLoaded', async () => {
  $('unlock-form').addEventListener('submit', unlock);
  $('filters').addEventListener('submit', (event) => { event.preventDefault(); loadCaseload(0); });
  $('prev-page').addEventListener('click', () => loadCaseload(Math.max(0, state.offset - 20)));
  $('next-page').addEventListener('click', () => { if (state.next !== null) loadCaseload(state.next); });
  $('open-form').addEventListener('submit', openRecord);
  $('correct-form').addEventListener('submit', correct);
  $('compare-form').addEventListener('submit', compare);
  $('quarantine-filters').addEventListener('submit', (event) => { event.preventDefault(); loadQuarantine(); });
  $('audit-button').addEventListener('click', auditTrail);
  $('lock-button').addEventListener('click', async () => { await api('POST', '/api/lock', {}); showLocked(); });
  for (const button of document.querySelectorAll('button.back')) {
    button.addEventListener('click', () => { show('caseload'); loadCaseload(state.offset); });
  }
  for (const button of document.querySelectorAll('#nav button[data-view]')) {
    button.addEventListener('click', () => { alarm(''); show(button.dataset.view); loaders[button.dataset.view](); });
  }
  try {
    if (await refreshState()) {
      $('whoami').textContent = 'Signed in as ' + state.user;
      $('nav').hidden = false; applyRoles();
      fillPurposes($('purpose')); fillPurposes($('compare-purpose'));
      show('caseload'); await loadCaseload(0);
    } else { $('passphrase').focus(); }
  } catch (error) { alarm(error.message); }
  // The desk locks itself when idle; the page follows within seconds.
  setInterval(() => { refreshState().catch(() => {}); }, 5000);
});

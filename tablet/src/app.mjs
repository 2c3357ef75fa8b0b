// The fieldvault tablet app: enroll, capture screenings offline, seal the
// identifying fields before anything is stored, sync through the gateway,
// wipe on revocation. No framework: the DOM is small and built here.
// PouchDB's own browser build (IndexedDB adapter, fetch), bundled as is.
import PouchDB from "pouchdb/dist/pouchdb.js";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import {
  InvalidManifest, SignerMismatch, parseEnrollmentCode, pinSigner, sealDocument, verifyManifest,
} from "../../js/fle.mjs";
import { LANGUAGES, translate } from "./messages.mjs";
import { newYouthCode } from "./youthcode.mjs";

const STORE = "fieldvault.device";
const LANG = "fieldvault.lang";
const LAST_SYNC = "fieldvault.last_sync";
const NOTICE = "fieldvault.notice";
const RECORDS_DB = "fieldvault-records";
const CONFIG_DB = "fieldvault-config";
const STATUS_DOC = "_local/fieldvault-status";
const SCREENING_SCHEMA = "record-schema:screening-1";

const state = {
  lang: localStorage.getItem(LANG) || (navigator.language || "en").slice(0, 2),
  device: JSON.parse(localStorage.getItem(STORE) || "null"),
  records: null,
  config: null,
  sync: null,
  configPull: null,
  syncing: false,
  syncError: null,
  sealBlocked: null,
  packs: {},
  schema: null,
  validator: null,
  lastSaved: null,
};
if (!LANGUAGES.includes(state.lang)) state.lang = "en";

const $ = (selector) => document.querySelector(selector);
const t = (key, params) => translate(state.lang, key, params) ?? key;
const label = (prefix, code) => translate(state.lang, `${prefix}.${code}`) ?? code;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
  return node;
}

// -- Credentials and local databases -------------------------------------------

function saveDevice(device) {
  state.device = device;
  localStorage.setItem(STORE, JSON.stringify(device));
}

function authedFetch(url, opts) {
  opts.headers.set("Authorization", `Bearer ${state.device.token}`);
  return PouchDB.fetch(url, opts);
}

function remote(db) {
  return new PouchDB(new URL(`sync/${db}`, state.device.base).href, { fetch: authedFetch, skip_setup: true });
}

function openDatabases() {
  state.records = new PouchDB(RECORDS_DB);
  state.config = new PouchDB(CONFIG_DB);
}

async function readStatus() {
  try {
    return await state.records.get(STATUS_DOC);
  } catch {
    return { _id: STATUS_DOC, synced: {}, refused: {} };
  }
}

// _local documents never replicate: the sync state of each record stays here.
async function updateStatus(change) {
  for (let attempt = 0; attempt < 5; attempt++) {
    const status = await readStatus();
    change(status);
    try {
      await state.records.put(status);
      return;
    } catch (error) {
      if (error.status !== 409) throw error;
    }
  }
}

// -- Enrollment ----------------------------------------------------------------

/** The address of the service that served this app: `/app/` → `/`. */
function servedBase() {
  return new URL("..", location.href).href;
}

/**
 * The service's base address: the one typed at enrollment, or by default the
 * service that served the app. A typed address keeps its path, as a directory.
 */
function serviceBase(typed) {
  const text = typed.trim();
  if (!text) return servedBase();
  let url;
  try {
    url = new URL(text);
  } catch {
    throw new UserError("enroll.bad_service");
  }
  if (!["http:", "https:"].includes(url.protocol) || url.username || url.password) {
    throw new UserError("enroll.bad_service");
  }
  url.search = "";
  url.hash = "";
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  return url.href;
}

async function enroll(code, service = "") {
  let parsed;
  try {
    parsed = parseEnrollmentCode(code.trim());
  } catch {
    throw new UserError("enroll.bad_code");
  }
  const base = serviceBase(service);
  let answer;
  try {
    answer = await fetch(new URL("devices/enroll", base), {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ code: parsed.secret }),
    });
  } catch {
    throw new UserError("enroll.offline");
  }
  if (answer.status !== 201) throw new UserError("enroll.refused");
  const creds = await answer.json();
  // The fingerprint comes from the code the admin's own CLI printed, never
  // from the server: the served key is pinned only when it matches.
  let pinned = null;
  if (creds.manifest_signing_key) {
    try {
      pinned = await pinSigner(creds.manifest_signing_key, parsed.fingerprint);
    } catch {
      throw new UserError("enroll.signer_mismatch");
    }
  }
  saveDevice({
    device_id: creds.device_id, token: creds.token, worker: creds.worker, base,
    fingerprint: parsed.fingerprint, signer: pinned, min_seq: 0,
  });
}

class UserError extends Error {
  constructor(key) {
    super(key);
    this.key = key;
  }
}

// -- Manifest and sealing --------------------------------------------------------

/** The verified manifest body, or a UserError naming why sealing is stopped. */
async function verifiedManifest() {
  const device = state.device;
  let signer = device.signer;
  if (!signer) {
    // Enrolled before the first key: pin the signer now, from the replicated
    // config, only if its fingerprint is the code's.
    let doc;
    try {
      doc = await state.config.get("org-signer");
    } catch {
      throw new UserError("seal.no_manifest");
    }
    try {
      signer = await pinSigner(doc.public, device.fingerprint);
    } catch {
      throw new UserError("seal.signer_mismatch");
    }
    saveDevice({ ...device, signer });
  }
  let manifest;
  try {
    manifest = await state.config.get("key-manifest");
  } catch {
    throw new UserError("seal.no_manifest");
  }
  let body;
  try {
    body = await verifyManifest(manifest.signed, signer, { minSeq: device.min_seq, fingerprint: device.fingerprint });
  } catch (error) {
    if (error instanceof InvalidManifest || error instanceof SignerMismatch) throw new UserError("seal.manifest_invalid");
    throw error;
  }
  // Remember the highest sequence seen, so an older manifest is refused later.
  if (body.seq > state.device.min_seq) saveDevice({ ...state.device, min_seq: body.seq });
  return body;
}

async function checkSealing() {
  try {
    await verifiedManifest();
    state.sealBlocked = null;
  } catch (error) {
    state.sealBlocked = error instanceof UserError ? error.key : "seal.manifest_invalid";
  }
  renderSealBlocked();
}

// -- Config documents: instrument packs and record schemas ------------------------

async function loadConfig() {
  const rows = (await state.config.allDocs({ include_docs: true })).rows;
  const packs = {};
  let schema = null;
  for (const { doc } of rows) {
    if (doc.type === "instrument-pack" && doc.pack) {
      const current = packs[doc.pack.id];
      if (!current || compareVersions(doc.pack.version, current.version) > 0) packs[doc.pack.id] = doc.pack;
    } else if (doc._id === SCREENING_SCHEMA) {
      schema = doc;
    }
  }
  const changed = JSON.stringify([packs, schema?._rev]) !== JSON.stringify([state.packs, state.schema?._rev]);
  state.packs = packs;
  if (schema && schema._rev !== state.schema?._rev) {
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    addFormats(ajv);
    state.validator = ajv.compile(schema.json_schema);
  }
  state.schema = schema;
  return changed;
}

function compareVersions(left, right) {
  const a = left.split(".").map(Number);
  const b = right.split(".").map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
  }
  return 0;
}

// -- Capture -----------------------------------------------------------------------

function nowIso() {
  return new Date().toISOString().slice(0, 19) + "Z";
}

/** Read the form into a screening document (plaintext, in memory only). */
function readForm() {
  const pack = state.packs[$("#instrument").value];
  const assent = document.querySelector("input[name=assent]:checked")?.value ?? null;
  const explained = $("#confidentiality").checked;
  const responses = [];
  const notes = [];
  for (const item of pack.items) {
    const value = $(`#answer-${item.code}`).value;
    if (value) responses.push({ item_code: item.code, value, timeframe: item.timeframes?.[0] ?? null });
    const note = $(`#note-${item.code}`).value;
    if (note) notes.push({ item_code: item.code, text: note });
  }
  const now = nowIso();
  return {
    _id: `screening:${crypto.randomUUID()}`,
    type: "screening",
    schema: state.schema.schema_id,
    org: null,
    owner: state.device.worker,
    device: state.device.device_id,
    created_at: now,
    updated_at: now,
    youth_code: $("#youth-code").value,
    instrument: pack.id,
    instrument_version: pack.version,
    mode: $("#mode").value,
    administered_at: now,
    assent,
    confidentiality_limits_explained: explained,
    confidentiality_explained_at: explained ? now : null,
    responses,
    response_notes: notes.length ? notes : null,
    followup_action: $("#followup").value,
  };
}

/** Problems with a form: the exported JSON Schema, then the cross-field rules. */
function formProblems(doc, pack) {
  const problems = [];
  if (!state.validator(doc)) {
    for (const error of state.validator.errors) {
      const field = (error.instancePath || "/").split("/").filter(Boolean)[0] ?? error.params?.missingProperty ?? "";
      const message = translate(state.lang, `validation.${error.keyword}`, error.params) ?? error.message;
      problems.push(t("form.field", { field, message }));
    }
  }
  if (doc.assent === "declined" && (doc.responses.length || doc.response_notes)) {
    problems.push(t("form.rule.declined_has_answers"));
  }
  if (doc.responses.length && !doc.confidentiality_limits_explained) {
    problems.push(t("form.rule.confidentiality_first"));
  }
  for (const response of doc.responses) {
    const item = pack.items.find((entry) => entry.code === response.item_code);
    if (!item || !pack.answer_sets[item.answers].values.includes(response.value)) {
      problems.push(t("form.rule.answer_not_allowed"));
    }
  }
  return problems;
}

async function saveForm(event) {
  event.preventDefault();
  const errors = $("#form-errors");
  errors.replaceChildren();
  let manifestBody;
  try {
    manifestBody = await verifiedManifest();
  } catch (error) {
    state.sealBlocked = error instanceof UserError ? error.key : "seal.manifest_invalid";
    renderSealBlocked();
    return;
  }
  const pack = state.packs[$("#instrument").value];
  const doc = readForm();
  doc.org = manifestBody.org;
  const problems = formProblems(doc, pack);
  if (problems.length) {
    errors.append(el("p", { text: t("form.invalid") }), el("ul", {}, problems.map((text) => el("li", { text }))));
    return;
  }
  // Sealed in memory; only the sealed copy and its envelope reach IndexedDB.
  const { sealed, envelope } = await sealDocument(doc, {
    paths: state.schema.identifying_paths, org: manifestBody.org, manifestBody,
    device: state.device.device_id,
  });
  await state.records.bulkDocs([sealed, envelope]);
  state.lastSaved = doc.youth_code;
  renderForm({ keep: false });
  await renderList();
}

// -- Sync -----------------------------------------------------------------------------

function startSync() {
  stopSync();
  if (!state.device) return;
  state.syncError = null;
  const configPull = state.config.replicate.from(remote("config"), { live: true, retry: true });
  configPull.on("change", async () => {
    if (await loadConfig()) renderForm();
    await checkSealing();
  });
  configPull.on("paused", (error) => { if (!error) markSynced(); });
  configPull.on("error", onSyncError);
  const sync = state.records.sync(remote("records"), { live: true, retry: true, batch_size: 100 });
  sync.on("active", () => { state.syncing = true; renderStatus(); });
  sync.on("paused", (error) => {
    state.syncing = false;
    state.syncError = error ? "status.error" : null;
    if (!error) markSynced();
    renderStatus();
  });
  sync.on("change", async (info) => {
    if (info.direction !== "push") return;
    const ids = info.change.docs.map((doc) => doc._id).filter((id) => !id.startsWith("rk:"));
    await updateStatus((status) => {
      for (const id of ids) {
        status.synced[id] = true;
        delete status.refused[id];
      }
    });
    markSynced();
    await renderList();
  });
  sync.on("denied", async (info) => {
    const answer = info.doc ?? {};
    if (typeof answer.id !== "string" || answer.id.startsWith("rk:")) return;
    await updateStatus((status) => {
      status.refused[answer.id] = {
        rule: answer.rule ?? null, reason: answer.reason ?? answer.message ?? "",
        fields: answer.fields ? Object.keys(answer.fields) : [],
        sealed_field: JSON.stringify(answer.fields ?? {}).includes("sealed fle/1"),
      };
    });
    await renderList();
  });
  sync.on("error", onSyncError);
  state.sync = sync;
  state.configPull = configPull;
}

function stopSync() {
  state.sync?.cancel();
  state.configPull?.cancel();
  state.sync = null;
  state.configPull = null;
}

function markSynced() {
  if (!navigator.onLine) return;
  localStorage.setItem(LAST_SYNC, new Date().toISOString());
  renderStatus();
}

async function onSyncError(error) {
  if (error?.status === 401 || error?.name === "unauthorized") {
    if (await deviceRevoked(error)) {
      await wipe();
      return;
    }
    state.syncError = "status.not_authorized";
  } else {
    state.syncError = "status.error";
  }
  renderStatus();
}

/** True when the server says this very device was revoked (401 `device_revoked`). */
async function deviceRevoked(error) {
  if (error?.code === "device_revoked") return true;
  try {
    const answer = await fetch(new URL("sync/", state.device.base), {
      headers: { Authorization: `Bearer ${state.device.token}` },
    });
    if (answer.status !== 401) return false;
    return (await answer.json()).code === "device_revoked";
  } catch {
    return false;
  }
}

/** Destroy every local database and the credentials; keep only a notice. */
async function wipe() {
  stopSync();
  await Promise.allSettled([state.records?.destroy(), state.config?.destroy()]);
  state.records = null;
  state.config = null;
  state.device = null;
  state.packs = {};
  state.schema = null;
  const lang = state.lang;
  localStorage.clear();
  localStorage.setItem(LANG, lang);
  localStorage.setItem(NOTICE, "revoked.wiped");
  render();
}

// -- Rendering ---------------------------------------------------------------------------

function render() {
  const kept = formValues();
  document.documentElement.lang = state.lang;
  document.title = t("app.title");
  const root = $("#app");
  root.replaceChildren(
    el("header", {},
      el("h1", { text: t("app.title") }),
      el("button", { id: "lang-toggle", type: "button", onclick: switchLanguage, text: t("lang.switch") })),
  );
  const notice = localStorage.getItem(NOTICE);
  if (notice) root.append(el("p", { id: "notice", class: "notice", role: "alert", text: t(notice) }));
  if (!state.device) {
    root.append(renderEnroll());
    return;
  }
  root.append(
    el("div", { class: "statusbar" },
      el("section", { id: "status", "aria-live": "polite" }),
      el("button", { id: "sync-now", type: "button", onclick: startSync, text: t("sync.now") })),
    el("p", { id: "seal-blocked", class: "blocked", role: "alert", hidden: true }),
    el("section", { id: "capture" }),
    el("section", { id: "intakes" }),
  );
  renderStatus();
  renderSealBlocked();
  renderForm();
  restoreFormValues(kept);
  renderList();
}

function switchLanguage() {
  state.lang = LANGUAGES[(LANGUAGES.indexOf(state.lang) + 1) % LANGUAGES.length];
  localStorage.setItem(LANG, state.lang);
  render();
}

function renderEnroll() {
  const error = el("p", { id: "enroll-error", class: "error", role: "alert" });
  const input = el("input", { id: "enroll-code", autocomplete: "off", autocapitalize: "none", spellcheck: "false" });
  // Empty means the service that served the app; a separate static host
  // needs the service's address typed here.
  const service = el("input", {
    id: "enroll-service", type: "url", inputmode: "url", autocomplete: "off", autocapitalize: "none",
    spellcheck: "false", placeholder: servedBase(),
  });
  const button = el("button", { id: "enroll-button", type: "submit", text: t("enroll.submit") });
  const form = el("form", {
    id: "enroll", onsubmit: async (event) => {
      event.preventDefault();
      button.disabled = true;
      button.textContent = t("enroll.working");
      try {
        await enroll(input.value, service.value);
        localStorage.removeItem(NOTICE);
        openDatabases();
        render();
        startSync();
      } catch (failure) {
        error.textContent = t(failure instanceof UserError ? failure.key : "enroll.refused");
        button.disabled = false;
        button.textContent = t("enroll.submit");
      }
    },
  },
  el("h2", { text: t("enroll.heading") }),
  el("p", { text: t("enroll.help") }),
  el("label", { for: "enroll-code", text: t("enroll.code") }),
  input,
  el("label", { for: "enroll-service", text: t("enroll.service") }),
  el("p", { class: "hint", text: t("enroll.service_help") }),
  service, button, error);
  return form;
}

function renderStatus() {
  const box = $("#status");
  if (!box || !state.device) return;
  const last = localStorage.getItem(LAST_SYNC);
  const online = navigator.onLine;
  box.replaceChildren(...[
    el("span", { id: "status-online", class: online ? "online" : "offline", text: t(online ? "status.online" : "status.offline") }),
    el("span", { id: "status-pending" }),
    el("span", { id: "status-last", text: last ? t("status.last_sync", { time: new Date(last).toLocaleTimeString(state.lang) }) : t("status.never") }),
    state.syncing ? el("span", { id: "status-syncing", text: t("status.syncing") }) : null,
    state.syncError ? el("span", { id: "status-error", class: "error", text: t(state.syncError) }) : null,
  ].filter(Boolean));
  pendingCount().then((count) => {
    const pending = $("#status-pending");
    if (pending) {
      pending.textContent = t("status.pending", { count });
      pending.dataset.count = String(count);
    }
  });
}

function renderSealBlocked() {
  const box = $("#seal-blocked");
  if (!box) return;
  box.hidden = !state.sealBlocked;
  box.textContent = state.sealBlocked ? t("seal.blocked", { reason: t(state.sealBlocked) }) : "";
  const save = $("#save");
  if (save) save.disabled = Boolean(state.sealBlocked);
}

function options(select, values, labelOf, selected) {
  select.replaceChildren(...values.map((value) => el("option", { value, selected: value === selected, text: labelOf(value) })));
  return select;
}

/** Values of the form's fields by id (kept in memory only, across a re-render). */
function formValues() {
  const values = {};
  for (const field of document.querySelectorAll("#screening-form [id]")) {
    if (field.type === "checkbox" || field.type === "radio") values[field.id] = field.checked;
    else if ("value" in field && field.tagName !== "BUTTON") values[field.id] = field.value;
  }
  return values;
}

function restoreFormValues(values) {
  for (const [id, value] of Object.entries(values)) {
    const field = document.getElementById(id);
    if (!field || id === "instrument") continue;
    if (field.type === "checkbox" || field.type === "radio") {
      field.checked = value;
    } else if (field.tagName !== "SELECT" || [...field.options].some((option) => option.value === value)) {
      field.value = value;
    }
  }
}

/** Draw the capture form; a language switch or new config keeps what was typed. */
function renderForm({ keep = true } = {}) {
  const box = $("#capture");
  if (!box) return;
  const kept = keep ? formValues() : {};
  const packIds = Object.keys(state.packs).sort();
  if (!state.schema || !packIds.length) {
    box.replaceChildren(el("h2", { text: t("form.heading") }), el("p", { id: "form-waiting", text: t("form.waiting_config") }));
    return;
  }
  const current = $("#instrument")?.value ?? state.instrument;
  const pack = state.packs[packIds.includes(current) ? current : packIds.includes("QYIT") ? "QYIT" : packIds[0]];
  const properties = state.schema.json_schema.properties;
  const instrument = options(el("select", { id: "instrument" }), packIds, (id) => state.packs[id].title ?? id, pack.id);
  state.instrument = pack.id;
  instrument.addEventListener("change", () => renderForm());
  const youthCode = el("input", { id: "youth-code", value: newYouthCode(), autocomplete: "off", spellcheck: "false" });
  const items = pack.items.map((item) => {
    const values = pack.answer_sets[item.answers].values;
    const prompt = translate(state.lang, `item.${pack.id}.${item.code}`) ?? item.prompt;
    return el("fieldset", { class: "item" },
      el("legend", { text: prompt }),
      options(el("select", { id: `answer-${item.code}`, "aria-label": prompt }), ["", ...values],
        (value) => (value ? label("answer", value) : t("form.not_asked")), ""),
      el("label", { for: `note-${item.code}`, text: t("form.note") }),
      el("textarea", { id: `note-${item.code}`, rows: 2, maxlength: 1000 }));
  });
  box.replaceChildren(el("form", { id: "screening-form", onsubmit: saveForm, novalidate: true },
    el("h2", { text: t("form.heading") }),
    state.lastSaved ? el("p", { id: "saved", class: "saved", role: "status", text: t("form.saved", { code: state.lastSaved }) }) : null,
    el("label", { for: "instrument", text: t("form.instrument") }), instrument,
    el("label", { for: "youth-code", text: t("form.youth_code") }),
    el("div", { class: "row" }, youthCode,
      el("button", { id: "new-code", type: "button", onclick: () => { youthCode.value = newYouthCode(); }, text: t("form.new_code") })),
    el("label", { for: "mode", text: t("form.mode") }),
    options(el("select", { id: "mode" }), pack.modes.filter((mode) => properties.mode.enum.includes(mode)), (m) => label("mode", m)),
    el("fieldset", {}, el("legend", { text: t("form.assent") }),
      el("label", {}, el("input", { type: "radio", name: "assent", id: "assent-given", value: "given", checked: true }), t("form.assent.given")),
      el("label", {}, el("input", { type: "radio", name: "assent", id: "assent-declined", value: "declined" }), t("form.assent.declined"))),
    el("label", { class: "check" }, el("input", { type: "checkbox", id: "confidentiality" }), t("form.confidentiality")),
    el("h3", { text: t("form.items") }), items,
    el("label", { for: "followup", text: t("form.followup") }),
    options(el("select", { id: "followup" }), properties.followup_action.enum, (f) => label("followup", f)),
    el("div", { id: "form-errors", class: "error", role: "alert" }),
    el("button", { id: "save", type: "submit", disabled: Boolean(state.sealBlocked), text: t("form.save") })));
  restoreFormValues(kept);
}

async function pendingCount() {
  if (!state.records) return 0;
  const status = await readStatus();
  const rows = (await state.records.allDocs({ startkey: "screening:", endkey: "screening:\uffff" })).rows;
  return rows.filter((row) => !status.synced[row.id] && !status.refused[row.id]).length;
}

function refusalText(refusal) {
  const fields = refusal.fields.join(", ");
  if (refusal.sealed_field) return t("refusal.sealed_field", { fields });
  if (refusal.rule === "schema") return t("refusal.schema", { fields });
  if (refusal.rule === "owner") return t("refusal.owner");
  if (refusal.rule === "youth_sealed") return t("refusal.youth_sealed");
  if (["key_version", "envelope"].includes(refusal.rule)) return t("refusal.key");
  return t("refusal.other", { reason: refusal.reason });
}

async function renderList() {
  const box = $("#intakes");
  if (!box || !state.records) return;
  const status = await readStatus();
  const today = new Date().toISOString().slice(0, 10);
  const rows = (await state.records.allDocs({ include_docs: true, startkey: "screening:", endkey: "screening:\uffff" })).rows
    .map((row) => row.doc)
    .filter((doc) => typeof doc.created_at === "string" && doc.created_at.startsWith(today))
    .sort((a, b) => b.created_at.localeCompare(a.created_at));
  // Youth code and time only: nothing else of a record is shown.
  const items = rows.map((doc) => {
    const refusal = status.refused[doc._id];
    const state_ = refusal ? "refused" : status.synced[doc._id] ? "synced" : "pending";
    return el("li", { class: `intake ${state_}`, "data-id": doc._id, "data-state": state_ },
      el("span", { class: "code", text: doc.youth_code ?? "" }),
      el("time", { datetime: doc.created_at, text: new Date(doc.created_at).toLocaleTimeString(state.lang, { hour: "2-digit", minute: "2-digit" }) }),
      el("span", { class: "state", text: t(`list.${state_}`) }),
      refusal ? el("p", { class: "reason", text: refusalText(refusal) }) : null,
      refusal ? el("button", { class: "redo", type: "button", onclick: () => redo(doc), text: t("list.redo") }) : null);
  });
  box.replaceChildren(el("h2", { text: t("list.heading") }),
    items.length ? el("ul", { id: "intake-list" }, items) : el("p", { text: t("list.empty") }));
  renderStatus();
}

/** Drop a refused record (its tombstone syncs) and start a new form for the same youth. */
async function redo(doc) {
  await state.records.remove(doc);
  await updateStatus((status) => { delete status.refused[doc._id]; });
  renderForm({ keep: false });
  $("#youth-code").value = doc.youth_code ?? newYouthCode();
  await renderList();
}

// -- Start ------------------------------------------------------------------------------

async function main() {
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("sw.js").catch(() => {});
  }
  window.addEventListener("online", () => { renderStatus(); startSync(); });
  window.addEventListener("offline", renderStatus);
  if (state.device) {
    openDatabases();
    await loadConfig();
  }
  render();
  if (state.device) {
    await checkSealing();
    startSync();
  }
  document.body.dataset.ready = "true";
}

main();

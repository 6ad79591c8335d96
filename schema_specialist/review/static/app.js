// schemagen review: one pair at a time; every decision is POSTed to the server, which appends it to
// decisions.jsonl. Each pair carries a version; a decision names the version it was made on, and the
// server answers 409 (with the pair's current state) when another tab got there first.
"use strict";

const $ = (id) => document.getElementById(id);
const S = {
  data: null, pairs: [], byId: new Map(), filtered: [], current: null, seq: 0,
  mode: "view", base: 0, ticket: 0, validFor: null, stats: null, rejected: null,
};

// ---- helpers ----------------------------------------------------------------------------------
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  let data = null;
  try { data = await resp.json(); } catch (e) { data = { error: { message: `HTTP ${resp.status}` } }; }
  return { status: resp.status, ok: resp.ok, data };
}

function say(text, error) {
  const m = $("message");
  m.textContent = text;
  m.className = error ? "error" : "";
  m.hidden = !text;
}

function fmt(x) {
  if (typeof x !== "number") return String(x);
  if (Number.isInteger(x)) return String(x);
  return Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(2) : x.toPrecision(2);
}

// Leaf values of an instance by path: "a.b" for keys, "a[]" for array items (as stats.py names them).
function leaves(value, path, out) {
  out = out || [];
  if (Array.isArray(value)) value.forEach((v) => leaves(v, `${path}[]`, out));
  else if (value !== null && typeof value === "object")
    for (const [k, v] of Object.entries(value)) leaves(v, path ? `${path}.${k}` : k, out);
  else out.push([path || "(value)", value]);
  return out;
}

function parsed(pair) {
  if (pair._parsedFor !== pair.answer) {
    try { pair._parsed = JSON.parse(pair.answer); } catch (e) { pair._parsed = undefined; }
    pair._parsedFor = pair.answer;
  }
  return pair._parsed;
}

function label(v) { return v === null ? "null" : typeof v === "boolean" ? String(v) : String(v); }

// ---- filters ----------------------------------------------------------------------------------
function fillSelect(id, values, allLabel) {
  const s = $(id), keep = s.value;
  s.replaceChildren(el("option", { value: "", text: allLabel }));
  for (const v of values) s.append(el("option", { value: v, text: v }));
  if ([...s.options].some((o) => o.value === keep)) s.value = keep;
}

function fillFilters() {
  const d = S.data;
  fillSelect("filter-split", d.splits, "all");
  fillSelect("filter-source", [...new Set(S.pairs.map((p) => p.source))].sort(), "all");
  fillSelect("filter-status", ["unreviewed", "reviewed", ...d.statuses.filter((s) => s !== "unreviewed")], "all");
  const reasons = [...new Set(S.pairs.map((p) => p.reason).filter(Boolean))].sort();
  fillSelect("filter-reason", reasons, "any");
  $("reasons").replaceChildren(...reasons.map((r) => el("option", { value: r })));
  const fields = [...new Set(S.pairs.flatMap((p) => leaves(parsed(p), "").map(([k]) => k)))];
  fillSelect("filter-field", fields, "(any field)");
}

function matches(p) {
  const split = $("filter-split").value, source = $("filter-source").value, status = $("filter-status").value;
  const reason = $("filter-reason").value, field = $("filter-field").value, value = $("filter-value").value.trim();
  const text = $("filter-text").value.trim().toLowerCase();
  if (split && p.split !== split) return false;
  if (source && p.source !== source) return false;
  if (status === "reviewed" ? p.status === "unreviewed" : status && p.status !== status) return false;
  if (reason && p.reason !== reason) return false;
  if (text && !p.question.toLowerCase().includes(text)) return false;
  if (value) {
    const vals = leaves(parsed(p), "").filter(([k]) => !field || k === field).map(([, v]) => v);
    const range = value.match(/^(-?[\d.e+-]+)\s*\.\.\s*(-?[\d.e+-]+)$/i);
    if (range) {
      const lo = Number(range[1]), hi = Number(range[2]);
      if (!vals.some((v) => typeof v === "number" && v >= lo && v <= hi)) return false;
    } else if (!vals.some((v) => label(v) === value)) return false;
  }
  return true;
}

function applyFilters(keepId) {
  S.filtered = S.pairs.filter(matches);
  renderList();
  const id = keepId || (S.current && S.current.id);
  const still = S.filtered.find((p) => p.id === id);
  show(still || S.filtered[0] || null);
}

// ---- list and pair ----------------------------------------------------------------------------
function renderList() {
  const ol = $("pair-list");
  ol.replaceChildren(...S.filtered.map((p) => {
    const li = el("li", { "data-id": p.id, class: `s-${p.status}`, title: p.status },
      el("span", { class: "dot" }), el("code", { text: p.id }), el("span", { class: "q", text: p.question }));
    li.addEventListener("click", () => show(p));
    return li;
  }));
  $("list-count").textContent = `${S.filtered.length} of ${S.pairs.length} pairs`;
  markCurrent();
}

function markCurrent() {
  for (const li of $("pair-list").children) li.classList.toggle("current", !!S.current && li.dataset.id === S.current.id);
}

function tree(value) {
  if (Array.isArray(value)) {
    const ul = el("ul", { class: "tree" });
    if (!value.length) return el("span", { class: "v-info", text: "[] empty" });
    value.forEach((v, i) => ul.append(el("li", {}, el("span", { class: "k", text: `[${i}]` }), " ", tree(v))));
    return ul;
  }
  if (value !== null && typeof value === "object") {
    const ul = el("ul", { class: "tree" });
    const keys = Object.keys(value);
    if (!keys.length) return el("span", { class: "v-info", text: "{} empty" });
    for (const k of keys) ul.append(el("li", {}, el("span", { class: "k", text: k }), ": ", tree(value[k])));
    return ul;
  }
  if (typeof value === "string") return el("span", { class: "v-str", text: JSON.stringify(value) });
  if (typeof value === "number") return el("span", { class: "v-num", text: String(value) });
  if (typeof value === "boolean") return el("span", { class: "v-bool", text: String(value) });
  return el("span", { class: "v-null", text: "null" });
}

function show(p, keepMode) {
  if (S.mode !== "view" && !(keepMode && p === S.current)) setMode("view");
  S.current = p;
  $("empty").hidden = !!p;
  $("pair").hidden = !p;
  markCurrent();
  if (!p) return;
  const i = S.filtered.indexOf(p);
  $("position").textContent = i >= 0 ? `${i + 1} / ${S.filtered.length}` : "";
  $("pair-id").textContent = p.id;
  $("pair-split").textContent = p.split;
  $("pair-source").textContent = `source: ${p.source}`;
  const st = $("pair-status");
  st.textContent = p.status;
  st.className = `status s-${p.status}`;
  $("pair-meta").textContent = p.who ? `v${p.version} · ${p.who} · ${p.at.replace("T", " ").slice(0, 19)}` : "not reviewed yet";
  $("question").textContent = p.question;
  const value = parsed(p);
  $("answer-tree").replaceChildren(value === undefined ? el("span", { class: "v-info", text: "not JSON" }) : tree(value));
  $("answer-raw").textContent = p.answer_pretty;
  $("original").hidden = p.answer === p.original;
  $("original-raw").textContent = p.original_pretty;
  $("reason-shown").hidden = p.status !== "rejected";
  $("reason-shown").textContent = p.status === "rejected" ? `rejected: ${p.reason}` : "";
  const li = $("pair-list").querySelector(`li[data-id="${CSS.escape(p.id)}"]`);
  if (li) li.scrollIntoView({ block: "nearest" });
}

function setMode(mode) {
  S.mode = mode;
  $("actions").hidden = mode !== "view";
  $("reject-form").hidden = mode !== "reject";
  $("edit-form").hidden = mode !== "edit";
  $("answer-edit").hidden = mode !== "edit";
  $("edit-status").hidden = mode !== "edit";
  $("answer-raw").hidden = mode === "edit";
  if (mode !== "view" && S.current) S.base = S.current.version;
}

function move(step) {
  if (!S.filtered.length) return;
  const i = S.filtered.indexOf(S.current);
  const j = Math.min(Math.max(i + step, 0), S.filtered.length - 1);
  show(S.filtered[i < 0 ? 0 : j]);
}

function nextUnreviewed() {
  const i = S.filtered.indexOf(S.current);
  const rest = [...S.filtered.slice(i + 1), ...S.filtered.slice(0, i + 1)];
  const p = rest.find((q) => q.status === "unreviewed");
  if (p) show(p); else say("Every pair in this list is reviewed.");
}

// ---- decisions --------------------------------------------------------------------------------
function update(view) {
  const p = S.byId.get(view.id);
  Object.assign(p, view);
  return p;
}

function setCounts(c) {
  const total = Object.values(c).reduce((a, b) => a + b, 0);
  $("counts").replaceChildren(
    ...["approved", "edited", "rejected", "unreviewed"].map((k) =>
      el("span", { class: `chip s-${k}`, id: `count-${k}` }, el("span", { class: `dot s-${k}` }), ` ${k} ${c[k]}`)),
    el("span", { class: "chip", text: `${total - c.unreviewed}/${total} reviewed` }));
}

async function decide(action, extra) {
  const p = S.current;
  if (!p) return false;
  const base = S.mode === "view" ? p.version : S.base;
  const r = await api("POST", "/api/decisions", { pair: p.id, action, base, ...(extra || {}) });
  if (r.status === 409) {
    const now = update(r.data.pair);
    S.base = now.version;
    say(`Not saved: ${p.id} was changed elsewhere (now ${now.status}${now.who ? ` by ${now.who}` : ""}). ` +
        "Look at it again; deciding once more will replace that decision.", true);
    refreshView(p.id, true);
    return false;
  }
  if (!r.ok) {
    const errs = (r.data.errors || []).map((e) => `${e.path || "/"}: ${e.message}`).join("; ");
    say(`Not saved: ${r.data.error ? r.data.error.message : r.status}${errs ? ` (${errs})` : ""}`, true);
    return false;
  }
  say("");
  const next = S.filtered[S.filtered.indexOf(p) + 1];
  update(r.data.pair);
  S.seq = Math.max(S.seq, r.data.seq);
  setCounts(r.data.counts);
  setMode("view");
  fillFilters();
  S.filtered = S.pairs.filter(matches);
  renderList();
  const stay = S.filtered.includes(next) ? next : S.filtered.includes(p) ? p : S.filtered[0] || null;
  show(action === "reset" ? p : stay);
  loadStats();
  return true;
}

function refreshView(id, keepMode) {
  const mode = S.mode;
  S.filtered = S.pairs.filter(matches);
  renderList();
  const p = S.byId.get(id);
  if (keepMode && mode !== "view" && p === S.current) { show(p, true); return; }
  show(S.filtered.includes(p) ? p : S.current);
}

function startReject() {
  if (!S.current) return;
  setMode("reject");
  $("reject-reason").value = "";
  $("reject-reason").focus();
}

async function confirmReject() {
  const reason = $("reject-reason").value.trim();
  if (!reason) { say("A rejection needs a reason.", true); $("reject-reason").focus(); return; }
  await decide("reject", { reason });
}

function startEdit() {
  if (!S.current) return;
  setMode("edit");
  const ta = $("answer-edit");
  ta.value = S.current.answer_pretty;
  ta.focus();
  validateEdit();
}

function editStatus(cls, text, errors) {
  const box = $("edit-status");
  box.className = cls;
  box.replaceChildren(el("span", { text }));
  if (errors && errors.length) box.append(el("ul", {}, ...errors.map((e) => el("li", { text: `${e.path || "/"}: ${e.message}` }))));
}

let validateTimer = null;
function validateEdit() {
  const text = $("answer-edit").value;
  S.validFor = null;
  $("save-edit").disabled = true;
  const ticket = ++S.ticket;
  try { JSON.parse(text); } catch (e) {
    editStatus("invalid", `invalid: not JSON (${e.message})`);
    return;
  }
  editStatus("", "checking against the schema…");
  clearTimeout(validateTimer);
  validateTimer = setTimeout(async () => {
    const r = await api("POST", "/api/validate", { answer: text });
    if (ticket !== S.ticket) return;  // the text changed meanwhile
    if (r.ok && r.data.valid) {
      S.validFor = text;
      $("save-edit").disabled = false;
      editStatus("valid", "valid against the schema (format checker included)");
    } else {
      editStatus("invalid", "invalid: cannot be saved", r.ok ? r.data.errors : [{ path: "", message: r.data.error.message }]);
    }
  }, 150);
}

async function saveEdit() {
  const text = $("answer-edit").value;
  if (S.validFor !== text) { say("The edit is not valid against the schema: not saved.", true); return; }
  await decide("edit", { answer: text });
}

// ---- other tabs -------------------------------------------------------------------------------
async function poll() {
  if (document.hidden) return;
  const r = await api("GET", `/api/changes?since=${S.seq}`);
  if (!r.ok) return;
  S.seq = Math.max(S.seq, r.data.seq);
  if (!r.data.pairs.length) return;
  let currentChanged = false;
  for (const v of r.data.pairs) {
    const p = S.byId.get(v.id);
    if (!p || p.version >= v.version) continue;
    update(v);
    if (p === S.current) currentChanged = true;
  }
  setCounts(r.data.counts);
  if (currentChanged && S.mode !== "view")
    say(`${S.current.id} was just changed elsewhere (now ${S.current.status} by ${S.current.who}); saving yours will be refused until you look again.`, true);
  refreshView(S.current ? S.current.id : null, true);
  loadStats();
}

// ---- stats, card, generator rejects -----------------------------------------------------------
async function loadStats() {
  const r = await api("GET", "/api/stats");
  if (!r.ok) return;
  $("stats-over").textContent = `over ${r.data.over} pairs`;
  $("histograms").replaceChildren(...r.data.histograms.map(chart));
}

function chart(h) {
  const rows = h.kind === "range"
    ? h.bins.map(([lo, hi, n]) => [`${fmt(lo)}–${fmt(hi)}`, n, `${lo}..${hi}`])
    : h.counts.map(([k, n]) => [k, n, k]);
  const most = Math.max(1, ...rows.map((r) => r[1]));
  return el("div", { class: "chart", "data-field": h.field },
    el("div", { class: "chart-title", text: h.field + " " }, el("small", { text: h.kind === "range" ? "range" : "values" })),
    ...rows.map(([lab, n, value]) => {
      const fill = el("span", { class: "fill" });
      fill.style.width = `${(100 * n) / most}%`;
      const row = el("div", { class: `bar-row${n ? "" : " zero"}`, title: `${h.field} = ${lab}: ${n}` },
        el("span", { class: "bar-label", text: lab }), el("span", { class: "bar" }, fill), el("span", { class: "bar-n", text: String(n) }));
      row.addEventListener("click", () => {
        $("filter-field").value = h.field;
        $("filter-value").value = value;
        showTab("pairs");
        applyFilters();
      });
      return row;
    }));
}

function renderFigures(rows) {
  $("figures").tBodies[0].replaceChildren(...rows.map(([k, v]) => el("tr", {}, el("td", { text: k }), el("td", { text: v }))));
}

async function showTab(name) {
  $("tab-pairs").classList.toggle("active", name === "pairs");
  $("tab-rejects").classList.toggle("active", name === "rejects");
  $("pair-view").hidden = name !== "pairs";
  $("rejects-view").hidden = name !== "rejects";
  if (name === "rejects" && !S.rejected) {
    const r = await api("GET", "/api/rejected");
    if (!r.ok) return;
    S.rejected = r.data;
    fillSelect("rejects-reason", Object.keys(r.data.reasons).sort(), `all (${r.data.total})`);
    renderRejected();
  }
}

function renderRejected() {
  const want = $("rejects-reason").value;
  const rows = S.rejected.rows.filter((r) => !want || r.reason.split(":")[0] === want);
  $("rejects-table").tBodies[0].replaceChildren(...rows.map((r) =>
    el("tr", {}, el("td", { text: String(r.candidate ?? "") }), el("td", { text: r.reason }),
      el("td", { text: r.question || r.output }))));
}

// ---- keys and start ---------------------------------------------------------------------------
function onKey(ev) {
  const t = ev.target, typing = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT");
  if (S.mode === "edit" && ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); saveEdit(); return; }
  if (S.mode === "reject" && ev.key === "Enter" && t === $("reject-reason")) { ev.preventDefault(); confirmReject(); return; }
  if (ev.key === "Escape" && S.mode !== "view") { ev.preventDefault(); setMode("view"); show(S.current); return; }
  if (typing || ev.ctrlKey || ev.metaKey || ev.altKey || S.mode !== "view") return;
  const keys = {
    a: () => decide("approve"), r: startReject, e: startEdit, u: () => decide("reset"),
    j: () => move(1), ArrowDown: () => move(1), ArrowRight: () => move(1),
    k: () => move(-1), ArrowUp: () => move(-1), ArrowLeft: () => move(-1),
    n: nextUnreviewed, "?": () => { $("help").hidden = !$("help").hidden; },
  };
  if (keys[ev.key]) { ev.preventDefault(); keys[ev.key](); }
}

async function start() {
  const r = await api("GET", "/api/state");
  if (!r.ok) { say(`Cannot load the dataset: ${r.data.error.message}`, true); return; }
  const d = S.data = r.data;
  S.pairs = d.pairs;
  S.byId = new Map(S.pairs.map((p) => [p.id, p]));
  S.seq = d.seq;
  $("dataset").textContent = d.dataset;
  $("title").textContent = d.title;
  $("reviewer").textContent = d.reviewer;
  $("rejects-count").textContent = `(${d.rejected_count})`;
  setCounts(d.counts);
  renderFigures(d.figures);
  fillFilters();
  applyFilters();
  loadStats();
  for (const id of ["filter-split", "filter-source", "filter-status", "filter-reason", "filter-field"])
    $(id).addEventListener("change", () => applyFilters());
  for (const id of ["filter-value", "filter-text"]) $(id).addEventListener("input", () => applyFilters());
  $("filter-clear").addEventListener("click", () => { $("filters").reset(); applyFilters(); });
  $("approve").addEventListener("click", () => decide("approve"));
  $("reject").addEventListener("click", startReject);
  $("reject-confirm").addEventListener("click", confirmReject);
  $("reject-cancel").addEventListener("click", () => { setMode("view"); show(S.current); });
  $("edit").addEventListener("click", startEdit);
  $("reset").addEventListener("click", () => decide("reset"));
  $("answer-edit").addEventListener("input", validateEdit);
  $("save-edit").addEventListener("click", saveEdit);
  $("cancel-edit").addEventListener("click", () => { setMode("view"); show(S.current); });
  $("prev").addEventListener("click", () => move(-1));
  $("next").addEventListener("click", () => move(1));
  $("help-toggle").addEventListener("click", () => { $("help").hidden = !$("help").hidden; });
  $("tab-pairs").addEventListener("click", () => showTab("pairs"));
  $("tab-rejects").addEventListener("click", () => showTab("rejects"));
  $("rejects-reason").addEventListener("change", renderRejected);
  document.addEventListener("keydown", onKey);
  document.addEventListener("visibilitychange", poll);
  window.addEventListener("focus", poll);
  setInterval(poll, 4000);
  document.body.dataset.ready = "1";
}

start();

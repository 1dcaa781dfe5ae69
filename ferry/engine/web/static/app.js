// Ferry dashboard. Plain JavaScript, no libraries: everything comes from the engine's REST API
// with the bearer token kept in sessionStorage. Lists are refreshed every 2 s; each migration in
// flight is followed with the long poll GET /api/migrations/{id}/wait?since=<updated_at>; events
// are followed with GET /api/events?after=<last id>. A token whose role may not change anything
// (GET /api/whoami says may_change: false) gets no action buttons at all, only Plan: a plan is a
// read (POST /api/vms/{vm}/plan is open to readonly tokens). Hosts draining or in maintenance
// have their drain's progress read with GET /api/hosts/{name}/maintenance at each refresh.
"use strict";

const TOKEN_KEY = "ferry.token";
const FINAL = ["SUCCEEDED", "FAILED", "CANCELLED", "ABORTED"];
const ACTIVE = ["PENDING", "RUNNING", "CANCELLING"];
const DRAINING = "PREPARING_FOR_MAINTENANCE";
const state = { me: null, hosts: [], vms: [], maintenance: new Map(), migrations: new Map(), lastEvent: null, watching: new Set(), timers: [] };

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

class ApiError extends Error {
  constructor(status, detail) {
    super((detail && (detail.message || detail.reason)) || `HTTP ${status}`);
    this.status = status;
    this.field = detail && detail.field;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await r.json(); } catch (_) { data = null; }
  if (r.status === 401) { logout("The engine refused the token: " + ((data && data.detail && data.detail.message) || "401")); }
  if (!r.ok) throw new ApiError(r.status, data && data.detail);
  return data;
}

// ---------------------------------------------------------------- formatting
function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}
const rate = (bps) => (bps ? `${bytes(bps)}/s` : "—");
function clock(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleTimeString([], { hour12: false });
}
function badge(text, prefix = "s") { return el("span", { class: `badge ${prefix}-${text}`, text }); }
function eta(m) {
  const e = m.eta;
  if (!e || typeof e.seconds !== "number") return "—";
  const s = `~${Math.max(0, Math.round(e.seconds))} s`;
  return e.outcome && e.outcome !== "converge" ? `${s} (${e.outcome})` : s;
}
function notice(text, isError = false) {
  const n = $("#notice");
  n.textContent = text;
  n.classList.toggle("error", isError);
}
const canChange = () => Boolean(state.me && state.me.may_change);

// ---------------------------------------------------------------- login
async function login(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    state.me = await api("GET", "/api/whoami");
  } catch (err) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("#login-error").textContent = err.message;
    showLogin();
    return;
  }
  $("#login-error").textContent = "";
  $("#who-name").textContent = state.me.name;
  const role = $("#who-role");
  role.textContent = state.me.role;
  role.className = `badge role-${state.me.role}`;
  document.body.dataset.role = state.me.role;
  $("#login").hidden = true;
  $("#who").hidden = false;
  $("#app").hidden = false;
  start();
}

function showLogin() {
  $("#login").hidden = false;
  $("#who").hidden = true;
  $("#app").hidden = true;
}

function logout(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.timers.forEach(clearInterval);
  state.timers = [];
  state.me = null;
  if (reason) $("#login-error").textContent = reason;
  showLogin();
}

// ---------------------------------------------------------------- data
async function refresh() {
  try {
    const [hosts, vms, migrations] = await Promise.all([
      api("GET", "/api/hosts"), api("GET", "/api/vms"), api("GET", "/api/migrations?limit=20")]);
    state.hosts = hosts;
    state.vms = vms;
    const inMaintenance = hosts.filter((h) => h.status === DRAINING || h.status === "MAINTENANCE");
    const views = await Promise.all(inMaintenance.map((h) =>
      api("GET", `/api/hosts/${encodeURIComponent(h.name)}/maintenance`).catch(() => null)));
    state.maintenance = new Map(inMaintenance.map((h, i) => [h.name, views[i]]));
    const listed = new Set(migrations.map((m) => m.id));
    for (const id of [...state.migrations.keys()]) {
      if (!listed.has(id) && !state.watching.has(id)) state.migrations.delete(id);   // gone (its VM was removed)
    }
    for (const m of migrations) {
      const known = state.migrations.get(m.id);
      if (!known || known.updated_at !== m.updated_at) state.migrations.set(m.id, m);
      if (ACTIVE.includes(m.state)) watch(m.id);
    }
    render();
  } catch (err) {
    if (err.status !== 401) notice(`cannot reach the engine: ${err.message}`, true);
  }
}

async function watch(id) {
  // One long poll per migration in flight: answers as soon as its record changes.
  if (state.watching.has(id)) return;
  state.watching.add(id);
  try {
    while (state.me) {
      const known = state.migrations.get(id);
      const since = known ? `&since=${encodeURIComponent(known.updated_at)}` : "";
      const m = await api("GET", `/api/migrations/${encodeURIComponent(id)}/wait?timeout=10${since}`);
      state.migrations.set(id, m);
      renderMigrations();
      renderHosts();
      if (FINAL.includes(m.state)) { refresh(); break; }
    }
  } catch (err) {
    if (err.status !== 401) notice(`lost track of migration ${id}: ${err.message}`, true);
  } finally {
    state.watching.delete(id);
  }
}

async function followEvents() {
  // One read at a time: a slow answer must not let the next tick ask for (and show) the same events.
  if (state.readingEvents) return;
  state.readingEvents = true;
  try {
    const path = state.lastEvent === null ? "/api/events?limit=50" : `/api/events?after=${state.lastEvent}&limit=200`;
    const events = await api("GET", path);
    const list = $("#events");
    for (const e of events) {
      if (state.lastEvent !== null && e.id <= state.lastEvent) continue;
      state.lastEvent = Math.max(state.lastEvent || 0, e.id);
      const what = [e.vm && `VM ${e.vm}`, e.host && `host ${e.host}`].filter(Boolean).join(", ");
      list.prepend(el("li", { class: `sev-${e.severity}`, "data-code": e.code, "data-migration": e.migration_id || "" },
        el("span", { class: "time", text: clock(e.time) }),
        el("span", { class: "code", text: `#${e.code}` }),
        el("span", { class: "msg", text: e.message, title: what })));
    }
    while (list.children.length > 300) list.lastChild.remove();
  } catch (err) {
    if (err.status !== 401) notice(`cannot read events: ${err.message}`, true);
  } finally {
    state.readingEvents = false;
  }
}

function start() {
  state.migrations.clear();
  state.lastEvent = null;
  $("#events").replaceChildren();
  $("#migrations tbody").replaceChildren();
  $("#vms tbody").replaceChildren();
  $("#hosts tbody").replaceChildren();
  for (const th of document.querySelectorAll(".actions-col")) th.hidden = !canChange();
  refresh();
  followEvents();
  state.timers.push(setInterval(refresh, 2000), setInterval(followEvents, 1000));
}

// ---------------------------------------------------------------- actions
async function act(label, fn) {
  try {
    notice(`${label}…`);
    const out = await fn();
    refresh();
    return out;
  } catch (err) {
    notice(`${label}: ${err.field ? err.field + ": " : ""}${err.message}`, true);
    return null;
  }
}

async function migrateVm(vm, to) {
  const body = to ? { to } : {};
  const m = await act(`migrating ${vm}`, () => api("POST", `/api/vms/${encodeURIComponent(vm)}/migrate`, body));
  if (m) {
    notice(`migration of ${vm} started: ${m.source} → ${m.destination} (${m.id})`);
    state.migrations.set(m.id, m);
    renderMigrations();
    watch(m.id);
  }
}

async function cancelMigration(m) {
  const out = await act(`cancelling ${m.vm}`, () => api("POST", `/api/migrations/${encodeURIComponent(m.id)}/cancel`, {}));
  if (out) notice(`cancel of ${m.vm}'s migration requested`);
}

async function setSpeed(m, input) {
  const mibs = Number(input.value);
  const out = await act(`speed of ${m.vm}`, () => api("POST", `/api/migrations/${encodeURIComponent(m.id)}/speed`,
    { mibs: Number.isInteger(mibs) ? mibs : input.value }));
  if (out) notice(`${m.vm}: ${out.message}`);
}

async function hostMaintenance(h) {
  if (!window.confirm(`Put host ${h.name} into maintenance? Every VM on it is migrated away first.`)) return;
  const view = await act(`maintenance of ${h.name}`, () => api("POST", `/api/hosts/${encodeURIComponent(h.name)}/maintenance`, { reason: "from the dashboard" }));
  if (view) notice(`host ${h.name}: draining ${view.vms_total} VM(s) for maintenance`);
}

async function cancelMaintenance(h) {
  if (!window.confirm(`Stop the maintenance of ${h.name}? Queued migrations are dropped, running ones finish.`)) return;
  const view = await act(`cancelling maintenance of ${h.name}`, () => api("POST", `/api/hosts/${encodeURIComponent(h.name)}/maintenance/cancel`, {}));
  if (view) notice(`host ${h.name}: maintenance cancelled`);
}

async function activateHost(h) {
  if (!window.confirm(`Activate host ${h.name}? It takes VMs and migrations again.`)) return;
  const host = await act(`activating ${h.name}`, () => api("POST", `/api/hosts/${encodeURIComponent(h.name)}/activate`, {}));
  if (host) notice(`host ${h.name} is ${host.status}`);
}

async function showPlan(vm, to) {
  const body = to ? { to } : {};
  try {
    const plan = await api("POST", `/api/vms/${encodeURIComponent(vm)}/plan?forecast=true`, body);
    renderPlan(vm, plan);
  } catch (err) {
    $("#plan-vm").textContent = vm;
    $("#plan").replaceChildren(el("p", { class: "error", text: `${err.field ? err.field + ": " : ""}${err.message}` }));
  }
}

// ---------------------------------------------------------------- rendering
function render() {
  renderHosts();
  renderVms();
  renderMigrations();
}

function flows() {
  const into = {}, out = {};
  for (const m of state.migrations.values()) {
    if (!ACTIVE.includes(m.state)) continue;
    out[m.source] = (out[m.source] || 0) + 1;
    into[m.destination] = (into[m.destination] || 0) + 1;
  }
  return { into, out };
}

function maintenanceText(h) {
  const v = state.maintenance.get(h.name);
  if (h.status === DRAINING) {
    if (!v) return "draining";
    const parts = [`draining: ${v.vms_done}/${v.vms_total} VMs moved`];
    if (v.vms_running) parts.push(`${v.vms_running} migrating`);
    if (v.vms_queued) parts.push(`${v.vms_queued} queued`);
    if ((v.stuck || []).length) parts.push(`${v.stuck.length} stuck`);
    if (v.state === "PAUSED") parts.push("paused");
    if (typeof v.eta_seconds === "number") parts.push(`ETA ~${Math.round(v.eta_seconds)} s`);
    return parts.join(", ");
  }
  if (h.status === "MAINTENANCE") return v && v.vms_total ? `in maintenance (${v.vms_done}/${v.vms_total} VMs moved)` : "in maintenance";
  return "—";
}

function hostActions(h) {
  const button = (cls, text, onclick) => el("button", { type: "button", class: cls, text, onclick: () => onclick(h) });
  if (h.status === "UP") return el("div", { class: "actions" }, button("maintenance", "Maintenance", hostMaintenance));
  if (h.status === DRAINING) return el("div", { class: "actions" }, button("danger cancel-maintenance", "Stop maintenance", cancelMaintenance));
  if (h.status === "MAINTENANCE") return el("div", { class: "actions" }, button("primary activate", "Activate", activateHost));
  return el("span");
}

function renderHosts() {
  const { into, out } = flows();
  const body = $("#hosts tbody");
  const rows = state.hosts.map((h) => {
    let tr = body.querySelector(`tr[data-host="${CSS.escape(h.name)}"]`);
    if (!tr) {
      tr = el("tr", { "data-host": h.name }, el("td"), el("td"), el("td", { class: "status" }), el("td"),
        el("td", { class: "num flow-in" }), el("td", { class: "num flow-out" }), el("td", { class: "num vms" }),
        el("td", { class: "maintenance-state" }), el("td", { class: "host-actions" }));
    }
    const c = tr.children;
    c[0].textContent = h.name;
    c[1].textContent = h.cluster;
    c[3].replaceChildren(badge(h.zerocopy, "z"));
    c[4].textContent = into[h.name] || 0;
    c[5].textContent = out[h.name] || 0;
    c[6].textContent = state.vms.filter((v) => v.host === h.name).length;
    c[7].textContent = maintenanceText(h);
    c[8].hidden = !canChange();
    if (tr.dataset.status !== h.status) {
      c[2].replaceChildren(badge(h.status));
      if (canChange()) c[8].replaceChildren(hostActions(h));
      tr.dataset.status = h.status;
    }
    return tr;
  });
  body.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { class: "empty", colSpan: 9, text: "no hosts" }))]));
}

function vmActions(v) {
  const plan = (to) => el("button", { type: "button", class: "plan", text: "Plan", onclick: () => showPlan(v.name, to()) });
  if (!canChange()) return el("div", { class: "actions" }, plan(() => ""));   // a read: the engine picks the destination
  const busy = [...state.migrations.values()].some((m) => m.vm === v.name && ACTIVE.includes(m.state));
  const select = el("select", { class: "to", title: "destination" }, el("option", { value: "", text: "engine picks" }),
    ...state.hosts.filter((h) => h.name !== v.host).map((h) => el("option", { value: h.name, text: h.name })));
  const running = v.host && (v.status === "UP" || v.status === "PAUSED");
  return el("div", { class: "actions" }, select,
    el("button", { type: "button", class: "primary migrate", disabled: !running || busy, text: "Migrate",
                   onclick: () => migrateVm(v.name, select.value) }),
    plan(() => select.value));
}

function renderVms() {
  const body = $("#vms tbody");
  const seen = new Set();
  for (const v of state.vms) {
    seen.add(v.name);
    let tr = body.querySelector(`tr[data-vm="${CSS.escape(v.name)}"]`);
    if (!tr) {
      tr = el("tr", { "data-vm": v.name }, el("td"), el("td"), el("td"), el("td", { class: "num" }), el("td"), el("td"));
      body.append(tr);
    }
    const c = tr.children;
    c[0].textContent = v.name;
    c[1].textContent = v.host || "—";
    c[2].replaceChildren(badge(v.status));
    c[3].textContent = `${v.memory_mib} MiB`;
    c[4].textContent = v.overrides && v.overrides.policy ? v.overrides.policy.name || v.overrides.policy : "cluster's";
    const key = `${v.host}|${v.status}|${state.hosts.map((h) => h.name).join(",")}|${[...state.migrations.values()].filter((m) => m.vm === v.name && ACTIVE.includes(m.state)).length}`;
    if (tr.dataset.key !== key) { c[5].replaceChildren(vmActions(v)); tr.dataset.key = key; }
  }
  for (const tr of [...body.children]) if (!seen.has(tr.dataset.vm)) tr.remove();
}

function migrationActions(m) {
  if (m.state === "RUNNING") {
    const input = el("input", { class: "speed", type: "number", min: 1, step: 1, placeholder: "MiB/s", title: "new bandwidth cap, MiB/s" });
    return el("div", { class: "actions" },
      el("button", { type: "button", class: "danger cancel", text: "Cancel", onclick: () => cancelMigration(m) }),
      input, el("button", { type: "button", class: "set-speed", text: "Set speed", onclick: () => setSpeed(m, input) }));
  }
  if (m.state === "PENDING") {
    return el("div", { class: "actions" }, el("button", { type: "button", class: "danger cancel", text: "Cancel", onclick: () => cancelMigration(m) }));
  }
  return el("span");
}

function renderMigrations() {
  const body = $("#migrations tbody");
  const list = [...state.migrations.values()].sort((a, b) => (b.created_at || "").localeCompare(a.created_at || "")).slice(0, 20);
  const order = [];
  for (const m of list) {
    let tr = body.querySelector(`tr[data-migration-id="${CSS.escape(m.id)}"]`);
    if (!tr) {
      const bar = el("div", { class: "bar", "data-progress": 0 }, el("div", { class: "fill" }), el("span", { class: "pct" }));
      tr = el("tr", { "data-migration-id": m.id }, el("td"), el("td"), el("td", { class: "state" }), el("td", {}, bar),
        el("td", { class: "num data" }), el("td", { class: "num rate" }), el("td", { class: "num eta" }), el("td", { class: "num" }), el("td"));
    }
    order.push(tr);
    const c = tr.children;
    const f = m.figures || {};
    c[0].textContent = m.vm;
    c[0].title = m.id;
    c[1].textContent = `${m.source || "?"} → ${m.destination || "?"}`;
    if (tr.dataset.state !== m.state) c[2].replaceChildren(badge(m.state));
    const bar = c[3].firstChild;
    const pct = Math.max(0, Math.min(100, m.progress || 0));
    bar.dataset.progress = pct;
    bar.classList.toggle("done", m.state === "SUCCEEDED");
    bar.classList.toggle("bad", ["FAILED", "ABORTED", "CANCELLED"].includes(m.state));
    bar.querySelector(".fill").style.width = `${pct}%`;
    bar.querySelector(".pct").textContent = `${pct}%`;
    bar.title = m.error || f.message || "";
    const sent = m.result && m.result.bytes ? `${bytes(m.result.bytes)} sent` : null;
    const live = f.data_total ? `${bytes(f.data_processed)} / ${bytes(f.data_total)}` : "—";
    c[4].textContent = ACTIVE.includes(m.state) ? live : (sent || live);
    c[5].textContent = ACTIVE.includes(m.state) ? rate(f.bandwidth_bps) : (m.result && m.result.throughput_mibps ? `${m.result.throughput_mibps} MiB/s` : "—");
    c[6].textContent = ACTIVE.includes(m.state) ? eta(m) : "—";
    c[7].textContent = clock(m.started_at || m.created_at);
    c[8].hidden = !canChange();
    if (canChange() && tr.dataset.state !== m.state) c[8].replaceChildren(migrationActions(m));
    tr.dataset.state = m.state;
  }
  if (!order.length) order.push(el("tr", {}, el("td", { class: "empty", colSpan: 9, text: "no migrations yet" })));
  body.replaceChildren(...order);
}

function renderPlan(vm, plan) {
  $("#plan-vm").textContent = vm;
  const p = plan.policy || {};
  const parts = [el("dl", {},
    el("dt", { text: "route" }), el("dd", { text: `${plan.source} → ${plan.destination}` }),
    el("dt", { text: "policy" }), el("dd", { text: `${p.name || "?"} (${p.origin || "?"})` }),
    el("dt", { text: "libvirt flags" }), el("dd", {}, ...(plan.libvirt_flags || []).map((x) => el("code", { text: x })).flatMap((c) => [c, " "])),
    el("dt", { text: "parameters" }), el("dd", {}, ...Object.entries(plan.params || {}).filter(([k]) => k !== "convergenceSchedule")
      .map(([k, v]) => el("code", { text: `${k}=${typeof v === "object" ? JSON.stringify(v) : v}` })).flatMap((c) => [c, " "])))];
  const why = plan.explanation || [];
  parts.push(el("h3", { text: "Why it differs from what was set" }));
  parts.push(why.length ? el("ul", { class: "explanation" }, ...why.map((x) => el("li", {}, el("strong", { text: x.field }),
    ` ${x.from} → ${x.to}: ${x.reason}`))) : el("p", { class: "muted", text: "nothing: the plan sends what the admin set" }));
  if ((plan.notes || []).length) parts.push(el("ul", { class: "notes" }, ...plan.notes.map((n) => el("li", { class: "muted", text: n }))));
  const fc = plan.forecast;
  parts.push(el("h3", { text: "Forecast" }));
  if (fc) {
    const range = fc.range ? ` (${Math.round(fc.range.low)}–${Math.round(fc.range.high)} s)` : "";
    parts.push(el("p", { class: "forecast", text: `${fc.outcome}: ~${Math.round(fc.totalSeconds)} s${range}, downtime ~${fc.downtimeMs} ms, ${fc.iterations} iterations` }));
  } else {
    parts.push(el("p", { class: "muted", text: "this engine makes no forecast yet" }));
  }
  $("#plan").replaceChildren(...parts);
}

// ---------------------------------------------------------------- start
$("#login-form").addEventListener("submit", (ev) => { ev.preventDefault(); login($("#token").value.trim()); });
$("#logout").addEventListener("click", () => logout(""));
if (sessionStorage.getItem(TOKEN_KEY)) login(sessionStorage.getItem(TOKEN_KEY)); else showLogin();

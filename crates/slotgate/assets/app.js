// slotgate dashboard: the Concurrency page of an org, live, over the public API.
// Plain JavaScript, no build step; served from inside the binary.
"use strict";

const TYPES = ["webcall", "chat", "outbound", "inbound"];
const COLORS = ["#0b5cad", "#8250df", "#1a7f37", "#bf3989", "#9a6700", "#0a7f8f", "#cf222e", "#6639ba", "#116329", "#953800"];
const POLL_MS = 1500;
// The chart shows the smallest of these windows that holds all its samples:
// the server keeps 15 minutes.
const WINDOWS_MS = [1, 2, 5, 10, 15].map((m) => m * 60 * 1000);
const WINDOW_MS = WINDOWS_MS[WINDOWS_MS.length - 1];
const PAGE = 20; // calls per page of the queue and of an agent's active calls

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "style") e.style.cssText = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
};

// The server's clock, estimated from the Date headers of its answers (whole
// seconds, written between request and answer), so that "waiting 12 s" and
// the chart agree with the server's timestamps even if this machine's clock
// is off.
const clock = {
  lo: -Infinity,
  hi: Infinity,
  observe(sent, received, date) {
    const d = Date.parse(date);
    if (Number.isNaN(d)) return;
    const lo = d - received, hi = d + 1000 - sent;
    if (lo > this.hi || hi < this.lo) { this.lo = lo; this.hi = hi; return; } // a clock jumped: start over
    this.lo = Math.max(this.lo, lo);
    this.hi = Math.min(this.hi, hi);
  },
  now() { return Date.now() + (Number.isFinite(this.lo) ? (this.lo + this.hi) / 2 : 0); },
};

// "45 s", "3 min 05 s", "2 h 10 min".
function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return s % 60 ? `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s` : `${s / 60} min`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor(s / 60) % 60).padStart(2, "0")} min`;
}

// A queued call's expected wait (`estimated_wait_s`), as the CLI writes it:
// "~40 s", "~12 min", "~2.5 h"; null (too little history) is "not known yet".
function expectedWait(s) {
  if (s == null) return "not known yet";
  if (s < 1) return "<1 s";
  if (s < 90) return `~${Math.round(s)} s`;
  if (s < 5400) return `~${Math.round(s / 60)} min`;
  return `~${(s / 3600).toFixed(1)} h`;
}

const since = (time) => duration(clock.now() - Date.parse(time));
const until = (time) => duration(Date.parse(time) - clock.now());
const capital = (t) => t[0].toUpperCase() + t.slice(1);

const session = {
  get key() { return sessionStorage.getItem("slotgate.key"); },
  get org() { return sessionStorage.getItem("slotgate.org"); },
  set(key, org) {
    sessionStorage.setItem("slotgate.key", key);
    if (org) sessionStorage.setItem("slotgate.org", org); else sessionStorage.removeItem("slotgate.org");
  },
  clear() { sessionStorage.removeItem("slotgate.key"); sessionStorage.removeItem("slotgate.org"); sessionStorage.removeItem("slotgate.operator"); },
  get operator() { return sessionStorage.getItem("slotgate.operator") === "1"; },
  set operator(v) { sessionStorage.setItem("slotgate.operator", v ? "1" : "0"); },
};

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error && body.error.code;
    this.body = body;
  }
}

async function api(method, path, body) {
  const sent = Date.now();
  const res = await fetch("/v1" + path, {
    method,
    headers: { "Authorization": "Bearer " + session.key, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  clock.observe(sent, Date.now(), res.headers.get("Date"));
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// ---- routing -------------------------------------------------------------

let timer = null;
let current = null; // the org on screen

function show(section) {
  for (const id of ["signin", "switch", "orgs", "missing", "org", "plan", "usage"]) $(id).hidden = id !== section;
  $("signout").hidden = section === "signin";
  $("live").hidden = section !== "org";
}

function hashParams() {
  return new URLSearchParams(location.hash.replace(/^#/, ""));
}

async function route() {
  clearInterval(timer);
  timer = null;
  $("global-error").textContent = "";
  const params = hashParams();
  const linked = params.get("key");
  if (linked) {
    // A direct link: the key leaves the address bar at once; the rest of the
    // link (the org, the view) stays.
    params.delete("key");
    history.replaceState(null, "", "#" + params.toString());
    if (session.key && session.key !== linked) return askSwitch(linked, params.get("org"));
    if (session.key !== linked) return signInWith(linked, params.get("org"));
  }
  if (!session.key) return showSignin();
  const org = params.get("org") || (!session.operator && session.org);
  if (org) return (VIEWS[params.get("view")] || openOrg)(org);
  if (session.operator) return openOrgs();
  return showSignin();
}

// Keeps `key` in this tab only, then works out what it is.
function signInWith(key, org) {
  session.set(key, org);
  session.operator = false;
  return signedIn();
}

// A link with another key never replaces the session silently: it asks,
// naming the org the link would open and the session it would end.
let pendingLink = null;
function askSwitch(key, org) {
  pendingLink = { key, org };
  show("switch");
  $("crumbs").textContent = "";
  $("switch-text").textContent = (org
    ? `This link signs in with another key and opens org “${org}”. `
    : "This link signs in with another key. ")
    + (session.operator
      ? "You are signed in with the operator key."
      : `You are signed in to org “${session.org}”.`);
  $("switch-ok").textContent = org ? `Open “${org}” with the link's key` : "Sign in with the link's key";
  $("switch-stay").focus();
}

$("switch-ok").addEventListener("click", () => {
  const link = pendingLink;
  pendingLink = null;
  if (link) signInWith(link.key, link.org);
});

$("switch-stay").addEventListener("click", () => {
  pendingLink = null;
  history.replaceState(null, "", "#");
  route();
});

function showSignin(message) {
  show("signin");
  $("crumbs").textContent = "";
  $("signin-error").textContent = message || "";
  $("signin-key").focus();
}

// Works out what the key is: the operator's sees the org list, an org key its org.
async function signedIn() {
  try {
    await api("GET", "/orgs?limit=1");
    session.operator = true;
  } catch (e) {
    if (e.status === 401) { session.clear(); return showSignin("That key was not accepted."); }
    session.operator = false;
    if (!session.org) { session.clear(); return showSignin("This is an org key: enter its org too."); }
  }
  return route();
}

$("signin-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  session.set($("signin-key").value.trim(), $("signin-org").value.trim() || null);
  $("signin-key").value = "";
  signedIn();
});

$("signout").addEventListener("click", () => {
  session.clear();
  history.replaceState(null, "", "#");
  route();
});

window.addEventListener("hashchange", route);

// ---- plan (operator) -----------------------------------------------------------

// The org's plan beside its limit: "plan standard", "plan standard · own limit".
function planText(v) {
  if (!v.plan) return "";
  const own = [v.limit_source === "org" && "limit", v.burst_source === "org" && v.burst > 0 && "burst"].filter(Boolean);
  return `plan ${v.plan}` + (own.length ? ` · own ${own.join(" and ")}` : "");
}

$("mover-open").addEventListener("click", async () => {
  $("mover-error").textContent = "";
  const select = $("mover-plan");
  try {
    const { plans } = await api("GET", "/plans");
    select.replaceChildren(
      el("option", { value: "" }, "No plan (keep the limit and burst as the org's own)"),
      ...plans.map((p) => el("option", { value: p.id }, `${p.id}: limit ${p.limit}, burst ${p.burst}`)));
    select.value = (current.view && current.view.plan) || "";
  } catch (e) {
    $("mover-error").textContent = refusal(e);
  }
  $("mover").showModal();
  select.focus();
});

$("mover-cancel").addEventListener("click", () => $("mover").close());
$("mover-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await api("PUT", `/orgs/${encodeURIComponent(current.id)}/plan`, { plan: $("mover-plan").value || null });
    $("mover").close();
    await refresh();
  } catch (e) {
    $("mover-error").textContent = refusal(e);
  }
});

// ---- org list (operator) ---------------------------------------------------

async function openOrgs() {
  show("orgs");
  $("crumbs").textContent = "Orgs";
  try {
    const data = await api("GET", "/orgs");
    const body = $("orgs-body");
    body.replaceChildren(...data.orgs.map((o) => el("tr", {},
      cell("th", "Org", el("a", { href: "#org=" + encodeURIComponent(o.id) }, o.id)),
      cell("td", "Limit", String(o.limit)), cell("td", "Plan", o.plan || "—"), cell("td", "Reserved", String(o.reserved)),
      cell("td", "Active", String(o.active)), cell("td", "Queued", String(o.queued)))));
    $("orgs-empty").hidden = data.orgs.length > 0;
  } catch (e) {
    fail(e);
  }
}

// ---- the Concurrency view of an org ----------------------------------------

const series = []; // {t, active, queued}

async function openOrg(org) {
  current = { id: org, view: null };
  show("org");
  $("crumbs").replaceChildren(
    ...(session.operator ? [el("a", { href: "#" }, "Orgs"), " / "] : []),
    document.createTextNode(org));
  $("org-title").textContent = "Concurrency · " + org;
  $("plan-link").href = `#org=${encodeURIComponent(org)}&view=plan`;
  $("usage-link").href = `#org=${encodeURIComponent(org)}&view=usage`;
  $("limit-form").hidden = !session.operator;
  series.length = 0;
  shownAgents = "";
  expanded.clear();
  queue.reset();
  try {
    const h = await api("GET", `/orgs/${encodeURIComponent(org)}/history`);
    for (const s of h.samples) series.push({ t: s.at_ms, active: s.active, queued: s.queued });
  } catch (e) {
    if (e.status === 404 || e.status === 401) return fail(e, org);
  }
  await refresh();
  if (current && current.id === org) timer = setInterval(refresh, POLL_MS);
}

async function refresh() {
  if (!current) return;
  const shown = current;
  try {
    const view = await api("GET", `/orgs/${encodeURIComponent(shown.id)}`);
    if (current !== shown) return; // another org was opened meanwhile
    current.view = view;
    series.push({ t: clock.now(), active: view.active, queued: view.queued });
    while (series.length && series[0].t < clock.now() - WINDOW_MS) series.shift();
    render(view);
    await Promise.all([
      blockedWarning(view),
      queue.refresh(view.queued),
      ...[...expanded.values()].map((list) => list.refresh(list.total(view))),
    ]);
    $("live").textContent = "Live · updated " + new Date().toLocaleTimeString();
    $("global-error").textContent = "";
  } catch (e) {
    if (current === shown) fail(e, shown.id); // else another org was opened meanwhile
  }
}

function fail(e, org = current && current.id) {
  if (e.status === 401) { session.clear(); return showSignin("Your key is no longer accepted."); }
  if (e.status === 404 && org) return showMissing(org);
  $("global-error").textContent = "Could not reach slotgate: " + e.message;
}

// An org that does not exist, or that this key may not see (the API answers
// both alike): said in place of the org's view, never as an empty org.
function showMissing(org) {
  clearInterval(timer);
  timer = null;
  current = null;
  show("missing");
  $("crumbs").replaceChildren(
    ...(session.operator ? [el("a", { href: "#" }, "Orgs"), " / "] : []),
    document.createTextNode(org));
  $("missing-text").textContent = session.operator
    ? `There is no org “${org}”.`
    : `There is no org “${org}” that this key can see: the org does not exist, or the key belongs to another org.`;
  $("missing-orgs").hidden = !session.operator;
}

$("missing-signout").addEventListener("click", () => $("signout").click());

const colorOf = (() => {
  const assigned = new Map();
  return (agent) => {
    if (!assigned.has(agent)) assigned.set(agent, COLORS[assigned.size % COLORS.length]);
    return assigned.get(agent);
  };
})();

function render(v) {
  $("stat-limit").textContent = v.limit;
  $("stat-burst").hidden = !(v.burst > 0);
  $("stat-burst").textContent = v.burst > 0 ? `burst ${v.burst} (${v.burst_in_use} in use)` : "";
  $("stat-plan").hidden = !v.plan;
  $("stat-plan").textContent = planText(v);
  $("stat-reserved").textContent = v.reserved;
  $("stat-shared").textContent = v.shared;
  $("stat-active").textContent = v.active;
  $("stat-queued").textContent = v.queued;
  if (document.activeElement !== $("limit-input")) $("limit-input").value = v.limit;
  $("queue-count").textContent = v.queued ? `${v.queued} waiting, first come first served` : "";
  renderBar(v);
  renderAgents(v);
  renderChart();
}

function pct(part, whole) {
  return whole > 0 ? (100 * part / whole).toFixed(3) + "%" : "0%";
}

// The bar spans the limit and, when the org has burst, the burst past it:
// the burst segment starts at the limit line and is drawn lightly, its
// calls in use darker.
function renderBar(v) {
  const burst = v.burst || 0;
  const span = v.limit + burst;
  const reservedAgents = v.agents.filter((a) => a.reserved_total > 0);
  const segs = reservedAgents.map((a) => {
    const inUse = Math.min(a.reserved_in_use, a.reserved_total);
    const full = atCap(a);
    return el("div", {
      class: full.length ? "seg at-cap" : "seg", "data-agent": a.id, "data-slots": String(a.reserved_total),
      ...(full.length ? { "data-at-cap": full.join(" ") } : {}),
      style: `flex: 0 0 ${pct(a.reserved_total, span)}; background: ${colorOf(a.id)}`,
      title: `${a.id}: ${a.reserved_total} reserved, ${inUse} in use` + (full.length ? `, at its cap (${full.join(", ")})` : ""),
    },
    el("span", { class: "use", style: `width: ${pct(inUse, a.reserved_total)}` }),
    el("span", { class: "txt" }, `${a.id} ${inUse}/${a.reserved_total}` + (full.length ? " · at cap" : "")));
  });
  // Calls without reserved room past the limit count in shared_in_use: they
  // are drawn in the burst, not as an over-committed shared pool.
  const sharedCalls = v.shared_in_use - Math.min(Math.max(0, v.shared_in_use - v.shared), v.burst_in_use || 0);
  const sharedUse = Math.min(sharedCalls, v.shared);
  segs.push(el("div", {
    class: "seg shared", "data-segment": "shared", "data-slots": String(v.shared),
    style: `flex: 0 0 ${pct(v.shared, span)}`,
    title: `shared: ${v.shared} slots, ${sharedCalls} in use`,
  },
  el("span", { class: "use", style: `width: ${pct(sharedUse, v.shared)}` }),
  el("span", { class: "txt" }, `shared ${sharedCalls}/${v.shared}`)));
  if (burst > 0) {
    segs.push(el("div", {
      class: "seg burst", "data-segment": "burst", "data-slots": String(burst), "data-in-use": String(v.burst_in_use),
      style: `flex: 0 0 ${pct(burst, span)}`,
      title: `burst past the limit: ${burst} slots, ${v.burst_in_use} in use`,
    },
    el("span", { class: "use", style: `width: ${pct(Math.min(v.burst_in_use, burst), burst)}` }),
    el("span", { class: "txt" }, `burst ${v.burst_in_use}/${burst}`)));
  }
  $("bar").replaceChildren(...segs);
  $("bar").setAttribute("aria-label",
    `${v.limit} slots: ${reservedAgents.map((a) => `${a.id} ${a.reserved_total} reserved`).join(", ") || "no reservations"}, ` +
    `${v.shared} shared` + (burst > 0 ? `; burst ${burst} past the limit, ${v.burst_in_use} in use` : "") +
    `. ${v.active} active, ${v.queued} queued.`);
  const over = sharedCalls > v.shared ? ` The shared pool is over-committed by ${sharedCalls - v.shared}: freed slots go to calls with reserved room first.` : "";
  const inUse = burst > 0
    ? `${v.active} in use: ${Math.min(v.active, v.limit)} of ${v.limit} slots and ${v.burst_in_use} of ${burst} burst past the limit`
    : `${v.active} of ${v.limit} slots in use`;
  $("bar-caption").textContent =
    `${inUse} (${v.active - v.shared_in_use} reserved, ${v.shared_in_use} shared) · ${v.queued} queued.${over}`;
  $("legend").replaceChildren(
    ...reservedAgents.map((a) => el("li", { style: `--c: ${colorOf(a.id)}` }, `${a.id}: ${a.reserved_total} reserved`)),
    el("li", { style: "--c: var(--shared)" }, `shared: ${v.shared}`),
    ...(burst > 0 ? [el("li", { style: "--c: var(--burst)" }, `burst past the limit: ${burst}`)] : []));
}

// The caps of an agent in words: "chat 2, total 5", or "—" for none.
function capsText(a) {
  const caps = a.caps || {};
  const parts = [...TYPES, "total"].filter((t) => caps[t] != null).map((t) => `${t} ${caps[t]}`);
  return parts.length ? parts.join(", ") : "—";
}

// The caps an agent has reached: its types at their cap, and "total".
function atCap(a) {
  const caps = a.caps || {};
  const full = TYPES.filter((t) => caps[t] != null && a.active[t] >= caps[t]);
  if (caps.total != null && sum(a.active) >= caps.total) full.push("total");
  return full;
}

// ---- blocked calls -------------------------------------------------------------

// What would let a blocked call in, by its reason (SEMANTICS.md, "Blocked calls").
const UNBLOCK = {
  limit_zero: () => "raise the org's limit (or its burst) above 0",
  cap_zero: (calls) => `lift the cap of ${[...new Set(calls.map((c) => c.agent))].join(", ")} (a cap of 0 admits nothing)`,
  no_shared_capacity: (calls) => `lower a reservation so that some slots are shared, raise the limit, or reserve ${[...new Set(calls.map((c) => `${c.type} for ${c.agent}`))].join(", ")}`,
};
const BLOCKED_WORDS = {
  limit_zero: "the org's limit and burst are 0",
  cap_zero: "their agent's cap is 0",
  no_shared_capacity: "every slot is reserved for other agents or types, none shared",
};
const BLOCKED_SCAN = 1000; // queued calls read for the reasons of the blocked ones

// A warning over the org's view while some queued calls can never be
// admitted: how many, why (the reasons of the calls), and what would let them in.
async function blockedWarning(v) {
  const box = $("blocked-warning");
  if (!v.blocked) { box.hidden = true; box.replaceChildren(); return; }
  const org = current;
  const page = await api("GET", `/orgs/${encodeURIComponent(org.id)}/calls?state=queued&limit=${BLOCKED_SCAN}`);
  if (current !== org) return;
  const byReason = new Map();
  for (const c of page.calls.filter((c) => c.blocked)) {
    if (!byReason.has(c.blocked)) byReason.set(c.blocked, []);
    byReason.get(c.blocked).push(c);
  }
  const n = v.blocked;
  box.replaceChildren(
    el("strong", {}, `${n} queued ${n === 1 ? "call" : "calls"} can never be admitted as the org is set now.`),
    el("ul", {}, ...[...byReason].map(([reason, calls]) => el("li", { "data-reason": reason },
      `${calls.length} blocked (${reason}): ${BLOCKED_WORDS[reason] || reason}. To let them in: ${(UNBLOCK[reason] || (() => "change the org's settings"))(calls)}.`))));
  box.hidden = false;
}

let shownAgents = "";

const sum = (perType) => TYPES.reduce((n, t) => n + perType[t], 0);

// An agent's colour: its own if it reserves slots, the shared pool's if not.
function dot(agent) {
  const a = current && current.view && current.view.agents.find((x) => x.id === agent);
  return el("span", { class: "dot", style: `background: ${a && a.reserved_total ? colorOf(agent) : "var(--shared)"}` });
}

// A table cell: its value in one element, and its column's head in
// `data-label`, which a narrow screen shows beside the value (app.css).
function cell(tag, label, ...value) {
  return el(tag, { "data-label": label, ...(tag === "th" ? { scope: "row" } : {}) }, el("span", { class: "val" }, ...value));
}

function renderAgents(v) {
  // Re-render only on change, and not under an open menu (it would take the focus away).
  const key = JSON.stringify(v.agents);
  if (key === shownAgents || openMenu !== null) return;
  shownAgents = key;
  for (const id of expanded.keys()) if (!v.agents.some((a) => a.id === id)) expanded.delete(id);
  const rows = v.agents.flatMap((a) => {
    const cells = TYPES.map((t) => cell("td", capital(t),
      String(a.reserved[t]), " ", el("span", { class: "sub" }, `${a.active[t]}/${a.queued[t]}`)));
    const row = el("tr", { "data-agent-row": a.id },
      cell("th", "Agent", dot(a.id), a.id),
      ...cells,
      cell("td", "Reserved", String(a.reserved_total)),
      cell("td", "Caps", ...capsCell(a)),
      cell("td", "Active", callsToggle(a)),
      cell("td", "Queued", String(sum(a.queued))),
      cell("td", "Actions", agentMenu(a)));
    return expanded.has(a.id) ? [row, expanded.get(a.id).row] : [row];
  });
  keepFocus($("agents-body"), () => $("agents-body").replaceChildren(...rows));
  $("agents-empty").hidden = v.agents.length > 0;
  $("known-agents").replaceChildren(...v.agents.map((a) => el("option", { value: a.id })));
}

function capsCell(a) {
  const full = atCap(a);
  return [capsText(a), ...(full.length ? [" ", el("span", { class: "badge", "data-at-cap": full.join(" ") }, "at cap")] : [])];
}

// Rebuilds the children of `container`, keeping the focus on the control
// with the same `data-focus` key, so a live update never steals it.
function keepFocus(container, rebuild) {
  const focused = container.contains(document.activeElement) ? document.activeElement.dataset.focus : undefined;
  rebuild();
  if (focused) container.querySelector(`[data-focus="${CSS.escape(focused)}"]`)?.focus();
}

// ---- lists of calls, a page at a time ----------------------------------------

// A table of calls from `GET /calls?...` (queued ones in queue order), PAGE at a
// time with Previous / Next, refreshed with the rest of the view. `columns`
// are [heading, cell(call)]; on a narrow screen each row is a card and each
// cell carries its heading.
function callList({ name, query, columns, empty }) {
  const body = el("tbody");
  const table = el("table", { class: "grid cards calls", "aria-label": name },
    el("thead", {}, el("tr", {}, ...columns.map(([h]) => el("th", { scope: "col" }, h)))), body);
  const none = el("p", { class: "hint" }, empty);
  const range = el("span", { class: "range" });
  const prev = el("button", { type: "button", class: "quiet", "data-focus": `${name}:prev`, onclick: () => move(-PAGE) }, "Previous");
  const next = el("button", { type: "button", class: "quiet", "data-focus": `${name}:next`, onclick: () => move(PAGE) }, "Next");
  const pager = el("nav", { class: "pager", "aria-label": `${name}, pages` }, prev, range, next);
  const root = el("div", { class: "calls-list" }, el("div", { class: "table-scroll" }, table), none, pager);
  let offset = 0;
  let total = 0;

  function show(calls, more) {
    body.replaceChildren(...calls.map((c) => el("tr", { "data-call": c.id },
      ...columns.map(([h, value], i) => cell(i ? "td" : "th", h, ...[value(c)].flat())))));
    table.hidden = calls.length === 0;
    none.hidden = calls.length > 0;
    range.textContent = calls.length ? `${offset + 1}–${offset + calls.length} of ${Math.max(total, offset + calls.length)}` : "";
    const hadFocus = document.activeElement;
    prev.disabled = offset === 0;
    next.disabled = !more;
    pager.hidden = offset === 0 && !more;
    if (hadFocus === next && next.disabled) prev.focus();
    if (hadFocus === prev && prev.disabled && !next.disabled) next.focus();
  }

  // `count`: how many calls the list has, from the org's snapshot.
  async function refresh(count) {
    total = count;
    const org = current;
    const at = offset;
    if (!org) return;
    if (total === 0 && at === 0) return show([], false);
    const page = await api("GET",
      `/orgs/${encodeURIComponent(org.id)}/calls?${query}&limit=${PAGE}&cursor=${at}`);
    if (current !== org || offset !== at) return; // the org or the page changed meanwhile
    if (page.calls.length === 0 && at > 0) { offset = Math.max(0, at - PAGE); return refresh(count); }
    show(page.calls, page.next_cursor != null);
  }

  function move(by) {
    offset = Math.max(0, offset + by);
    refresh(total).catch(fail);
  }

  show([], false);
  return { root, refresh, reset() { offset = 0; total = 0; show([], false); } };
}

const queue = callList({
  name: "Queue",
  query: "state=queued",
  empty: "No call is waiting: every call has a slot.",
  columns: [
    ["Position", (c) => String(c.position)],
    ["Call", (c) => c.id],
    ["Agent", (c) => [dot(c.agent), c.agent]],
    ["Type", (c) => capital(c.type)],
    ["Waiting", (c) => (c.queued_at ? since(c.queued_at) : "–")],
    ["Max wait", (c) => (c.max_wait_expires_at
      ? `${duration(Date.parse(c.max_wait_expires_at) - Date.parse(c.queued_at))}, ${until(c.max_wait_expires_at)} left`
      : "none")],
    ["Expected wait", (c) => (c.blocked ? blockedText(c) : expectedWait(c.estimated_wait_s))],
  ],
});
$("queue-list").append(queue.root);

// A blocked queued call waits forever: said in place of its expected wait.
function blockedText(c) {
  return el("span", { class: "blocked", title: BLOCKED_WORDS[c.blocked] || c.blocked }, `blocked (${c.blocked})`);
}

// The agents whose active calls are open, by id: their lists, in a row under theirs.
const expanded = new Map();
const detailId = (agent) => `active-calls-of-${agent}`;

function agentCalls(agent) {
  const list = callList({
    name: `Active calls of ${agent}`,
    query: `state=active&agent=${encodeURIComponent(agent)}`,
    empty: `${agent} has no active call.`,
    columns: [
      ["Call", (c) => c.id],
      ["Type", (c) => capital(c.type)],
      ["Slot", (c) => (c.slot ? capital(c.slot) : "–")],
      ["Active for", (c) => (c.admitted_at ? since(c.admitted_at) : "–")],
      ["Lease ends in", (c) => (c.lease_expires_at ? until(c.lease_expires_at) : "–")],
    ],
  });
  list.row = el("tr", { class: "detail", id: detailId(agent) }, el("td", { colspan: "10" }, list.root));
  list.total = (v) => sum((v.agents.find((a) => a.id === agent) || { active: { webcall: 0, chat: 0, outbound: 0, inbound: 0 } }).active);
  return list;
}

// The Active number of an agent's row opens (and closes) its active calls.
function callsToggle(a) {
  const open = expanded.has(a.id);
  const n = sum(a.active);
  return el("button", {
    type: "button", class: "count", "aria-expanded": String(open), ...(open ? { "aria-controls": detailId(a.id) } : {}),
    "aria-label": `Active calls of ${a.id}: ${n}`, "data-focus": `calls:${a.id}`,
    onclick: () => toggleCalls(a.id),
  }, String(n), el("span", { class: "chevron", "aria-hidden": "true" }));
}

async function toggleCalls(agent) {
  closeMenu();
  if (expanded.has(agent)) expanded.delete(agent); else expanded.set(agent, agentCalls(agent));
  shownAgents = ""; // draw (or take away) its row now
  renderAgents(current.view);
  const list = expanded.get(agent);
  if (list) await list.refresh(list.total(current.view)).catch(fail);
}

let openMenu = null;

function agentMenu(a) {
  const list = el("ul", { role: "menu", hidden: "" },
    el("li", { role: "none" }, el("button", { type: "button", role: "menuitem", onclick: () => { closeMenu(); openEditor(a); } }, "Edit reservations")),
    el("li", { role: "none" }, el("button", { type: "button", role: "menuitem", onclick: () => { closeMenu(); openCapper(a); } }, "Edit caps")),
    el("li", { role: "none" }, el("button", { type: "button", role: "menuitem", onclick: () => { closeMenu(); openRemover(a); } }, "Remove agent")));
  const toggle = el("button", {
    type: "button", class: "quiet", "aria-haspopup": "menu", "aria-expanded": "false",
    "aria-label": `Actions for ${a.id}`, "data-focus": `menu:${a.id}`,
    onclick: () => {
      const open = list.hidden;
      closeMenu();
      if (open) {
        list.hidden = false;
        place(list, toggle);
        toggle.setAttribute("aria-expanded", "true");
        openMenu = a.id;
        list.querySelector("button").focus({ preventScroll: true });
      }
    },
  }, "…");
  return el("div", { class: "menu" }, toggle, list);
}

function closeMenu() {
  openMenu = null;
  for (const ul of document.querySelectorAll(".menu ul")) ul.hidden = true;
  for (const b of document.querySelectorAll(".menu > button")) b.setAttribute("aria-expanded", "false");
}

document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") closeMenu(); });
document.addEventListener("click", (ev) => { if (!ev.target.closest(".menu")) closeMenu(); });
// An open menu is placed on the page, not in its table (whose scrolling box
// would clip it): it follows its button when the page moves.
let placed = null; // {list, button} of the open menu
const follow = () => { if (placed && !placed.list.hidden) place(placed.list, placed.button); };
window.addEventListener("scroll", follow, { passive: true, capture: true });
window.addEventListener("resize", follow);

// Puts an open menu under its button, right edges aligned; above it if there
// is no room below. CSSOM (not a style attribute), which the page's CSP allows.
function place(list, button) {
  placed = { list, button };
  const r = button.getBoundingClientRect();
  const below = r.bottom + 4 + list.offsetHeight <= window.innerHeight;
  list.style.right = `${document.documentElement.clientWidth - r.right}px`;
  list.style.top = below ? `${r.bottom + 4}px` : `${Math.max(0, r.top - 4 - list.offsetHeight)}px`;
}

// ---- add / edit reservations -------------------------------------------------

let editing = null; // the agent being edited, or null when adding

function openEditor(agent) {
  editing = agent || null;
  const form = $("editor-form");
  $("editor-title").textContent = agent ? `Edit reservations · ${agent.id}` : "Add reservation";
  $("editor-agent").value = agent ? agent.id : "";
  $("editor-agent").readOnly = !!agent;
  for (const t of TYPES) form.elements[t].value = agent ? agent.reserved[t] : 0;
  $("editor-error").textContent = "";
  checkEditor();
  $("editor").showModal();
  (agent ? form.elements.webcall : $("editor-agent")).focus();
}

// Save is possible only while the sum fits in what is free for this agent.
function checkEditor() {
  const v = current && current.view;
  const form = $("editor-form");
  const id = $("editor-agent").value.trim();
  const existing = v ? v.agents.find((a) => a.id === id) : null;
  const own = existing ? existing.reserved_total : 0;
  const available = v ? v.limit - (v.reserved - own) : 0;
  let total = 0;
  let bad = "";
  for (const t of TYPES) {
    const n = Number(form.elements[t].value);
    if (!Number.isInteger(n) || n < 0) bad = `${capital(t)} must be a whole number, 0 or more.`;
    else total += n;
  }
  $("editor-available").textContent = v
    ? `${available} of ${v.limit} slots are free to reserve for this agent (others reserve ${v.reserved - own}).`
    : "";
  let reason = bad;
  if (!reason && !id) reason = "Choose or type an agent.";
  if (!reason && total > available) reason = `These add up to ${total}, more than the ${available} free to reserve.`;
  $("editor-reason").textContent = reason;
  $("editor-save").disabled = !!reason;
  return !reason;
}

$("editor-form").addEventListener("input", checkEditor);
$("editor-cancel").addEventListener("click", () => $("editor").close());

$("editor-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!checkEditor()) return;
  const form = $("editor-form");
  const body = Object.fromEntries(TYPES.map((t) => [t, Number(form.elements[t].value)]));
  const agent = $("editor-agent").value.trim();
  try {
    await api("PUT", `/orgs/${encodeURIComponent(current.id)}/agents/${encodeURIComponent(agent)}/reservations`, body);
    $("editor").close();
    await refresh();
  } catch (e) {
    $("editor-error").textContent = refusal(e);
  }
});

function refusal(e) {
  if (e.code === "reservations_exceed_limit") {
    return `Refused: the org's reservations would exceed its limit. This agent can reserve at most ${e.body.error.available} slots now.`;
  }
  if (e.code === "limit_below_reservations") {
    return `Refused: the limit cannot go below the ${e.body.error.reserved} slots reserved. Remove reservations first.`;
  }
  if (e.code === "forbidden") return "Refused: this key's role may not do this.";
  if (e.code === "cap_below_reservation") return `Refused: ${e.message} The lowest allowed is ${e.body.error.reserved}.`;
  return "Refused: " + e.message;
}

// ---- caps ------------------------------------------------------------------------

let capping = null; // the agent whose caps are being edited

function openCapper(agent) {
  capping = agent;
  const form = $("capper-form");
  $("capper-title").textContent = `Edit caps · ${agent.id}`;
  for (const t of [...TYPES, "total"]) form.elements[t].value = agent.caps && agent.caps[t] != null ? agent.caps[t] : "";
  $("capper-error").textContent = "";
  $("capper").showModal();
  form.elements.webcall.focus();
}

$("capper-cancel").addEventListener("click", () => $("capper").close());
$("capper-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = $("capper-form");
  // The body sets all five: an empty field is no cap.
  const body = Object.fromEntries([...TYPES, "total"].map((t) => [t, form.elements[t].value === "" ? null : Number(form.elements[t].value)]));
  try {
    await api("PUT", `/orgs/${encodeURIComponent(current.id)}/agents/${encodeURIComponent(capping.id)}/caps`, body);
    $("capper").close();
    await refresh();
  } catch (e) {
    $("capper-error").textContent = refusal(e);
  }
});

// ---- remove agent ------------------------------------------------------------

let removing = null;

function openRemover(agent) {
  removing = agent;
  $("remover-text").textContent =
    `Remove ${agent.id}'s reservations? Its ${agent.reserved_total} reserved slots return to the shared pool at once. Active calls keep running.`;
  $("remover-error").textContent = "";
  $("remover").showModal();
  $("remover-cancel").focus();
}

$("remover-cancel").addEventListener("click", () => $("remover").close());
$("remover-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await api("DELETE", `/orgs/${encodeURIComponent(current.id)}/agents/${encodeURIComponent(removing.id)}/reservations`);
    $("remover").close();
    await refresh();
  } catch (e) {
    $("remover-error").textContent = refusal(e);
  }
});

$("add").addEventListener("click", () => openEditor(null));

// ---- limit (operator) ----------------------------------------------------------

$("limit-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("limit-error").textContent = "";
  try {
    await api("PUT", `/orgs/${encodeURIComponent(current.id)}/limit`, { limit: Number($("limit-input").value) });
    $("limit-input").blur();
    await refresh();
  } catch (e) {
    $("limit-error").textContent = refusal(e);
  }
});

// ---- chart -------------------------------------------------------------------

// "60 seconds" / "60 s", "5 minutes" / "5 min": the chart's title and its axis
// say the same window.
function spanWords(ms) {
  const s = Math.round(ms / 1000);
  return s < 120 ? { long: `${s} seconds`, short: `${s} s` } : { long: `${s / 60} minutes`, short: `${s / 60} min` };
}

function renderChart() {
  const svg = $("chart");
  const W = 900, H = 200, pad = 6;
  const now = clock.now();
  // The smallest window that holds every sample: the last minute at first,
  // up to the 15 minutes the server keeps.
  const age = series.length ? now - series[0].t : 0;
  const span = WINDOWS_MS.find((w) => w >= age) || WINDOW_MS;
  const lim = current && current.view ? current.view.limit : 0;
  const max = Math.max(1, lim, ...series.map((s) => Math.max(s.active, s.queued)));
  const x = (t) => Math.max(0, ((t - (now - span)) / span) * W);
  const y = (n) => H - pad - (n / max) * (H - 2 * pad);
  // Steps: each sample holds until the next one; the last holds until now.
  const line = (key) => series.map((s, i) => {
    const next = i + 1 < series.length ? series[i + 1].t : now;
    return `${i ? "L" : "M"}${x(s.t).toFixed(1)},${y(s[key]).toFixed(1)} L${x(next).toFixed(1)},${y(s[key]).toFixed(1)}`;
  }).join(" ");
  const ns = "http://www.w3.org/2000/svg";
  const path = (d, color, name) => {
    const p = document.createElementNS(ns, "path");
    p.setAttribute("d", d);
    p.setAttribute("fill", "none");
    p.setAttribute("stroke", color);
    p.setAttribute("stroke-width", "2");
    p.setAttribute("vector-effect", "non-scaling-stroke");
    p.dataset.series = name;
    return p;
  };
  const limitLine = document.createElementNS(ns, "line");
  limitLine.setAttribute("x1", "0"); limitLine.setAttribute("x2", String(W));
  limitLine.setAttribute("y1", String(y(lim))); limitLine.setAttribute("y2", String(y(lim)));
  limitLine.setAttribute("stroke", "#57606a"); limitLine.setAttribute("stroke-width", "1.5");
  limitLine.setAttribute("stroke-dasharray", "6 4");
  limitLine.setAttribute("vector-effect", "non-scaling-stroke");
  limitLine.dataset.series = "limit";
  const children = [];
  if (series.length) children.push(path(line("queued"), "#c2410c", "queued"), path(line("active"), "#0b5cad", "active"));
  // Last, so on top: at full use the active line runs along the limit.
  children.push(limitLine);
  svg.replaceChildren(...children);
  // The limit's label, level with its line, right of the plot.
  const label = $("chart-limit");
  label.textContent = `limit ${lim}`;
  label.style.top = `${((100 * y(lim)) / H).toFixed(2)}%`; // CSSOM: allowed by the page's CSP
  const words = spanWords(span);
  $("chart-title").textContent = `Last ${words.long}`;
  $("chart-from").textContent = `${words.short} ago`;
  $("chart-max").textContent = `0 to ${max} calls`;
  const last = series[series.length - 1];
  svg.setAttribute("aria-label", last
    ? `Active and queued calls over the last ${words.long}; now ${last.active} active, ${last.queued} queued, limit ${lim}.`
    : "No samples yet.");
}

// ---- the Plan view of an org ------------------------------------------------

const DEFAULT_TARGETS = { inbound: [80, 20], webcall: [80, 20], chat: [80, 60], outbound: [95, 300] };
const TYPE_COLORS = { webcall: "#0b5cad", chat: "#8250df", outbound: "#1a7f37", inbound: "#bf3989" };
const svgEl = (tag, attrs) => {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
};
const percent = (x) => x == null ? "–" : `${(100 * x).toFixed(1)}%`;
let plan = null; // the plan on screen: {org, answer}

async function openPlan(org) {
  current = null;
  plan = null;
  show("plan");
  $("crumbs").replaceChildren(
    ...(session.operator ? [el("a", { href: "#" }, "Orgs"), " / "] : []),
    el("a", { href: "#org=" + encodeURIComponent(org) }, org), " / Plan");
  $("plan-title").textContent = "Plan · " + org;
  $("plan-form").dataset.org = org;
  $("plan-result").hidden = true;
  $("plan-error").textContent = $("plan-status").textContent = "";
  if (!$("plan-targets").children.length) {
    $("plan-targets").replaceChildren(...TYPES.flatMap((t) => [
      el("label", {}, el("input", { type: "checkbox", name: `on-${t}`, ...(t === "inbound" || t === "outbound" ? { checked: "" } : {}) }), " " + capital(t)),
      el("label", {}, el("input", { type: "number", name: `share-${t}`, min: "1", max: "100", step: "any", value: DEFAULT_TARGETS[t][0], "aria-label": `${capital(t)}: percent admitted` }), " % within"),
      el("label", {}, el("input", { type: "number", name: `within-${t}`, min: "0", step: "any", value: DEFAULT_TARGETS[t][1], "aria-label": `${capital(t)}: seconds` }), " s"),
    ]));
  }
  await showTraffic(org);
}

function targets() {
  const f = $("plan-form");
  return TYPES.filter((t) => f.elements[`on-${t}`].checked).map((t) => ({
    call_type: t,
    service_level: Number(f.elements[`share-${t}`].value) / 100,
    within_s: Number(f.elements[`within-${t}`].value),
  }));
}

async function showTraffic(org) {
  const base = `/orgs/${encodeURIComponent(org)}/traffic?window=${$("plan-window").value}`;
  try {
    const within = [...new Set(targets().map((t) => t.within_s))];
    const byWithin = await Promise.all((within.length ? within : [20]).map((w) => api("GET", `${base}&within_s=${w}`)));
    const t = byWithin[0];
    const level = (type) => {
      const target = targets().find((x) => x.call_type === type);
      const report = byWithin[Math.max(0, within.indexOf(target ? target.within_s : 20))];
      const o = report.types.find((x) => x.call_type === type);
      return o ? `${percent(o.service_level)} within ${report.service_level_within_s} s` : "–";
    };
    $("traffic-body").replaceChildren(...t.types.map((x) => el("tr", { "data-type": x.call_type },
      cell("th", "Type", capital(x.call_type)), cell("td", "Calls", String(x.calls)),
      cell("td", "Per hour", x.calls_per_hour.toFixed(1)),
      cell("td", "Mean duration", x.duration ? `${x.duration.mean_s.toFixed(0)} s` : "–"),
      cell("td", "Waited", percent(x.waited)), cell("td", "Gave up", percent(x.gave_up)),
      cell("td", "Service level", level(x.call_type)))));
    if (!t.types.length) $("traffic-body").replaceChildren(el("tr", {}, el("td", { colspan: "7" }, "No calls in this window.")));
    renderHours(t);
  } catch (e) {
    if (e.status === 404 || e.status === 401) return fail(e, org);
    $("plan-error").textContent = refusal(e);
  }
}

// Calls per hour of the day, one bar per type side by side.
function renderHours(t) {
  const W = 900, H = 160, pad = 4, slot = W / 24;
  const rows = t.types.map((x) => [x.call_type, x.calls_per_hour_by_hour]);
  const max = Math.max(1, ...rows.flatMap(([, hours]) => hours.map((v) => v || 0)));
  const bars = rows.flatMap(([type, hours], i) => hours.map((v, h) => {
    const w = (slot - 2) / rows.length, height = ((v || 0) / max) * (H - 2 * pad);
    return svgEl("rect", { x: (h * slot + 1 + i * w).toFixed(1), y: (H - pad - height).toFixed(1), width: w.toFixed(1), height: height.toFixed(1), fill: TYPE_COLORS[type], "data-type": type });
  }));
  $("traffic-chart").replaceChildren(...bars);
  $("traffic-max").textContent = `0 to ${max.toFixed(0)} calls per hour`;
  $("traffic-chart").setAttribute("aria-label", rows.length
    ? `Calls per hour by hour of day for ${rows.map(([type]) => type).join(", ")}; busiest ${max.toFixed(0)} per hour.`
    : "No calls in this window.");
}

// The views of an org, by the link's `view=`; the Concurrency view when absent.
const VIEWS = { plan: openPlan, usage: openUsage }; // openUsage: usage.js

$("plan-window").addEventListener("change", () => showTraffic($("plan-form").dataset.org));

$("plan-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const org = $("plan-form").dataset.org;
  const path = (what) => `/orgs/${encodeURIComponent(org)}/${what}`;
  $("plan-error").textContent = $("apply-status").textContent = $("apply-error").textContent = "";
  $("plan-status").textContent = "Planning: simulating the candidates…";
  $("plan-run").disabled = true;
  try {
    await showTraffic(org);
    const lookBack = $("plan-window").value;
    const answer = await api("POST", path("plan"), { targets: targets(), window: lookBack });
    const p = answer.plan;
    // Service level against the limit, with the recommended reservations,
    // from a little below both the current and the recommended limit to a little above.
    // Never below what the reservations (the current ones, with the plan's over them) add up to.
    const planned = (r) => p.reservations.some((q) => q.agent === r.agent && q.call_type === r.call_type);
    const reserved = [...answer.current.reservations.filter((r) => !planned(r)), ...p.reservations]
      .reduce((n, r) => n + r.reserved, 0);
    const lo = Math.max(1, reserved, Math.min(p.limit, answer.current.limit) - 3);
    const hi = Math.max(lo, p.limit, answer.current.limit) + 3;
    // At most about ten limits, the current and the recommended among them.
    const step = Math.max(1, Math.ceil((hi - lo) / 10));
    const limits = new Set([p.limit, answer.current.limit].filter((l) => l >= lo));
    for (let l = lo; l <= hi; l += step) limits.add(l);
    const what_if = [...limits].sort((a, b) => a - b)
      .map((l) => ({ name: `limit ${l}`, limit: l, reservations: p.reservations }));
    const sim = await api("POST", path("simulate"), {
      window: lookBack, targets: targets(), what_if,
    });
    plan = { org, answer };
    renderPlan(answer, sim);
    $("plan-status").textContent = `Planned from ${answer.traffic.length} streams of observed traffic in ${p.simulations} simulations.`;
  } catch (e) {
    $("plan-status").textContent = "";
    $("plan-error").textContent = refusal(e);
  } finally {
    $("plan-run").disabled = false;
  }
});

function renderPlan(answer, sim) {
  const p = answer.plan;
  $("plan-result").hidden = false;
  $("recommend-text").textContent = `Limit ${p.limit} (now ${answer.current.limit}). ` + (p.reservations.length
    ? "Reserve:" : "No reservations: a shared pool meets every target.");
  $("recommend-list").replaceChildren(...p.reservations.map((r) => el("li", { "data-agent": r.agent },
    `${r.agent}: ${r.reserved} ${r.call_type}`)));
  const rec = p.alternatives.find((a) => a.limit === p.limit);
  if (rec) {
    $("recommend-text").textContent += " " + rec.types.map((t) =>
      `${capital(t.call_type)}: ${percent(t.service_level.mean)} admitted in time.`).join(" ");
  }
  renderLevels(answer, sim);
}

function renderLevels(answer, sim) {
  const W = 900, H = 200, pad = 6;
  const points = sim.scenarios.filter((s) => s.name !== "current");
  const lo = points[0].limit, hi = points[points.length - 1].limit;
  const x = (l) => hi > lo ? ((l - lo) / (hi - lo)) * W : W / 2;
  const y = (v) => H - pad - v * (H - 2 * pad);
  const types = [...new Set(points.flatMap((s) => s.report.types.map((t) => t.call_type)))];
  const lines = types.map((type) => svgEl("path", {
    d: points.map((s, i) => {
      const t = s.report.types.find((r) => r.call_type === type);
      return `${i ? "L" : "M"}${x(s.limit).toFixed(1)},${y(t ? t.metrics.service_level.mean || 0 : 0).toFixed(1)}`;
    }).join(" "),
    fill: "none", stroke: TYPE_COLORS[type], "stroke-width": 2, "vector-effect": "non-scaling-stroke", "data-type": type,
  }));
  const marker = (l, name, dash) => svgEl("line", {
    x1: x(l), x2: x(l), y1: 0, y2: H, stroke: "#57606a", "stroke-width": 1.5, "stroke-dasharray": dash,
    "vector-effect": "non-scaling-stroke", "data-marker": name,
  });
  $("level-chart").replaceChildren(...lines, marker(answer.current.limit, "current", "6 4"), marker(answer.plan.limit, "recommended", "0"));
  $("level-from").textContent = `limit ${lo}`;
  $("level-to").textContent = `limit ${hi}`;
  $("level-legend").replaceChildren(...types.flatMap((t) => [el("span", { class: "swatch", style: `background:${TYPE_COLORS[t]}` }), ` ${t} `]),
    ` · dashed: now (${answer.current.limit}) · solid: recommended (${answer.plan.limit})`);
  $("level-chart").setAttribute("aria-label",
    `Simulated service level of ${types.join(", ")} for limits ${lo} to ${hi}; now ${answer.current.limit}, recommended ${answer.plan.limit}.`);
}

// Applies the recommendation through the usual API: the reservations (each
// agent's other types kept), and the limit when this key may set it.
$("plan-apply").addEventListener("click", async () => {
  if (!plan) return;
  const { org, answer } = plan;
  const p = answer.plan;
  const enc = encodeURIComponent;
  $("apply-status").textContent = $("apply-error").textContent = "";
  try {
    const raise = p.limit > answer.current.limit;
    if (raise && session.operator) await api("PUT", `/orgs/${enc(org)}/limit`, { limit: p.limit });
    const agents = [...new Set(p.reservations.map((r) => r.agent))];
    for (const agent of agents) {
      const now = await api("GET", `/orgs/${enc(org)}/agents/${enc(agent)}`);
      const reserved = { ...now.reserved };
      for (const r of p.reservations.filter((r) => r.agent === agent)) reserved[r.call_type] = r.reserved;
      await api("PUT", `/orgs/${enc(org)}/agents/${enc(agent)}/reservations`, reserved);
    }
    if (!raise && p.limit !== answer.current.limit && session.operator) await api("PUT", `/orgs/${enc(org)}/limit`, { limit: p.limit });
    const limitNote = p.limit === answer.current.limit || session.operator ? "" : ` Ask the operator to set the limit to ${p.limit}.`;
    $("apply-status").textContent = `Applied: ${agents.length ? p.reservations.map((r) => `${r.agent} ${r.call_type} ${r.reserved}`).join(", ") : "no reservations"}` +
      (session.operator && p.limit !== answer.current.limit ? `; limit ${p.limit}.` : ".") + limitNote;
  } catch (e) {
    $("apply-error").textContent = refusal(e);
  }
});

route();

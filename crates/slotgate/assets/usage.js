// slotgate dashboard: the Usage view of an org (`#org=ORG&view=usage`): peak
// concurrency by UTC hour against the limit over the last 7 or 30 days, from
// `GET /v1/orgs/{org}/usage`. Loaded before app.js, whose helpers ($, el,
// api, show, svgEl, fail) it calls once the page has loaded.
"use strict";

const HOUR_MS = 3600 * 1000;
// Hours whose peak reached at least this share of the limit are the org's
// peak hours; when at least USAGE_HIGH of them spent time at the limit the
// view says so, and points to the Plan view.
const PEAK_SHARE = 0.5;
const USAGE_HIGH = 0.25;

let usageOrg = null; // the org on screen

async function openUsage(org) {
  current = null;
  usageOrg = org;
  show("usage");
  $("crumbs").replaceChildren(
    ...(session.operator ? [el("a", { href: "#" }, "Orgs"), " / "] : []),
    el("a", { href: "#org=" + encodeURIComponent(org) }, org), " / Usage");
  $("usage-title").textContent = "Usage · " + org;
  $("usage-plan-link").href = `#org=${encodeURIComponent(org)}&view=plan`;
  await showUsage(org);
}

// Reads the hours of the chosen window and draws them.
async function showUsage(org) {
  const days = Number($("usage-window").value);
  const to = new Date(Math.ceil(clock.now() / HOUR_MS) * HOUR_MS);
  const from = new Date(to.getTime() - days * 24 * HOUR_MS);
  $("usage-error").textContent = "";
  let u;
  try {
    u = await api("GET", `/orgs/${encodeURIComponent(org)}/usage?from=${from.toISOString()}&to=${to.toISOString()}&step=1h`);
  } catch (e) {
    if (e.status === 404 || e.status === 401) return fail(e, org);
    $("usage-error").textContent = e.status === 403
      ? "This key may not read usage: it needs an admin key of the org or the operator key."
      : "Could not read usage: " + e.message;
    return;
  }
  if (usageOrg !== org) return;
  renderUsage(u, days);
}

// The share of peak hours spent at the limit: {peak, atLimit}.
function peakHours(steps) {
  const peak = steps.filter((s) => s.limit > 0 && s.overall.peak_active >= PEAK_SHARE * s.limit);
  return { peak: peak.length, atLimit: peak.filter((s) => s.at_limit_seconds > 0).length };
}

function renderUsage(u, days) {
  const steps = u.steps;
  const { peak, atLimit } = peakHours(steps);
  const share = peak ? atLimit / peak : 0;
  $("usage-summary").textContent = peak
    ? `${peak} peak hour${peak === 1 ? "" : "s"} (at least half the limit in use) in the last ${days} days; ${atLimit} of them (${Math.round(100 * share)}%) reached the limit.`
    : `No peak hours (at least half the limit in use) in the last ${days} days.`;
  const high = peak > 0 && share >= USAGE_HIGH;
  $("usage-high").hidden = !high;
  if (high) {
    $("usage-high-text").textContent =
      `${u.org} spent ${Math.round(100 * share)}% of its peak hours at its limit: calls waited, or used the burst. ` +
      "If it keeps hitting the limit, consider a bigger plan or other reservations.";
  }
  drawUsage(steps);
  renderUsageDays(steps);
}

// One bar per hour (its peak; red when it reached the limit), and the limit as a line.
function drawUsage(steps) {
  const W = 900, H = 200, n = Math.max(1, steps.length);
  const max = Math.max(1, ...steps.map((s) => Math.max(s.overall.peak_active, s.limit)));
  const y = (v) => H - (v / max) * (H - 10);
  const w = W / n;
  const bars = steps.map((s, i) => svgEl("rect", {
    x: i * w, y: y(s.overall.peak_active), width: Math.max(w - (n > 200 ? 0 : 1), 0.5),
    height: H - y(s.overall.peak_active), fill: s.at_limit_seconds > 0 ? "#cf222e" : "#0b5cad",
  }));
  const line = steps.map((s, i) => `${i ? "L" : "M"}${i * w},${y(s.limit)} L${(i + 1) * w},${y(s.limit)}`).join(" ");
  const limit = svgEl("path", { d: line, fill: "none", stroke: "#1f2328", "stroke-width": 2, "stroke-dasharray": "6 4", "vector-effect": "non-scaling-stroke" });
  $("usage-chart").replaceChildren(...bars, limit);
  const top = Math.max(0, ...steps.map((s) => s.overall.peak_active));
  $("usage-chart").setAttribute("aria-label", steps.length
    ? `Peak active calls by hour over ${steps.length} hours; highest ${top}; limit up to ${Math.max(0, ...steps.map((s) => s.limit))}. Red bars reached the limit.`
    : "No hours.");
  $("usage-from").textContent = steps.length ? steps[0].start.slice(0, 10) : "";
  $("usage-max").textContent = `0 to ${max} calls`;
}

// One row per UTC day with any activity: its peak, limit, hours at the limit, calls.
function renderUsageDays(steps) {
  const days = new Map();
  for (const s of steps) {
    const day = s.start.slice(0, 10);
    const d = days.get(day) || { peak: 0, limit: 0, atLimit: 0, admitted: 0, waited: 0, gaveUp: 0, burst: 0 };
    d.peak = Math.max(d.peak, s.overall.peak_active);
    d.limit = Math.max(d.limit, s.limit);
    d.atLimit += s.at_limit_seconds > 0 ? 1 : 0;
    d.admitted += s.overall.admitted;
    d.waited += s.overall.waited;
    d.gaveUp += s.overall.gave_up;
    d.burst += s.burst_seconds;
    days.set(day, d);
  }
  const busy = [...days.entries()].filter(([, d]) => d.peak > 0 || d.admitted > 0 || d.gaveUp > 0);
  $("usage-none").hidden = busy.length > 0;
  const rows = busy.reverse().map(([day, d]) => el("tr", {},
    el("th", { scope: "row" }, day),
    el("td", { "data-label": "Peak" }, String(d.peak)),
    el("td", { "data-label": "Limit" }, String(d.limit)),
    el("td", { "data-label": "Hours at limit" }, String(d.atLimit)),
    el("td", { "data-label": "Admitted" }, String(d.admitted)),
    el("td", { "data-label": "Waited" }, String(d.waited)),
    el("td", { "data-label": "Gave up" }, String(d.gaveUp)),
    el("td", { "data-label": "Burst" }, `${Math.round(d.burst)} s`)));
  $("usage-body").replaceChildren(...rows);
}

document.addEventListener("DOMContentLoaded", () => {
  $("usage-window").addEventListener("change", () => usageOrg && showUsage(usageOrg));
});

// The dashboard's Usage view (`#org=ORG&view=usage`, assets/usage.js) in
// headless Chromium against the real slotgate binary, at 1280 and 390 px.
//
// Run by scripts/test.sh next to dashboard.test.mjs (same setup):
// `node --test usage.test.mjs`. SLOTGATE_BIN names the binary (default:
// target/debug/slotgate). With SLOTGATE_URL (and SLOTGATE_OPERATOR_KEY), it
// tests that server, already running and empty, instead of starting one.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../../../..");
const BIN = process.env.SLOTGATE_BIN || join(root, "target/debug/slotgate");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const GIVEN = process.env.SLOTGATE_URL;
const OP = GIVEN ? process.env.SLOTGATE_OPERATOR_KEY : "dashboard-test-operator-0123456789abcdef";
const SHOTS = GIVEN ? join(root, "target/given") : join(root, "target");

let server, base, browser, dataDir;

async function startServer() {
  dataDir = mkdtempSync(join(tmpdir(), "slotgate-usage-"));
  server = spawn(BIN, ["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir], {
    env: { ...process.env, SLOTGATE_OPERATOR_KEY: OP, NO_COLOR: "1", RUST_LOG: "info" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const lines = createInterface({ input: server.stderr });
  return new Promise((ok, fail) => {
    const t = setTimeout(() => fail(new Error("slotgate did not get ready")), 20000);
    lines.on("line", (line) => {
      const m = line.match(/ready on (http:\/\/[0-9.:]+)/);
      if (m) { clearTimeout(t); ok(m[1]); }
    });
    server.on("exit", (code) => fail(new Error(`slotgate exited with ${code}`)));
  });
}

async function api(method, path, body, key = OP) {
  const res = await fetch(base + "/v1" + path, {
    method,
    headers: { Authorization: "Bearer " + key, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

// A page that records every Content-Security-Policy violation and every
// uncaught error: `done(p)` fails the test on any, so the whole dashboard is
// tested under the policy the server sends.
async function page(width = 1280, height = 900) {
  const context = await browser.newContext({ viewport: { width, height } });
  const p = await context.newPage();
  p.problems = [];
  await p.exposeFunction("reportViolation", (v) => p.problems.push(`CSP violation: ${v}`));
  await p.addInitScript(() => document.addEventListener("securitypolicyviolation",
    (e) => window.reportViolation(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`)));
  p.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/i.test(m.text())) p.problems.push(m.text());
  });
  p.on("pageerror", (e) => p.problems.push(`uncaught: ${e.message}`));
  return p;
}

async function done(p) {
  // Violations are reported asynchronously: let the last ones arrive.
  await p.waitForTimeout(100);
  assert.deepEqual(p.problems, [], "no CSP violation and no uncaught error");
  await p.context().close();
}

before(async () => {
  if (GIVEN) mkdirSync(SHOTS, { recursive: true });
  base = GIVEN || await startServer();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

// An org of one slot that spent this hour at its limit: c1 held it, c2
// waited, c3 gave up; then c2 holds it.
async function busyOrg(id) {
  assert.equal((await api("POST", "/orgs", { id, limit: 1 })).status, 201);
  const acquire = (call, type) => api("POST", `/orgs/${id}/calls`, { id: call, agent: "agent-a", type });
  assert.equal((await acquire("c1", "chat")).status, 201);
  assert.equal((await acquire("c2", "inbound")).status, 202);
  assert.equal((await acquire("c3", "chat")).status, 202);
  assert.equal((await api("DELETE", `/orgs/${id}/calls/c3`)).status, 200);
  assert.equal((await api("DELETE", `/orgs/${id}/calls/c1`)).status, 200);
  return (await api("POST", `/orgs/${id}/keys`, { role: "admin", name: "usage" })).body.key;
}

for (const [width, height] of [[1280, 900], [390, 844]]) {
  test(`the Usage view at ${width} px: peaks by hour against the limit, the share of peak hours at it, a line to the Plan view`, async () => {
    const org = `busy-${width}`;
    const admin = await busyOrg(org);
    const p = await page(width, height);
    await p.goto(`${base}/#org=${org}&key=${admin}`);
    await p.locator("#org").waitFor();
    // The Concurrency view links to the Usage view.
    await p.getByRole("link", { name: "Usage by hour" }).click();
    await p.locator("#usage").waitFor();
    assert.ok((await p.evaluate(() => location.hash)).includes("view=usage"));
    await p.waitForFunction(() => document.getElementById("usage-summary").textContent !== "");
    assert.match(await p.locator("#usage-summary").textContent(),
      /1 peak hour .* in the last 7 days; 1 of them \(100%\) reached the limit/);
    // High: a line says so and links to the Plan view.
    const high = p.locator("#usage-high");
    assert.ok(await high.isVisible());
    assert.match(await high.textContent(), /100% of its peak hours at its limit/);
    assert.equal(await p.locator("#usage-plan-link").getAttribute("href"), `#org=${org}&view=plan`);
    // A bar per hour of the week, the one that reached the limit in red; the limit as a line.
    assert.equal(await p.locator("#usage-chart rect").count(), 7 * 24);
    assert.equal(await p.locator('#usage-chart rect[fill="#cf222e"]').count(), 1);
    assert.equal(await p.locator("#usage-chart path").count(), 1);
    assert.match(await p.locator("#usage-chart").getAttribute("aria-label"), /highest 1; limit up to 1/);
    // Today's row: peak 1 of limit 1, an hour at the limit, 2 admitted, 1 waited, 1 gave up.
    const today = new Date().toISOString().slice(0, 10);
    // Only days with activity have a row.
    assert.equal(await p.locator("#usage-body tr").count(), 1);
    const row = p.locator("#usage-body tr", { has: p.locator("th", { hasText: today }) });
    assert.deepEqual((await row.locator("td").allTextContents()).slice(0, 6), ["1", "1", "1", "2", "1", "1"]);
    // 30 days: a bar per hour of the month.
    await p.getByLabel("Last", { exact: true }).selectOption("30");
    await p.waitForFunction(() => document.querySelectorAll("#usage-chart rect").length === 30 * 24);
    assert.match(await p.locator("#usage-summary").textContent(), /in the last 30 days/);
    // Nothing wider than the screen.
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow} px`);
    await p.screenshot({ path: join(SHOTS, `usage-${width}.png`), fullPage: true });
    // The Plan view is one click away.
    await p.locator("#usage-plan-link").click();
    await p.locator("#plan").waitFor();
    await done(p);
  });
}

test("the Usage view of a quiet org says so, and a runtime key is told it needs an admin key", async () => {
  assert.equal((await api("POST", "/orgs", { id: "quiet", limit: 5 })).status, 201);
  const runtime = (await api("POST", "/orgs/quiet/keys", { role: "runtime", name: "rt" })).body.key;
  const admin = (await api("POST", "/orgs/quiet/keys", { role: "admin", name: "ad" })).body.key;
  const p = await page();
  await p.goto(`${base}/#org=quiet&key=${admin}&view=usage`);
  await p.waitForFunction(() => document.getElementById("usage-summary").textContent !== "");
  assert.match(await p.locator("#usage-summary").textContent(), /No peak hours/);
  assert.equal(await p.locator("#usage-body tr").count(), 0);
  assert.ok(await p.locator("#usage-none").isVisible());
  assert.ok(!(await p.locator("#usage-high").isVisible()));
  await done(p);

  const q = await page();
  await q.goto(`${base}/#org=quiet&key=${runtime}&view=usage`);
  await q.waitForFunction(() => document.getElementById("usage-error").textContent !== "");
  assert.match(await q.locator("#usage-error").textContent(), /needs an admin key of the org or the operator key/);
  await done(q);
});

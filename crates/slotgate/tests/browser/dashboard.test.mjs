// The dashboard in headless Chromium against the real slotgate binary.
//
// Run by scripts/test.sh (which installs Chromium and this folder's npm
// packages): `node --test dashboard.test.mjs`. SLOTGATE_BIN names the binary
// (default: target/debug/slotgate). It also renders the README's screenshot
// of the seed example to target/dashboard.png.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../../../..");
const BIN = process.env.SLOTGATE_BIN || join(root, "target/debug/slotgate");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const OP = "dashboard-test-operator";

let server, base, browser, dataDir;

async function startServer() {
  dataDir = mkdtempSync(join(tmpdir(), "slotgate-dash-"));
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
  base = await startServer();
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

const seg = (p, agent) => p.locator(`[data-agent="${agent}"]`);
const shared = (p) => p.locator('[data-segment="shared"]');

test("an org key signs in by link; add, refuse, edit and remove reservations; calls appear live", async () => {
  assert.equal((await api("POST", "/orgs", { id: "acme", limit: 20 })).status, 201);
  const admin = (await api("POST", "/orgs/acme/keys", { role: "admin", name: "dash" })).body.key;

  const p = await page();
  await p.goto(`${base}/#org=acme&key=${admin}`);
  await p.locator("#org").waitFor();
  assert.equal(await p.locator("#stat-limit").textContent(), "20");
  assert.equal(await shared(p).getAttribute("data-slots"), "20");
  assert.ok(!(await p.evaluate(() => location.href)).includes(admin), "the key leaves the address bar");

  // Add agent-a with 2/3/4/3.
  await p.getByRole("button", { name: "Add" }).click();
  await p.getByLabel("Agent", { exact: true }).fill("agent-a");
  for (const [t, n] of [["Webcall", 2], ["Chat", 3], ["Outbound", 4], ["Inbound", 3]]) {
    await p.getByLabel(t, { exact: true }).fill(String(n));
  }
  await p.getByRole("button", { name: "Save" }).click();
  await seg(p, "agent-a").waitFor();
  assert.equal(await seg(p, "agent-a").getAttribute("data-slots"), "12");
  await p.waitForFunction(() => document.querySelector('[data-segment="shared"]').dataset.slots === "8");

  // Over-reserving: Save is disabled and says why.
  await p.getByRole("button", { name: "Add" }).click();
  await p.getByLabel("Agent", { exact: true }).fill("agent-b");
  await p.getByLabel("Inbound", { exact: true }).fill("9");
  assert.equal(await p.getByRole("button", { name: "Save" }).isDisabled(), true);
  assert.match(await p.locator("#editor-reason").textContent(), /more than the 8 free/);

  // A refusal from the server (someone else reserved meanwhile) is shown in words.
  await p.getByLabel("Inbound", { exact: true }).fill("5");
  assert.equal(await p.getByRole("button", { name: "Save" }).isDisabled(), false);
  assert.equal((await api("PUT", "/orgs/acme/agents/other/reservations", { chat: 6 })).status, 200);
  await p.getByRole("button", { name: "Save" }).click();
  await p.locator("#editor-error").filter({ hasText: "at most 2 slots" }).waitFor();
  await p.getByRole("button", { name: "Cancel" }).click();
  await api("DELETE", "/orgs/acme/agents/other/reservations");

  // Edit through the "..." menu.
  await p.getByRole("button", { name: "Actions for agent-a" }).click();
  await p.getByRole("menuitem", { name: "Edit reservations" }).click();
  await p.getByLabel("Chat", { exact: true }).fill("1");
  await p.getByRole("button", { name: "Save" }).click();
  await p.waitForFunction(() => document.querySelector('[data-agent="agent-a"]')?.dataset.slots === "10");

  // A call placed through the API appears without a reload.
  assert.equal((await api("POST", "/orgs/acme/calls", { id: "live-1", agent: "agent-a", type: "chat" }, admin)).status, 201);
  await p.waitForFunction(() => document.getElementById("stat-active").textContent === "1", null, { timeout: 5000 });
  assert.match(await p.locator("#bar-caption").textContent(), /1 of 20 slots in use/);

  // Remove, with a confirmation that says where the slots go.
  await p.getByRole("button", { name: "Actions for agent-a" }).click();
  await p.getByRole("menuitem", { name: "Remove agent" }).click();
  assert.match(await p.locator("#remover-text").textContent(), /10 reserved slots return to the shared pool/);
  await p.locator("#remover-ok").click();
  await p.waitForFunction(() => !document.querySelector('[data-agent="agent-a"]'));
  assert.equal(await shared(p).getAttribute("data-slots"), "20");
  await api("DELETE", "/orgs/acme/calls/live-1");
  await done(p);
});

test("the dashboard runs under its security policy, and a violation would be caught", async () => {
  const p = await page();
  const headers = (await p.goto(base + "/")).headers();
  const csp = headers["content-security-policy"];
  for (const d of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]) {
    assert.ok(csp.includes(d), `${d} in ${csp}`);
  }
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(headers["x-content-type-options"], "nosniff");
  assert.equal(headers["referrer-policy"], "no-referrer");
  await p.locator("#signin").waitFor();
  const cache = await p.evaluate(async () => (await fetch("/v1/openapi.json")).headers.get("cache-control"));
  assert.equal(cache, "no-store", "API answers are not cached");
  // The detector of the other tests works: an inline script and a style
  // attribute are blocked and reported.
  await p.evaluate(() => {
    const s = document.createElement("script");
    s.textContent = "window.inlineRan = true";
    document.body.append(s);
    document.body.setAttribute("style", "color: red");
  });
  await p.waitForTimeout(200);
  assert.equal(await p.evaluate(() => window.inlineRan), undefined, "inline script does not run");
  assert.ok(p.problems.some((m) => /script-src/.test(m)), p.problems.join("\n"));
  assert.ok(p.problems.some((m) => /style-src/.test(m)), p.problems.join("\n"));
  // No page of another origin may frame the dashboard.
  const framer = await page();
  const refused = new Promise((ok) => framer.on("console", (m) => { if (/frame-ancestors/.test(m.text())) ok(m.text()); }));
  await framer.setContent(`<iframe src="${base}/"></iframe>`);
  assert.match(await refused, /frame-ancestors 'none'/);
  await framer.context().close();
  await p.context().close();
});

test("the operator key lists orgs and changes a limit, refusals explained", async () => {
  await api("POST", "/orgs", { id: "beta", limit: 4 });
  await api("PUT", "/orgs/beta/agents/x/reservations", { chat: 3 });
  const p = await page();
  await p.goto(base + "/");
  await p.getByLabel("Key", { exact: true }).fill(OP);
  await p.getByRole("button", { name: "Sign in" }).click();
  await p.getByRole("link", { name: "beta" }).click();
  await p.locator("#org").waitFor();
  await p.getByLabel("Org limit (plan)").fill("2");
  await p.getByRole("button", { name: "Set limit" }).click();
  await p.locator("#limit-error").filter({ hasText: "cannot go below the 3 slots reserved" }).waitFor();
  await p.getByLabel("Org limit (plan)").fill("9");
  await p.getByRole("button", { name: "Set limit" }).click();
  await p.waitForFunction(() => document.getElementById("stat-limit").textContent === "9");
  assert.equal((await api("GET", "/orgs/beta")).body.limit, 9);
  await done(p);
});

test("keyboard, labels, and a phone-sized screen", async () => {
  const admin = (await api("POST", "/orgs/acme/keys", { role: "admin", name: "kbd" })).body.key;
  const p = await page(390, 844);
  await p.goto(`${base}/#org=acme&key=${admin}`);
  await p.locator("#org").waitFor();
  const unlabelled = await p.evaluate(() => [...document.querySelectorAll("input, button")]
    .filter((e) => e.offsetParent !== null || e.closest("dialog"))
    .filter((e) => !(e.labels?.length || e.getAttribute("aria-label") || e.textContent.trim()))
    .map((e) => e.outerHTML));
  assert.deepEqual(unlabelled, []);
  const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone`);
  // The Add dialog opens from the keyboard and closes with Escape.
  await p.locator("#add").focus();
  await p.keyboard.press("Enter");
  assert.equal(await p.locator("#editor").evaluate((d) => d.open), true);
  await p.keyboard.press("Escape");
  assert.equal(await p.locator("#editor").evaluate((d) => d.open), false);
  await done(p);
});

test("the seed example renders (README screenshot)", async () => {
  await api("POST", "/orgs", { id: "seed", limit: 20 });
  await api("PUT", "/orgs/seed/agents/agent-a/reservations", { webcall: 2, chat: 3, outbound: 4, inbound: 3 });
  await api("PUT", "/orgs/seed/agents/agent-b/reservations", { webcall: 1, chat: 1, outbound: 2, inbound: 1 });
  const calls = [
    ...[["webcall", 2], ["chat", 3], ["outbound", 4], ["inbound", 6]].flatMap(([t, n]) => Array(n).fill(["agent-a", t])),
    ["agent-b", "webcall"], ["agent-b", "chat"], ["agent-b", "outbound"], ["agent-b", "outbound"], ["agent-b", "inbound"],
    ["agent-c", "chat"], ["agent-c", "inbound"], ["agent-a", "chat"],
  ];
  let i = 0;
  for (const [agent, type] of calls) {
    const r = await api("POST", "/orgs/seed/calls", { id: `seed-${i++}`, agent, type, lease_ttl_s: 3600 });
    assert.ok([201, 202].includes(r.status));
  }
  const v = (await api("GET", "/orgs/seed")).body;
  assert.equal(v.active, 20);
  assert.equal(v.queued, 3);
  const p = await page(1280, 860);
  await p.goto(`${base}/#org=seed&key=${OP}`);
  await seg(p, "agent-b").waitFor();
  // Some calls end and the queue moves, so that the chart has a story to tell.
  await p.waitForTimeout(3000);
  for (const id of ["seed-0", "seed-13", "seed-19"]) await api("DELETE", `/orgs/seed/calls/${id}`);
  await p.waitForTimeout(3000);
  await api("POST", "/orgs/seed/calls", { id: "seed-late", agent: "agent-c", type: "chat", lease_ttl_s: 3600 });
  await p.waitForTimeout(2500);
  assert.equal(await seg(p, "agent-a").getAttribute("data-slots"), "12");
  assert.equal(await seg(p, "agent-b").getAttribute("data-slots"), "5");
  assert.equal(await shared(p).getAttribute("data-slots"), "3");
  assert.ok((await p.locator("#chart path").count()) === 2, "the chart draws active and queued");
  await p.screenshot({ path: join(root, "target/dashboard.png"), fullPage: true });
  await done(p);
});

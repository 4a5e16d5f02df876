// What both browser suites share: the real slotgate binary started on a
// fresh data directory (or the server SLOTGATE_URL names), headless
// Chromium, the API as the operator, and pages that fail their test on any
// Content-Security-Policy violation or uncaught error.
//
// `useServer(prefix)` registers the suite's `before` and `after`; `base` is
// the server's URL once `before` has run. SLOTGATE_BIN names the binary
// (default: target/debug/slotgate); with SLOTGATE_URL (and
// SLOTGATE_OPERATOR_KEY) the suite tests that server, already running and
// empty, and saves its pictures under target/given/.

import { before, after } from "node:test";
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

/** The operator key of the server under test. */
export const OP = GIVEN ? process.env.SLOTGATE_OPERATOR_KEY : "dashboard-test-operator-0123456789abcdef";
/** Where pictures are saved. */
export const SHOTS = GIVEN ? join(root, "target/given") : join(root, "target");
/** The server's URL, once the suite's `before` has run. */
export let base;

let server, browser, dataDir;

async function startServer(prefix) {
  dataDir = mkdtempSync(join(tmpdir(), prefix));
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

/** Starts the server (data directory named after `prefix`) and the browser
 * before the suite's tests, and stops both after them. */
export function useServer(prefix) {
  before(async () => {
    if (GIVEN) mkdirSync(SHOTS, { recursive: true });
    base = GIVEN || await startServer(prefix);
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
}

/** One API request (`path` under /v1), as the operator unless `key` is given. */
export async function api(method, path, body, key = OP) {
  const res = await fetch(base + "/v1" + path, {
    method,
    headers: { Authorization: "Bearer " + key, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** A page that records every Content-Security-Policy violation and every
 * uncaught error: `done(p)` fails the test on any, so the whole dashboard is
 * tested under the policy the server sends. */
export async function page(width = 1280, height = 900) {
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

/** Fails the test on any problem `p` recorded, then closes it. */
export async function done(p) {
  // Violations are reported asynchronously: let the last ones arrive.
  await p.waitForTimeout(100);
  assert.deepEqual(p.problems, [], "no CSP violation and no uncaught error");
  await p.context().close();
}

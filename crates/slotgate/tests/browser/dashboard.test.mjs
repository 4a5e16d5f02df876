// The dashboard in headless Chromium against the real slotgate binary.
//
// Run by scripts/test.sh (which installs Chromium and this folder's npm
// packages): `node --test dashboard.test.mjs`. SLOTGATE_BIN names the binary
// (default: target/debug/slotgate). It also renders the README's screenshot
// of the seed example to target/dashboard.png.
//
// With SLOTGATE_URL (and SLOTGATE_OPERATOR_KEY), it tests that server, already
// running and empty, instead of starting one, and saves its pictures under
// target/given/: tests/it/dashboard.rs runs it so through a replica that forwards
// every request to the leading one.

import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { OP, SHOTS, base, useServer, api, page, done } from "./harness.mjs";

useServer("slotgate-dash-");

const seg = (p, agent) => p.locator(`[data-agent="${agent}"]`);
const shared = (p) => p.locator('[data-segment="shared"]');

test("an org key signs in by link; add, refuse, edit and remove reservations; calls appear live", async () => {
  assert.equal((await api("POST", "/orgs", { id: "acme", limit: 20 })).status, 201);
  const admin = (await api("POST", "/orgs/acme/keys", { role: "admin", name: "dash" })).body.key;

  const p = await page();
  await p.goto(`${base}/#org=acme&key=${admin}`);
  await p.locator("#org").waitFor();
  // The section shows at once; its numbers once the first snapshot has come.
  await p.waitForFunction(() => document.getElementById("stat-limit").textContent === "20");
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

test("a link opens the view it names; an org that is not there is said so in place of its view", async () => {
  await api("POST", "/orgs", { id: "linked", limit: 3 });
  await api("POST", "/orgs", { id: "elsewhere", limit: 3 });
  const admin = (await api("POST", "/orgs/linked/keys", { role: "admin", name: "links" })).body.key;
  const p = await page();
  // A link with its key and a view: that view, and the key out of the address bar.
  await p.goto(`${base}/#org=linked&key=${admin}&view=plan`);
  await p.locator("#plan").waitFor();
  assert.equal(await p.locator("#org").isHidden(), true);
  assert.equal(await p.locator("#plan-title").textContent(), "Plan · linked");
  const hash = await p.evaluate(() => location.hash);
  assert.ok(!hash.includes(admin) && hash.includes("view=plan"), hash);
  await p.reload();
  await p.locator("#plan").waitFor();
  // Without the key once signed in, both ways.
  await p.goto(`${base}/#org=linked`);
  await p.locator("#org").waitFor();
  await p.goto(`${base}/#org=linked&view=plan`);
  await p.locator("#plan").waitFor();

  // An org this key cannot see (it exists) or that does not exist: said at
  // the top, in place of the view, never drawn as an empty org.
  for (const [org, view] of [["elsewhere", ""], ["nowhere", ""], ["nowhere", "&view=plan"]]) {
    await p.goto(`${base}/#org=${org}${view}`);
    await p.locator("#missing").waitFor();
    assert.equal(await p.locator("#org").isHidden(), true, org + view);
    assert.equal(await p.locator("#plan").isHidden(), true, org + view);
    assert.equal(await p.locator("#missing-text").textContent(),
      `There is no org “${org}” that this key can see: the org does not exist, or the key belongs to another org.`);
    const box = await p.locator("#missing-text").boundingBox();
    assert.ok(box && box.y + box.height < 900 / 2, `near the top: ${JSON.stringify(box)}`);
  }
  await p.getByRole("button", { name: "Sign in with another key" }).click();
  await p.locator("#signin").waitFor();
  await done(p);

  // The operator sees every org: one that is not there simply does not exist.
  const op = await page();
  await op.goto(`${base}/#org=nowhere&key=${OP}`);
  await op.locator("#missing").waitFor();
  assert.equal(await op.locator("#missing-text").textContent(), "There is no org “nowhere”.");
  await op.getByRole("link", { name: "All orgs" }).click();
  await op.locator("#orgs").waitFor();
  await done(op);
});

test("a link with another org's key asks before it switches, and never replaces the session silently", async () => {
  await api("POST", "/orgs", { id: "mine", limit: 2 });
  await api("POST", "/orgs", { id: "theirs", limit: 2 });
  const mine = (await api("POST", "/orgs/mine/keys", { role: "admin", name: "mine" })).body.key;
  const theirs = (await api("POST", "/orgs/theirs/keys", { role: "admin", name: "theirs" })).body.key;
  const p = await page();
  const title = () => p.locator("#org-title").textContent();
  const key = () => p.evaluate(() => sessionStorage.getItem("slotgate.key"));
  await p.goto(`${base}/#org=mine&key=${mine}`);
  await p.locator("#org").waitFor();
  assert.equal(await title(), "Concurrency · mine");

  // Another org's key: asked, naming both orgs; nothing changed meanwhile.
  await p.goto(`${base}/#org=theirs&key=${theirs}`);
  await p.locator("#switch").waitFor();
  assert.equal(await p.locator("#org").isHidden(), true);
  assert.equal(await p.locator("#switch-text").textContent(),
    "This link signs in with another key and opens org “theirs”. You are signed in to org “mine”.");
  assert.ok(!(await p.evaluate(() => location.href)).includes(theirs), "the key leaves the address bar");
  assert.equal(await key(), mine);
  // Staying keeps the session and its org.
  await p.getByRole("button", { name: "Stay signed in" }).click();
  await p.locator("#org").waitFor();
  assert.equal(await title(), "Concurrency · mine");
  assert.equal(await key(), mine);

  // Switching, once asked, opens the link's org with its key.
  await p.goto(`${base}/#org=theirs&key=${theirs}`);
  await p.getByRole("button", { name: "Open “theirs” with the link's key" }).click();
  await p.waitForFunction(() => document.getElementById("org-title").textContent === "Concurrency · theirs");
  assert.equal(await key(), theirs);

  // A link with the key already signed in opens at once.
  await p.goto(`${base}/#org=theirs&key=${theirs}&view=plan`);
  await p.locator("#plan").waitFor();
  assert.equal(await p.locator("#switch").isHidden(), true);

  // The operator's session is named as such.
  await p.goto(`${base}/#`);
  await p.getByRole("button", { name: "Sign out" }).click();
  await p.goto(`${base}/#key=${OP}`);
  await p.locator("#orgs").waitFor();
  await p.goto(`${base}/#org=mine&key=${mine}`);
  await p.locator("#switch").waitFor();
  assert.equal(await p.locator("#switch-text").textContent(),
    "This link signs in with another key and opens org “mine”. You are signed in with the operator key.");
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

// The rows of a list of calls as text, cell by cell (without the card labels,
// which are CSS).
const rowsOf = (p, table) => p.locator(table).evaluate((t) =>
  [...t.tBodies[0].rows].map((r) => [...r.cells].map((c) => c.textContent.trim())));

// At a phone's width: every cell of every row is shown whole inside the
// screen, under a label that is its column's head; nothing scrolls sideways.
async function assertCards(p, table) {
  const problems = await p.locator(table).evaluate((t) => {
    const heads = [...t.tHead.rows[0].cells].map((c) => c.textContent.trim());
    const out = [];
    for (const r of t.tBodies[0].rows) {
      if (r.classList.contains("detail")) continue;
      [...r.cells].forEach((c, i) => {
        const box = c.getBoundingClientRect();
        const style = getComputedStyle(c);
        const label = getComputedStyle(c, "::before").content;
        if (box.width === 0 || box.height === 0 || style.visibility !== "visible") out.push(`${heads[i]} of ${r.cells[0].textContent} is hidden`);
        if (box.left < 0 || box.right > window.innerWidth) out.push(`${heads[i]} of ${r.cells[0].textContent} is off screen (${box.left}..${box.right})`);
        if (c.scrollWidth > c.clientWidth + 1) out.push(`${heads[i]} of ${r.cells[0].textContent} is cut (${c.scrollWidth} > ${c.clientWidth})`);
        if (label !== JSON.stringify(heads[i])) out.push(`${heads[i]} of ${r.cells[0].textContent} is labelled ${label}`);
      });
    }
    return out;
  });
  assert.deepEqual(problems, []);
}

test("the queue page by page, an agent's active calls, the limit line, cards on a phone", async () => {
  assert.equal((await api("POST", "/orgs", { id: "busy", limit: 3 })).status, 201);
  await api("PUT", "/orgs/busy/agents/agent-a/reservations", { chat: 2 });
  const place = (id, agent, type, extra = {}) =>
    api("POST", "/orgs/busy/calls", { id, agent, type, lease_ttl_s: 3600, ...extra });
  for (const [id, agent, type] of [["a-1", "agent-a", "chat"], ["a-2", "agent-a", "chat"], ["b-1", "agent-b", "webcall"]]) {
    assert.equal((await place(id, agent, type)).status, 201);
  }
  // 25 queued: agent-b and agent-c by turns, every third with a max_wait of 10 minutes.
  const TYPES = ["webcall", "chat", "outbound", "inbound"];
  const queued = Array.from({ length: 25 }, (_, i) => ({
    id: `q-${i + 1}`, agent: i % 2 ? "agent-c" : "agent-b", type: TYPES[i % 4], maxWait: (i + 1) % 3 === 0,
  }));
  for (const q of queued) {
    const r = await place(q.id, q.agent, q.type, q.maxWait ? { max_wait_s: 600 } : {});
    assert.equal(r.status, 202);
  }
  const order = (await api("GET", "/orgs/busy/calls?state=queued")).body.calls.map((c) => c.id);
  assert.deepEqual(order, queued.map((q) => q.id), "the API's queue order");

  const p = await page();
  await p.goto(`${base}/#org=busy&key=${OP}`);
  const queueTable = '#queue-list table';
  const queuePager = p.getByRole("navigation", { name: "Queue, pages" });
  await p.waitForFunction(() => document.querySelectorAll("#queue-list tbody tr").length === 20);

  // Page 1: positions 1 to 20 in queue order, with agent, type, wait and max_wait.
  const expectRows = (rows, from) => rows.forEach((cells, i) => {
    const q = queued[from + i];
    assert.deepEqual(cells.slice(0, 4), [String(from + i + 1), q.id, q.agent, q.type[0].toUpperCase() + q.type.slice(1)]);
    assert.match(cells[4], /^\d+ s$/, `waiting of ${q.id}`);
    // Under a second after queueing, what is left still rounds to 10 min.
    if (q.maxWait) assert.match(cells[5], /^10 min, (10 min|9 min \d\d s) left$/, `max wait of ${q.id}`);
    else assert.equal(cells[5], "none", `max wait of ${q.id}`);
    assert.equal(cells[6], "not known yet", `expected wait of ${q.id}: no slot has freed yet`);
  });
  let rows = await rowsOf(p, queueTable);
  assert.equal(rows.length, 20);
  expectRows(rows, 0);
  assert.equal(await queuePager.locator(".range").textContent(), "1–20 of 25");
  assert.equal(await queuePager.getByRole("button", { name: "Previous" }).isDisabled(), true);
  assert.match(await p.locator("#queue-count").textContent(), /^25 waiting/);

  // Page 2: the last 5.
  await queuePager.getByRole("button", { name: "Next" }).click();
  await p.waitForFunction(() => document.querySelectorAll("#queue-list tbody tr").length === 5);
  rows = await rowsOf(p, queueTable);
  expectRows(rows, 20);
  assert.equal(await queuePager.locator(".range").textContent(), "21–25 of 25");
  assert.equal(await queuePager.getByRole("button", { name: "Next" }).isDisabled(), true);

  // The queue moves live: the first call gives up, everyone moves up one.
  await api("DELETE", "/orgs/busy/calls/q-1");
  await p.waitForFunction(() => document.querySelector("#queue-list tbody tr th")?.textContent === "21"
    && document.querySelectorAll("#queue-list tbody tr").length === 4);
  rows = await rowsOf(p, queueTable);
  assert.deepEqual(rows.map((r) => [r[0], r[1]]), [["21", "q-22"], ["22", "q-23"], ["23", "q-24"], ["24", "q-25"]]);
  await queuePager.getByRole("button", { name: "Previous" }).click();
  await p.waitForFunction(() => document.querySelector("#queue-list tbody tr td")?.textContent === "q-2");
  rows = await rowsOf(p, queueTable);
  assert.deepEqual(rows.map((r) => r[1]), queued.slice(1, 21).map((q) => q.id));

  // Each row's "..." button says whose actions it holds.
  const menus = await p.locator("[data-agent-row]").evaluateAll((rs) =>
    rs.map((r) => [r.dataset.agentRow, r.querySelector(".menu > button").getAttribute("aria-label")]));
  assert.deepEqual(menus, ["agent-a", "agent-b", "agent-c"].map((a) => [a, `Actions for ${a}`]));

  // An agent's active calls, on demand.
  const toggle = p.getByRole("button", { name: "Active calls of agent-a: 2" });
  assert.equal(await toggle.getAttribute("aria-expanded"), "false");
  await toggle.click();
  assert.equal(await toggle.getAttribute("aria-expanded"), "true");
  const detail = 'table[aria-label="Active calls of agent-a"]';
  await p.waitForFunction((d) => document.querySelector(d)?.tBodies[0].rows.length === 2, detail);
  rows = await rowsOf(p, detail);
  assert.deepEqual(rows.map((r) => r.slice(0, 3)), [["a-1", "Chat", "Reserved"], ["a-2", "Chat", "Reserved"]]);
  assert.match(rows[0][3], /^\d+ s$/);
  assert.match(rows[0][4], /^\d+ min \d\d s$|^60 min$/, "lease ends in about an hour");
  assert.equal(await toggle.evaluate((b) => document.activeElement === b), true, "the focus stays on the button");
  await p.getByRole("button", { name: "Active calls of agent-b: 1" }).click();
  await p.waitForFunction(() => document.querySelector('table[aria-label="Active calls of agent-b"]')?.tBodies[0].rows.length === 1);
  assert.deepEqual((await rowsOf(p, 'table[aria-label="Active calls of agent-b"]'))[0].slice(0, 3), ["b-1", "Webcall", "Shared"]);
  // It follows the calls live, and closes again.
  await api("DELETE", "/orgs/busy/calls/a-2");
  await p.waitForFunction((d) => document.querySelector(d)?.tBodies[0].rows.length === 1, detail);
  await p.getByRole("button", { name: "Active calls of agent-b: 1" }).click();
  await p.waitForFunction(() => !document.querySelector('table[aria-label="Active calls of agent-b"]'));
  // (q-2 took a-2's slot: the shared one, since agent-a has reserved room.)

  // The chart: the limit line is drawn last (on top of the active line, which
  // runs along it at full use) and labelled; title and axis name one window.
  await p.waitForFunction(() => document.querySelectorAll("#chart path").length === 2);
  const layers = await p.locator("#chart").evaluate((svg) => [...svg.children].map((c) => c.dataset.series));
  assert.deepEqual(layers, ["queued", "active", "limit"]);
  assert.equal(await p.locator("#chart-limit").textContent(), "limit 3");
  assert.equal(await p.locator("#chart-limit").isVisible(), true);
  assert.equal(await p.locator("#chart-title").textContent(), "Last 60 seconds");
  assert.equal(await p.locator("#chart-from").textContent(), "60 s ago");
  await done(p);

  // At 390 px: the agents and the queue are cards with every field, nothing
  // hidden, nothing scrolling sideways.
  const phone = await page(390, 844);
  await phone.goto(`${base}/#org=busy&key=${OP}`);
  await phone.waitForFunction(() => document.querySelectorAll("#queue-list tbody tr").length === 20);
  await phone.getByRole("button", { name: "Active calls of agent-a: 1" }).click();
  await phone.waitForFunction(() => document.querySelector('table[aria-label="Active calls of agent-a"]')?.tBodies[0].rows.length === 1);
  const overflow = await phone.evaluate(() => [document.documentElement.scrollWidth - window.innerWidth,
    ...[...document.querySelectorAll(".table-scroll")].map((s) => s.scrollWidth - s.clientWidth)]);
  assert.ok(overflow.every((o) => o <= 0), `wider than the phone: ${overflow}`);
  await assertCards(phone, "#agents");
  await assertCards(phone, queueTable);
  await assertCards(phone, 'table[aria-label="Active calls of agent-a"]');
  // A card's "..." menu opens whole, on top, not clipped by the table's box.
  await phone.getByRole("button", { name: "Actions for agent-c" }).click();
  for (const name of ["Edit reservations", "Remove agent"]) {
    const hit = await phone.getByRole("menuitem", { name }).evaluate((item) => {
      const r = item.getBoundingClientRect();
      return r.right <= window.innerWidth && r.bottom <= window.innerHeight
        && document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2) === item;
    });
    assert.equal(hit, true, `${name} is shown whole and on top`);
  }
  await phone.keyboard.press("Escape");
  await phone.screenshot({ path: join(SHOTS, "dashboard-phone.png"), fullPage: true });
  await done(phone);
  for (const c of (await api("GET", "/orgs/busy/calls")).body.calls) await api("DELETE", `/orgs/busy/calls/${c.id}`);
});

test("the queue shows each call's expected wait once the org's slots have freed often enough", async () => {
  assert.equal((await api("POST", "/orgs", { id: "steady", limit: 1 })).status, 201);
  const place = (id) => api("POST", "/orgs/steady/calls", { id, agent: "agent-a", type: "chat", lease_ttl_s: 3600 });
  assert.equal((await place("h")).status, 201);
  // 8 frees (the engine's MIN_FREES), each after about 150 ms in use.
  let active = "h";
  for (let i = 0; i < 8; i++) {
    assert.equal((await place(`w-${i}`)).status, 202);
    await new Promise((ok) => setTimeout(ok, 150));
    await api("DELETE", `/orgs/steady/calls/${active}`);
    active = `w-${i}`;
  }
  for (let i = 0; i < 12; i++) assert.equal((await place(`q-${i + 1}`)).status, 202);
  const listed = (await api("GET", "/orgs/steady/calls?state=queued")).body.calls;
  assert.ok(listed.every((c) => c.estimated_wait_s > 0), "the API has an estimate for each");

  const p = await page();
  await p.goto(`${base}/#org=steady&key=${OP}`);
  await p.waitForFunction(() => document.querySelectorAll("#queue-list tbody tr").length === 12);
  const heads = await p.locator("#queue-list thead th").allTextContents();
  assert.equal(heads[6], "Expected wait");
  const waits = (await rowsOf(p, "#queue-list table")).map((cells) => cells[6]);
  for (const w of waits) assert.match(w, /^(<1 s|~\d+ s)$/);
  assert.match(waits[11], /^~\d+ s$/, "twelve calls ahead of a slot that frees every ~0.15 s: a second or more");
  await done(p);
  for (const c of (await api("GET", "/orgs/steady/calls")).body.calls) await api("DELETE", `/orgs/steady/calls/${c.id}`);
});

test("the chart's title and axis name the same window, the one its samples fill", async () => {
  await api("POST", "/orgs", { id: "past", limit: 5 });
  const p = await page();
  // The server keeps 15 minutes of samples: pretend it has `age` of them.
  let age = 0;
  await p.route("**/v1/orgs/past/history", (route) => {
    const now = Date.now();
    const samples = [];
    for (let t = now - age; t < now; t += 2000) samples.push({ at_ms: t, active: 1, queued: 0 });
    route.fulfill({ contentType: "application/json", body: JSON.stringify({ interval_s: 2, samples }) });
  });
  for (const [ageS, windowS, title, axis] of [
    [0, 60, "Last 60 seconds", "60 s ago"],
    [45, 60, "Last 60 seconds", "60 s ago"],
    [90, 120, "Last 2 minutes", "2 min ago"],
    [4 * 60, 300, "Last 5 minutes", "5 min ago"],
    [14 * 60, 900, "Last 15 minutes", "15 min ago"],
  ]) {
    age = ageS * 1000;
    await p.goto(`${base}/#org=past&key=${OP}`);
    await p.reload();
    await p.locator("#chart path").first().waitFor({ state: "attached" });
    assert.equal(await p.locator("#chart-title").textContent(), title, `${ageS} s of samples`);
    assert.equal(await p.locator("#chart-from").textContent(), axis, `${ageS} s of samples`);
    assert.match(await p.locator("#chart").getAttribute("aria-label"), new RegExp(`over the ${title.toLowerCase()};`));
    // The oldest sample is drawn where the axis says it is (within a few seconds).
    const left = await p.locator('#chart path[data-series="active"]').evaluate((e) => e.getBBox().x);
    const want = 900 * (1 - ageS / windowS);
    assert.ok(Math.abs(left - want) <= 900 * 4 / windowS, `${ageS} s of samples start at ${left} of 900, not ${want}`);
  }
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
  // Its length: a few seconds in the test run; scripts/screenshot.sh makes it
  // most of the chart's first window (60 s), so the picture shows that minute.
  const story = Number(process.env.DASHBOARD_STORY_S || 8.5) * 1000;
  await p.waitForTimeout(story * 0.35);
  for (const id of ["seed-0", "seed-13", "seed-19"]) await api("DELETE", `/orgs/seed/calls/${id}`);
  await p.waitForTimeout(story * 0.35);
  await api("POST", "/orgs/seed/calls", { id: "seed-late", agent: "agent-c", type: "chat", lease_ttl_s: 3600 });
  await p.waitForTimeout(story * 0.3);
  assert.equal(await seg(p, "agent-a").getAttribute("data-slots"), "12");
  assert.equal(await seg(p, "agent-b").getAttribute("data-slots"), "5");
  assert.equal(await shared(p).getAttribute("data-slots"), "3");
  assert.ok((await p.locator("#chart path").count()) === 2, "the chart draws active and queued");
  // The picture's caption and axis name the window its samples fill.
  assert.equal(await p.locator("#chart-title").textContent(), "Last 60 seconds");
  assert.equal(await p.locator("#chart-from").textContent(), "60 s ago");
  await p.screenshot({ path: join(SHOTS, "dashboard.png"), fullPage: true });
  await done(p);
});

// The Plan view's traffic: inbound calls for agent-a and outbound calls for
// agent-b. In the test run, a burst of short calls; with `story` seconds
// (scripts/screenshot.sh), Poisson arrivals over that time on a small org
// (1 inbound a second lasting 3 s and giving up after 8 s in the queue, 0.6
// outbound a second lasting 5 s), for the docs' picture. The calls made, per type.
async function planTraffic(org, story) {
  const made = { inbound: 0, outbound: 0 };
  const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
  if (!story) {
    await Promise.all([["agent-a", "inbound", 30], ["agent-b", "outbound", 15]].map(async ([agent, type, n]) => {
      for (let i = 0; i < n; i++) {
        const id = `${agent}-${i}`;
        assert.equal((await api("POST", `/orgs/${org}/calls`, { id, agent, type })).status, 201);
        await sleep(20);
        assert.equal((await api("DELETE", `/orgs/${org}/calls/${id}`)).status, 200);
        made[type]++;
      }
    }));
    return made;
  }
  await api("PUT", `/orgs/${org}/limit`, { limit: 6 });
  const exp = (mean) => -Math.log(1 - Math.random()) * mean;
  const live = [];
  const call = async (agent, type, id, holdS, patienceS) => {
    const r = await api("POST", `/orgs/${org}/calls`, { id, agent, type, max_wait_s: patienceS, wait_s: 60 });
    if (r.body.state !== "active") return;
    await sleep(holdS * 1000);
    await api("DELETE", `/orgs/${org}/calls/${id}`);
  };
  await Promise.all([["agent-a", "inbound", 1.0, 3, 8], ["agent-b", "outbound", 0.6, 5, 120]].map(async ([agent, type, perS, holdS, patienceS]) => {
    const end = Date.now() + story * 1000;
    for (let i = 0; Date.now() < end; i++) {
      await sleep(exp(1000 / perS));
      made[type]++;
      live.push(call(agent, type, `${agent}-${i}`, exp(holdS), patienceS));
    }
  }));
  await Promise.all(live);
  return made;
}

test("the Plan view: observed traffic by hour, a recommendation checked by simulation, applied through the API", async () => {
  await api("POST", "/orgs", { id: "plans", limit: 10 });
  const story = Number(process.env.PLAN_STORY_S || 0);
  const calls = await planTraffic("plans", story);
  const p = await page(1280, 1100);
  await p.goto(`${base}/#org=plans&key=${OP}`);
  await p.locator("#plan-link").click();
  await p.locator('#traffic-body tr[data-type="inbound"]').waitFor();
  assert.equal(await p.locator('#traffic-body tr[data-type="inbound"] [data-label="Calls"]').textContent(), String(calls.inbound));
  assert.equal(await p.locator('#traffic-body tr[data-type="outbound"] [data-label="Calls"]').textContent(), String(calls.outbound));
  if (!story) assert.match(await p.locator('#traffic-body tr[data-type="inbound"] [data-label="Service level"]').textContent(), /^100\.0% within 20 s$/);
  assert.ok(await p.locator('#traffic-chart rect[data-type="inbound"]').count() === 24, "an inbound bar per hour");
  await p.getByLabel("Inbound: percent admitted").fill("90");
  await p.getByRole("button", { name: "Plan", exact: true }).click();
  await p.locator("#plan-result:not([hidden]), #plan-error:not(:empty)").first().waitFor({ timeout: 60000 });
  assert.equal(await p.locator("#plan-error").textContent(), "");
  const text = await p.locator("#recommend-text").textContent();
  const [, limit, now] = text.match(/^Limit (\d+) \(now (\d+)\)/).map(Number);
  assert.equal(now, story ? 6 : 10, text);
  assert.ok(limit >= 1 && (story || limit < 10), text);
  assert.match(text, /Inbound: [\d.]+% admitted in time/);
  assert.equal(await p.locator('#level-chart path[data-type="inbound"]').count(), 1);
  assert.equal(await p.locator('#level-chart [data-marker="current"]').count(), 1);
  assert.equal(await p.locator('#level-chart [data-marker="recommended"]').count(), 1);
  await p.screenshot({ path: join(SHOTS, "plan.png"), fullPage: true });
  if (story) return done(p); // the docs' picture: the org keeps its configuration
  await p.getByRole("button", { name: "Apply" }).click();
  await p.locator("#apply-status").filter({ hasText: "Applied" }).waitFor();
  assert.equal((await api("GET", "/orgs/plans")).body.limit, limit, "the operator's apply set the limit");
  await done(p);
});

test("blocked calls: the org view warns how many, why and what would let them in; the queue says blocked (reason)", async () => {
  const org = "blocky";
  assert.equal((await api("POST", "/orgs", { id: org, limit: 4 })).status, 201);
  assert.equal((await api("PUT", `/orgs/${org}/agents/res/reservations`, { inbound: 2 })).status, 200);
  const caps = { webcall: null, chat: 0, outbound: null, inbound: null, total: null };
  assert.equal((await api("PUT", `/orgs/${org}/agents/capped/caps`, caps)).status, 200);

  const p = await page();
  await p.goto(`${base}/#org=${org}&key=${OP}`);
  await p.waitForFunction(() => document.getElementById("stat-limit").textContent === "4");
  assert.equal(await p.locator("#blocked-warning").isVisible(), false, "no warning while nothing is blocked");
  // The caps column: "—" for none, the set caps in words otherwise.
  const row = (agent) => p.locator(`[data-agent-row="${agent}"]`);
  assert.equal((await row("res").locator('[data-label="Caps"]').textContent()).trim(), "—");
  assert.equal((await row("capped").locator('[data-label="Caps"]').textContent()).trim(), "chat 0 at cap");

  // A chat call of an agent whose chat cap is 0 can never be admitted.
  const r = await api("POST", `/orgs/${org}/calls`, { id: "c1", agent: "capped", type: "chat" });
  assert.equal(r.status, 202);
  assert.equal(r.body.blocked, "cap_zero");
  const warning = p.locator("#blocked-warning");
  await warning.filter({ hasText: "1 queued call can never be admitted" }).waitFor();
  assert.match(await warning.locator('[data-reason="cap_zero"]').textContent(), /1 blocked \(cap_zero\).*lift the cap of capped/);
  await p.locator('[data-call="c1"]').filter({ hasText: "blocked (cap_zero)" }).waitFor();

  // Every slot reserved for inbound of res: a chat call of another agent has no shared slot to wait for.
  assert.equal((await api("PUT", `/orgs/${org}/agents/res/reservations`, { inbound: 4 })).status, 200);
  const r2 = await api("POST", `/orgs/${org}/calls`, { id: "c2", agent: "other", type: "chat" });
  assert.equal(r2.body.blocked, "no_shared_capacity");
  await warning.filter({ hasText: "2 queued calls can never be admitted" }).waitFor();
  await warning.locator('[data-reason="no_shared_capacity"]').filter({ hasText: "lower a reservation" }).waitFor();
  assert.match(await warning.locator('[data-reason="no_shared_capacity"]').textContent(), /raise the limit, or reserve chat for other/);
  await p.locator('[data-call="c2"]').filter({ hasText: "blocked (no_shared_capacity)" }).waitFor();

  // Lowering the reservation and lifting the cap lets them in: the warning goes.
  assert.equal((await api("PUT", `/orgs/${org}/agents/res/reservations`, { inbound: 2 })).status, 200);
  assert.equal((await api("PUT", `/orgs/${org}/agents/capped/caps`, { ...caps, chat: null })).status, 200);
  await warning.waitFor({ state: "hidden" });
  await p.waitForFunction(() => document.getElementById("stat-active").textContent === "2");
  await done(p);
});

test("burst past the limit on the bar and in the summary; an agent at its cap is marked", async () => {
  const org = "bursty";
  assert.equal((await api("POST", "/orgs", { id: org, limit: 2 })).status, 201);
  assert.equal((await api("PUT", `/orgs/${org}/agents/a/reservations`, { chat: 1 })).status, 200);
  const p = await page();
  await p.goto(`${base}/#org=${org}&key=${OP}`);
  await p.waitForFunction(() => document.getElementById("stat-limit").textContent === "2");
  // No burst: no burst segment, no burst in the summary.
  assert.equal(await p.locator('[data-segment="burst"]').count(), 0);
  assert.equal(await p.locator("#stat-burst").isVisible(), false);

  assert.equal((await api("PUT", `/orgs/${org}/burst`, { burst: 2 })).status, 200);
  const caps = { webcall: null, chat: null, outbound: null, inbound: null, total: 3 };
  assert.equal((await api("PUT", `/orgs/${org}/agents/a/caps`, caps)).status, 200);
  await p.locator("#stat-burst").filter({ hasText: "burst 2 (0 in use)" }).waitFor();
  const burst = p.locator('[data-segment="burst"]');
  await burst.waitFor();
  assert.equal(await burst.getAttribute("data-slots"), "2");

  // Three chat calls of a: its reserved slot, the shared one, then one past the limit.
  for (const id of ["b1", "b2", "b3"]) {
    assert.equal((await api("POST", `/orgs/${org}/calls`, { id, agent: "a", type: "chat" })).status, 201);
  }
  await p.locator("#stat-burst").filter({ hasText: "burst 2 (1 in use)" }).waitFor();
  await p.waitForFunction(() => document.querySelector('[data-segment="burst"]').dataset.inUse === "1");
  assert.equal((await burst.locator(".txt").textContent()), "burst 1/2");
  assert.match(await p.locator("#bar-caption").textContent(), /^3 in use: 2 of 2 slots and 1 of 2 burst past the limit \(1 reserved, 2 shared\)/);
  assert.doesNotMatch(await p.locator("#bar-caption").textContent(), /over-committed/, "a call in burst is not an over-committed shared pool");
  assert.equal(await shared(p).locator(".txt").textContent(), "shared 1/1");
  // The burst lies past the limit: right of the shared pool, as wide as its slots beside the limit's.
  const sharedBox = await shared(p).boundingBox();
  const burstBox = await burst.boundingBox();
  const barBox = await p.locator("#bar").boundingBox();
  assert.ok(burstBox.x >= sharedBox.x + sharedBox.width - 1, "burst starts where the limit ends");
  assert.ok(Math.abs(burstBox.width - barBox.width / 2) < 4, `burst is 2 of the 4 slots wide (${burstBox.width} of ${barBox.width})`);
  // Half the burst in use: its in-use part is half its width.
  const useBox = await burst.locator(".use").boundingBox();
  assert.ok(Math.abs(useBox.width - burstBox.width / 2) < 4, "1 of 2 burst slots drawn in use");

  // a holds 3 calls, its total cap: its segment and its row say so.
  await p.waitForFunction(() => document.querySelector('[data-agent="a"]').dataset.atCap === "total");
  assert.match(await seg(p, "a").textContent(), /at cap/);
  const capsCell = p.locator('[data-agent-row="a"] [data-label="Caps"]');
  assert.equal((await capsCell.textContent()).trim(), "total 3 at cap");
  // A fourth call queues behind the cap (not blocked: the cap is not 0).
  const r = await api("POST", `/orgs/${org}/calls`, { id: "b4", agent: "a", type: "chat" });
  assert.equal(r.status, 202);
  assert.equal(r.body.blocked, null);
  await p.locator('[data-call="b4"]').waitFor();
  assert.doesNotMatch(await p.locator('[data-call="b4"]').textContent(), /blocked/);
  assert.equal(await p.locator("#blocked-warning").isVisible(), false);
  await p.screenshot({ path: join(SHOTS, "dashboard-burst.png") });
  await done(p);
});

test("an org admin sets an agent's caps from its menu; a cap below its reservation is refused in the server's words", async () => {
  const org = "capset";
  assert.equal((await api("POST", "/orgs", { id: org, limit: 10 })).status, 201);
  const admin = (await api("POST", `/orgs/${org}/keys`, { role: "admin", name: "dash" })).body.key;
  assert.equal((await api("PUT", `/orgs/${org}/agents/a/reservations`, { chat: 2 })).status, 200);
  const p = await page();
  await p.goto(`${base}/#org=${org}&key=${admin}`);
  const capsCell = p.locator('[data-agent-row="a"] [data-label="Caps"]');
  await capsCell.filter({ hasText: "—" }).waitFor();
  const dialog = p.locator("#capper");
  const open = async () => {
    await p.getByRole("button", { name: "Actions for a" }).click();
    await p.getByRole("menuitem", { name: "Edit caps" }).click();
    await dialog.waitFor();
  };

  await open();
  await dialog.getByLabel("Chat cap", { exact: true }).fill("1");
  await dialog.getByRole("button", { name: "Save caps" }).click();
  await p.locator("#capper-error").filter({ hasText: "The lowest allowed is 2." }).waitFor();
  const said = await p.locator("#capper-error").textContent();
  assert.match(said, /^Refused: /);
  const direct = await api("PUT", `/orgs/${org}/agents/a/caps`, { chat: 1 });
  assert.equal(direct.status, 409);
  assert.ok(said.includes(direct.body.error.message), `the server's message is shown: ${said}`);
  assert.equal((await api("GET", `/orgs/${org}/agents/a`)).body.caps.chat, null, "nothing changed");

  await dialog.getByLabel("Chat cap", { exact: true }).fill("3");
  await dialog.getByLabel("Total cap", { exact: true }).fill("5");
  await dialog.getByRole("button", { name: "Save caps" }).click();
  await dialog.waitFor({ state: "hidden" });
  await capsCell.filter({ hasText: "chat 3, total 5" }).waitFor();
  assert.deepEqual((await api("GET", `/orgs/${org}/agents/a`)).body.caps,
    { webcall: null, chat: 3, outbound: null, inbound: null, total: 5 });

  // The form opens with the caps set; an emptied field lifts its cap.
  await open();
  assert.equal(await dialog.getByLabel("Total cap", { exact: true }).inputValue(), "5");
  await dialog.getByLabel("Chat cap", { exact: true }).fill("");
  await dialog.getByRole("button", { name: "Save caps" }).click();
  await dialog.waitFor({ state: "hidden" });
  await capsCell.filter({ hasText: /^total 5$/ }).waitFor();
  await done(p);
});

test("the org's plan beside its limit; the operator moves an org to another plan, a refusal in the server's words", async () => {
  const org = "tiered";
  assert.equal((await api("POST", "/orgs", { id: org, plan: "standard" })).status, 201);
  assert.equal((await api("POST", "/plans", { id: "tiny", limit: 2 })).status, 201);
  assert.equal((await api("PUT", `/orgs/${org}/agents/a/reservations`, { chat: 3 })).status, 200);
  for (const [width, height] of [[1280, 900], [390, 844]]) {
    const p = await page(width, height);
    const now = (await api("GET", `/orgs/${org}`)).body;
    await p.goto(`${base}/#org=${org}&key=${OP}`);
    await p.waitForFunction((n) => document.getElementById("stat-limit").textContent === n, String(now.limit));
    await p.locator("#stat-plan").filter({ hasText: new RegExp(`^plan ${now.plan}$`) }).waitFor();
    const dialog = p.locator("#mover");
    await p.getByRole("button", { name: "Change plan" }).click();
    await dialog.waitFor();
    const select = dialog.getByLabel("Plan", { exact: true });
    assert.equal(await select.inputValue(), now.plan, "the select opens on the org's plan");
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen at ${width}px`);
    const box = await dialog.boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= width, `the dialog fits a ${width}px screen`);

    // Below its reservations: refused, in the server's words, nothing changed.
    await select.selectOption("tiny");
    await dialog.getByRole("button", { name: "Move org" }).click();
    await p.locator("#mover-error").filter({ hasText: "cannot go below the 3 slots reserved" }).waitFor();
    assert.equal((await api("GET", `/orgs/${org}`)).body.plan, now.plan, "nothing changed");

    const target = width === 1280 ? "enterprise" : "standard";
    await select.selectOption(target);
    await dialog.getByRole("button", { name: "Move org" }).click();
    await dialog.waitFor({ state: "hidden" });
    const want = target === "enterprise" ? "100" : "20";
    await p.waitForFunction((n) => document.getElementById("stat-limit").textContent === n, want);
    await p.locator("#stat-plan").filter({ hasText: `plan ${target}` }).waitFor();
    assert.equal((await api("GET", `/orgs/${org}`)).body.plan, target);
    if (width === 1280) await p.screenshot({ path: join(SHOTS, "dashboard-plan.png") });
    await done(p);
  }
  // An own limit is said beside the plan; off plans, nothing is.
  assert.equal((await api("PUT", `/orgs/${org}/limit`, { limit: 25 })).status, 200);
  const p = await page();
  await p.goto(`${base}/#org=${org}&key=${OP}`);
  await p.locator("#stat-plan").filter({ hasText: "plan standard · own limit" }).waitFor();
  await p.getByRole("button", { name: "Change plan" }).click();
  await p.locator("#mover-plan").selectOption("");
  await p.getByRole("button", { name: "Move org" }).click();
  await p.locator("#mover").waitFor({ state: "hidden" });
  await p.waitForFunction(() => document.getElementById("stat-plan").hidden);
  assert.equal((await api("GET", `/orgs/${org}`)).body.plan, null);
  await done(p);
});

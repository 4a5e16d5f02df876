// The dashboard's Usage view (`#org=ORG&view=usage`, assets/usage.js) in
// headless Chromium against the real slotgate binary, at 1280 and 390 px.
//
// Run by scripts/test.sh next to dashboard.test.mjs, with the same setup
// (harness.mjs: SLOTGATE_BIN, or SLOTGATE_URL and SLOTGATE_OPERATOR_KEY):
// `node --test usage.test.mjs`.

import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { SHOTS, base, useServer, api, page, done } from "./harness.mjs";

useServer("slotgate-usage-");

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

/**
 * The provider's side played by the test: webhooks posted to the app, which
 * talks to the real slotgate (SLOTGATE_BIN, default the workspace's debug
 * build) started with a queue cap of 2.
 */

import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { Client } from "slotgate";
import { type SlotgateServer, startServer } from "slotgate/testing";

import { type App, createApp } from "../src/app.js";

const here = dirname(fileURLToPath(import.meta.url));
const BIN = process.env.SLOTGATE_BIN ?? join(here, "../../../../../../target/debug/slotgate");
const T = { timeout: 60_000 };

describe("phone webhooks", () => {
  let slotgate: SlotgateServer;
  let app: App;
  let base: string;
  let admin: Client;
  const org = "acme";

  before(async () => {
    slotgate = await startServer({ bin: BIN, args: ["--queue-cap", "2"] });
    admin = new Client({ url: slotgate.url, key: slotgate.operatorKey });
    await admin.createOrg({ id: org, limit: 1 });
    const runtime = await admin.createKey(org, { role: "runtime", name: "webhooks" });
    app = createApp({
      slotgateUrl: slotgate.url,
      slotgateKey: runtime.key,
      mediaUrl: "wss://media.test/stream",
      holdMusicUrl: "https://media.test/hold.mp3",
      maxWaitS: 120,
      holdPollS: 2,
      leaseTtlS: 30,
    });
    await new Promise<void>((resolve) => app.server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${String((app.server.address() as AddressInfo).port)}`;
  });
  after(async () => {
    await app.close();
    await slotgate.stop();
  });

  /** The provider posting a webhook; the markup it gets back. */
  async function post(path: string, fields: Record<string, string>): Promise<{ status: number; xml: string }> {
    const res = await fetch(base + path, {
      method: "POST",
      body: new URLSearchParams(fields),
      signal: AbortSignal.timeout(30_000),
    });
    return { status: res.status, xml: await res.text() };
  }

  test("connect, hold with the position, connect after the hand-over, refuse when full", T, async () => {
    const first = await post(`/voice/${org}/agent-a/incoming`, { CallSid: "CA1" });
    assert.equal(first.status, 200);
    assert.match(first.xml, /<Connect><Stream url="wss:\/\/media\.test\/stream\?org=acme&amp;agent=agent-a&amp;call=CA1"\/><\/Connect>/);
    assert.ok(app.keepAlive.calls.has(`${org}/CA1`), "a connected call is heartbeated");

    const second = await post(`/voice/${org}/agent-a/incoming`, { CallSid: "CA2" });
    assert.match(second.xml, /You are number 1 in line\./);
    assert.match(second.xml, /<Play>https:\/\/media\.test\/hold\.mp3<\/Play><Redirect method="POST">\/voice\/acme\/wait<\/Redirect>/);
    // The provider retries the webhook: the same call, not a second place in line.
    assert.match((await post(`/voice/${org}/agent-a/incoming`, { CallSid: "CA2" })).xml, /number 1 in line/);
    const third = await post(`/voice/${org}/agent-b/incoming`, { CallSid: "CA3" });
    assert.match(third.xml, /number 2 in line/);
    // The queue is at its cap (2): the next caller is turned away politely.
    const fourth = await post(`/voice/${org}/agent-b/incoming`, { CallSid: "CA4" });
    assert.match(fourth.xml, /too many calls right now.*<Hangup\/>/);
    assert.equal((await admin.getOrg(org)).queued, 2);

    // Still on hold after a wait of HOLD_POLL_S.
    assert.match((await post(`/voice/${org}/wait`, { CallSid: "CA2" })).xml, /number 1 in line.*<Redirect/);

    // CA1 hangs up while CA2's wait is open: CA2 is connected at once.
    const waiting = post(`/voice/${org}/wait`, { CallSid: "CA2" });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await post(`/voice/${org}/status`, { CallSid: "CA1", CallStatus: "completed" })).status, 204);
    assert.match((await waiting).xml, /<Connect><Stream url="[^"]*call=CA2"/);
    assert.equal((await admin.getCall(org, "CA1")).end_reason, "released");

    // CA3 hangs up on hold: its queued call is cancelled, not left to time out.
    await post(`/voice/${org}/status`, { CallSid: "CA3", CallStatus: "canceled" });
    assert.equal((await admin.getCall(org, "CA3")).end_reason, "cancelled");
    // A status callback retried is harmless.
    assert.equal((await post(`/voice/${org}/status`, { CallSid: "CA3", CallStatus: "canceled" })).status, 204);
    await post(`/voice/${org}/status`, { CallSid: "CA2", CallStatus: "completed" });
    assert.equal((await admin.getOrg(org)).active, 0);
    assert.equal(app.keepAlive.calls.size, 0);
  });

  test("a caller whose max_wait passes hears an apology and is hung up on", T, async () => {
    const holder = await post(`/voice/${org}/agent-a/incoming`, { CallSid: "CB1" });
    assert.match(holder.xml, /<Connect>/);
    const waiter = await post(`/voice/${org}/agent-a/incoming?max_wait=1`, { CallSid: "CB2" });
    assert.match(waiter.xml, /in line/);
    await new Promise((r) => setTimeout(r, 1500));
    const answer = await post(`/voice/${org}/wait`, { CallSid: "CB2" });
    assert.match(answer.xml, /sorry to keep you waiting.*<Hangup\/>/);
    assert.equal((await admin.getCall(org, "CB2")).end_reason, "timed_out");
    await post(`/voice/${org}/status`, { CallSid: "CB1", CallStatus: "completed" });
  });

  test("a webhook without CallSid is a 400 naming it", T, async () => {
    const bad = await post(`/voice/${org}/agent-a/incoming`, {});
    assert.deepEqual(bad, { status: 400, xml: "CallSid is missing" });
  });
});

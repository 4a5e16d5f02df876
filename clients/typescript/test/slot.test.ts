/** `client.slot()` and `client.withSlot()` against the real server. */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { ApiError, type Call, type Client, EndedWhileQueued, QueueTimeout, type Slot, SlotLost } from "../src/index.js";
import type { SlotgateServer } from "../src/testing.js";
import { clientOf, eventually, newOrg, pendingAfter, serve } from "./support/server.js";

const T = { timeout: 60_000 };

describe("holding a slot", () => {
  let server: SlotgateServer;
  let client: Client;
  before(async () => {
    server = await serve();
    client = clientOf(server);
  });
  after(() => server.stop());

  test("await using takes a slot and releases it at the end of the block", T, async () => {
    const org = newOrg();
    await client.createOrg({ id: org, limit: 2 });
    let id: string;
    {
      await using slot = await client.slot({ org, agent: "a", type: "webcall" });
      id = slot.id;
      assert.equal(slot.call.state, "active");
      assert.equal(slot.kind, "shared");
      assert.equal((await client.getOrg(org)).active, 1);
    }
    const ended = await client.getCall(org, id);
    assert.equal(ended.state, "ended");
    assert.equal(ended.end_reason, "released");
  });

  test("withSlot returns what the work returns, and releases when it throws", T, async () => {
    const org = newOrg();
    await client.createOrg({ id: org, limit: 1 });
    const seen = await client.withSlot({ org, agent: "a", type: "chat" }, (slot) => slot.id);
    assert.equal((await client.getCall(org, seen)).end_reason, "released");
    let inside = "";
    await assert.rejects(
      client.withSlot({ org, agent: "a", type: "chat" }, (slot) => {
        inside = slot.id;
        throw new Error("the conversation failed");
      }),
      /the conversation failed/,
    );
    assert.equal((await client.getCall(org, inside)).end_reason, "released");
    assert.equal((await client.getOrg(org)).active, 0);
  });

  test("a queued slot reports its positions and is admitted when a slot frees", T, async () => {
    const org = newOrg();
    await client.createOrg({ id: org, limit: 1 });
    const holder = await client.slot({ org, agent: "a", type: "inbound" });
    const first: number[] = [];
    const second: number[] = [];
    const one = client.slot({ org, agent: "b", type: "inbound", onPosition: (p) => first.push(p) });
    await eventually("the first waiter is queued", () => first.length > 0);
    const two = client.slot({ org, agent: "c", type: "inbound", onPosition: (p) => second.push(p) });
    await eventually("the second waiter is queued", () => second.length > 0);
    assert.deepEqual([first, second], [[1], [2]]);
    assert.ok(await pendingAfter(one, 300), "a queued slot waits");

    await holder.release();
    const a = await one;
    assert.equal(a.call.state, "active");
    // The second moved up as the first left the queue, seen through the event stream.
    await eventually("the second waiter is told it is next", () => second.includes(1));
    assert.deepEqual(second, [2, 1]);
    await a.release();
    const b = await two;
    assert.equal(b.call.agent, "c");
    await b.release();
  });

  test("maxWait passing rejects with QueueTimeout and ends the call timed_out", T, async () => {
    const org = newOrg();
    await client.createOrg({ id: org, limit: 0 });
    const err = await client.slot({ org, agent: "a", type: "webcall", maxWait: 1 }).then(
      () => assert.fail("no slot can be had"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof QueueTimeout, String(err));
    assert.equal(err.call.end_reason, "timed_out");
    assert.equal((await client.getCall(org, err.call.id)).state, "ended");
  });

  test("an AbortSignal cancels the queued call on the server", T, async () => {
    const org = newOrg();
    await client.createOrg({ id: org, limit: 0 });
    const controller = new AbortController();
    let call: Call | undefined;
    const waiting = client.slot({
      org,
      agent: "a",
      type: "outbound",
      signal: controller.signal,
      onPosition: (_, c) => (call = c),
    });
    await eventually("the call is queued", () => call !== undefined);
    assert.ok(await pendingAfter(waiting, 200));
    controller.abort();
    await assert.rejects(waiting, { name: "AbortError" });
    const ended = await client.getCall(org, call?.id ?? "");
    assert.equal(ended.state, "ended");
    assert.equal(ended.end_reason, "cancelled");
    assert.equal((await client.getOrg(org)).queued, 0);
  });

  test("an already aborted signal sends nothing", T, async () => {
    const org = newOrg();
    await client.createOrg({ id: org, limit: 1 });
    await assert.rejects(
      client.slot({ org, agent: "a", type: "chat", signal: AbortSignal.abort() }),
      { name: "AbortError" },
    );
    assert.equal((await client.listCalls(org)).items.length, 0);
  });

  test("a slot ended by someone else is lost: lost resolves and signal aborts", T, async () => {
    const org = newOrg();
    await client.createOrg({ id: org, limit: 1 });
    const slot: Slot = await client.slot({ org, agent: "a", type: "chat", heartbeatEvery: 0.2 });
    assert.equal(slot.isLost, false);
    // An operator ends the call (as a lease running out would).
    await client.release(org, slot.id);
    const lost = await slot.lost;
    assert.equal(lost?.end_reason, "released");
    assert.equal(slot.isLost, true);
    assert.ok(slot.signal.aborted);
    assert.ok(slot.signal.reason instanceof SlotLost);
    // Releasing a lost slot is harmless.
    assert.equal((await slot.release()).state, "ended");
  });

  test("a lease that runs out between heartbeats is lost with the call ended expired", T, async () => {
    const org = newOrg();
    await client.createOrg({ id: org, limit: 1 });
    // Heartbeats every 7 s renew a 5 s lease too late (a process stalled that long).
    const slot = await client.slot({ org, agent: "a", type: "webcall", leaseTtl: 5, heartbeatEvery: 7 });
    const lost = await slot.lost;
    assert.equal(lost?.end_reason, "expired");
    assert.equal(slot.call.state, "ended");
    // The freed slot is anyone's.
    await client.withSlot({ org, agent: "b", type: "webcall" }, (other) => {
      assert.equal(other.call.state, "active");
    });
  });

  test("a call that ends in the queue for another reason rejects with EndedWhileQueued", T, async () => {
    const org = newOrg();
    await client.createOrg({ id: org, limit: 0 });
    let id = "";
    const waiting = client.slot({ org, agent: "a", type: "chat", onPosition: (_, c) => (id = c.id) });
    await eventually("queued", () => id !== "");
    await client.release(org, id);
    const err: unknown = await waiting.catch((e: unknown) => e);
    assert.ok(err instanceof EndedWhileQueued, String(err));
    assert.equal(err.call.end_reason, "cancelled");
  });

  test("a refusal is an ApiError with the API's code, and the conflicting call is left alone", T, async () => {
    const org = newOrg();
    await client.createOrg({ id: org, limit: 1 });
    await client.acquire(org, { id: "taken", agent: "a", type: "chat" });
    const err: unknown = await client.slot({ org, id: "taken", agent: "b", type: "chat" }).catch((e: unknown) => e);
    assert.ok(err instanceof ApiError, String(err));
    assert.deepEqual([err.status, err.code], [409, "call_id_conflict"]);
    assert.equal((await client.getCall(org, "taken")).state, "active");
  });
});

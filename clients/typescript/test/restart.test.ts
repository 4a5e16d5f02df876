/**
 * The server killed (-9) and started again on the same data directory while
 * calls wait and hold slots: the client rides through it.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { Client } from "../src/index.js";
import { clientOf, eventually, newOrg, pendingAfter, serve } from "./support/server.js";

test("a queued slot keeps waiting through a restart and a held one is not declared lost", { timeout: 90_000 }, async () => {
  await using server = await serve();
  const client = clientOf(server);
  const org = newOrg();
  await client.createOrg({ id: org, limit: 1 });
  // The shortest lease: the server stays down longer than it.
  const holder = await client.slot({ org, agent: "a", type: "inbound", leaseTtl: 5, heartbeatEvery: 1 });
  let position = 0;
  const waiter = client.slot({ org, agent: "b", type: "inbound", leaseTtl: 5, onPosition: (p) => (position = p) });
  await eventually("the second call is queued", () => position === 1);
  const beatsBefore = holder.heartbeats;

  await server.kill9();
  await new Promise((r) => setTimeout(r, 6000));
  await server.restart();

  // The restarted server restored both calls with a grace lease: the holder's
  // heartbeats reach it again and it asks before declaring anything lost.
  await eventually("the holder heartbeats the restarted server", () => holder.heartbeats > beatsBefore, 15_000);
  assert.equal(holder.isLost, false);
  assert.ok(await pendingAfter(waiter, 500), "the waiter still waits");
  const queued = await client.getCall(org, (await client.listCalls(org, { state: "queued" })).items[0]?.id ?? "");
  assert.equal(queued.agent, "b");

  await holder.release();
  const slot = await waiter;
  assert.equal(slot.call.state, "active");
  assert.equal(slot.id, queued.id);
  await slot.release();
});

test("acquire and release are retried by call id through connection errors", { timeout: 60_000 }, async () => {
  await using server = await serve();
  const org = newOrg();
  const client = new Client({
    url: server.url,
    key: server.operatorKey,
    retry: { attempts: 40, backoffMs: 100, maxBackoffMs: 300 },
  });
  await client.createOrg({ id: org, limit: 2 });

  await server.kill9();
  const acquiring = client.slot({ org, agent: "a", type: "webcall" });
  await new Promise((r) => setTimeout(r, 1000));
  await server.restart();
  const slot = await acquiring;
  assert.equal(slot.call.state, "active");
  // One call, however many attempts it took.
  assert.equal((await client.listCalls(org)).items.length, 1);

  await server.kill9();
  const releasing = slot.release();
  await new Promise((r) => setTimeout(r, 1000));
  await server.restart();
  assert.equal((await releasing).end_reason, "released");
  assert.equal((await client.getOrg(org)).active, 0);
});

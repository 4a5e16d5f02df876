/**
 * Two replicas (`slotgate serve --store postgres://...`) on one PostgreSQL
 * cluster the test starts itself: a slot queued through one replica is
 * admitted when a slot is released through the other, the event stream of
 * one sees changes made through the other, and a slot held through the
 * follower survives the leader's death (kill -9).
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import type { Event } from "../src/index.js";
import { PgCluster, postgresBinDir } from "./support/postgres.js";
import { clientOf, eventually, newOrg, pendingAfter, serve } from "./support/server.js";

const pgBin = postgresBinDir();

test("two replicas on one database answer as one server", { timeout: 150_000 }, async (t) => {
  if (pgBin === undefined) {
    t.skip("PostgreSQL is not installed (no initdb on PATH nor in /usr/lib/postgresql/*/bin): apt-get install postgresql");
    return;
  }
  const pg = await PgCluster.start(pgBin);
  t.after(() => pg.stop());
  const store = ["--store", pg.url];
  // Every replica shares one secret, which the leader proves it holds before the follower forwards to it.
  const env = { SLOTGATE_REPLICA_SECRET: "typescript-test-replica-secret-0123456789abcdef" };
  // The first to start finds the lead free and takes it.
  const leader = await serve({ args: store, env });
  t.after(() => leader.stop());
  const follower = await serve({ args: store, env, operatorKey: leader.operatorKey });
  t.after(() => follower.stop());
  const viaLeader = clientOf(leader);
  const viaFollower = clientOf(follower, { retry: { attempts: 60, backoffMs: 100, maxBackoffMs: 500 } });

  const org = newOrg();
  await viaFollower.createOrg({ id: org, limit: 1 });
  assert.equal((await viaLeader.getOrg(org)).limit, 1);

  // The follower's stream sees what is done through the leader.
  const stop = new AbortController();
  const seen: Event[] = [];
  let open = false;
  const streaming = (async () => {
    for await (const e of viaFollower.streamEvents(org, { signal: stop.signal, onOpen: () => (open = true) })) {
      seen.push(e);
    }
  })();
  await eventually("the follower's stream is open", () => open);

  const holder = await viaLeader.slot({ org, agent: "a", type: "inbound", leaseTtl: 10 });
  const positions: number[] = [];
  const waiting = viaFollower.slot({ org, agent: "b", type: "inbound", leaseTtl: 10, onPosition: (p) => positions.push(p) });
  await eventually("queued through the follower", () => positions.length > 0);
  assert.deepEqual(positions, [1]);
  assert.ok(await pendingAfter(waiting, 300));
  await holder.release();
  const slot = await waiting;
  assert.equal(slot.call.state, "active");
  await eventually("the follower's stream saw the hand-over", () =>
    seen.some((e) => e.type === "call.admitted" && e.call === slot.id),
  );
  assert.deepEqual(
    seen.filter((e) => e.type !== "org.created").map((e) => e.type),
    ["call.admitted", "call.queued", "call.ended", "call.admitted"],
  );
  stop.abort();
  await streaming;

  // The leader dies; the follower takes the lead, and the slot held through
  // it is still held: its heartbeats ride through the 503s of the hand-over.
  const beats = slot.heartbeats;
  await leader.kill9();
  // An acquire through the follower meanwhile is retried through its 503s
  // until the follower leads, and queues behind the slot.
  const late = await viaFollower.acquire(org, { agent: "c", type: "chat" });
  assert.deepEqual([late.status, late.call.state], [202, "queued"]);
  await slot.heartbeat().catch(() => undefined);
  await eventually("a heartbeat through the new leader", () => slot.heartbeats > beats + 1, 30_000);
  assert.equal(slot.isLost, false);
  assert.equal((await viaFollower.getCall(org, slot.id)).state, "active");
  assert.equal((await slot.release()).end_reason, "released");
  assert.equal((await viaFollower.getCall(org, late.call.id)).state, "active");
  await viaFollower.release(org, late.call.id);
  assert.equal((await viaFollower.getOrg(org)).active, 0);
});

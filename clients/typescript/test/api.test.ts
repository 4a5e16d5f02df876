/** The plain API, one method per endpoint, against the real server. */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { ApiError, CallBlocked, CallEnded, Client, type Event } from "../src/index.js";
import type { SlotgateServer } from "../src/testing.js";
import { clientOf, newOrg, pendingAfter, serve } from "./support/server.js";

const T = { timeout: 60_000 };

/** The first `n` events of an iterator, then stops it. */
async function take(events: AsyncIterable<Event>, n: number): Promise<Event[]> {
  const out: Event[] = [];
  if (n === 0) return out;
  for await (const e of events) {
    out.push(e);
    if (out.length === n) break;
  }
  return out;
}

describe("the plain API", () => {
  let server: SlotgateServer;
  let client: Client;
  before(async () => {
    server = await serve();
    client = clientOf(server);
  });
  after(() => server.stop());

  test("health, metrics and the OpenAPI document", T, async () => {
    assert.equal(await client.health(), true);
    assert.match(await client.metrics(), /^# (HELP|TYPE) slotgate_/m);
    const doc = await client.openapi();
    assert.ok(typeof doc.openapi === "string" && doc.openapi.startsWith("3."));
  });

  test("orgs, limits and reservations, with refusals as ApiError", T, async () => {
    const org = newOrg();
    const made = await client.createOrg({ id: org, limit: 5 });
    assert.deepEqual([made.id, made.limit, made.shared], [org, 5, 5]);
    const dup: unknown = await client.createOrg({ id: org, limit: 1 }).catch((e: unknown) => e);
    assert.ok(dup instanceof ApiError);
    assert.deepEqual([dup.status, dup.code], [409, "org_exists"]);

    const agent = await client.setReservations(org, "a", { inbound: 2, chat: 1 });
    assert.deepEqual([agent.reserved.inbound, agent.reserved.chat, agent.reserved_total], [2, 1, 3]);
    const over: unknown = await client.setReservations(org, "b", { webcall: 3 }).catch((e: unknown) => e);
    assert.ok(over instanceof ApiError);
    assert.equal(over.code, "reservations_exceed_limit");
    assert.equal(over.error.available, 2);

    const below: unknown = await client.setLimit(org, 2).catch((e: unknown) => e);
    assert.ok(below instanceof ApiError);
    assert.deepEqual([below.code, below.error.reserved], ["limit_below_reservations", 3]);
    assert.equal((await client.setLimit(org, 8)).shared, 5);

    assert.equal((await client.getAgent(org, "a")).reserved_total, 3);
    assert.equal((await client.removeReservations(org, "a")).reserved_total, 0);
    assert.equal((await client.getOrg(org)).shared, 8);
    const bad: unknown = await client.setLimit(org, -1).catch((e: unknown) => e);
    assert.ok(bad instanceof ApiError);
    assert.deepEqual([bad.status, bad.code], [400, "invalid_request"]);

    const ids: string[] = [];
    for (let cursor: string | undefined, pages = 0; pages < 1000; pages++) {
      const page = await client.listOrgs({ limit: 1, cursor });
      ids.push(...page.items.map((o) => o.id));
      if (page.nextCursor === null) break;
      cursor = page.nextCursor;
    }
    assert.ok(ids.includes(org));
  });

  test("caps, burst and blocked calls", T, async () => {
    const org = newOrg();
    await client.createOrg({ id: org, limit: 2 });
    await client.setReservations(org, "a", { chat: 2 });
    const below: unknown = await client.setCaps(org, "a", { chat: 1 }).catch((e: unknown) => e);
    assert.ok(below instanceof ApiError);
    assert.deepEqual([below.status, below.code, below.error.reserved], [409, "cap_below_reservation", 2]);
    const capped = await client.setCaps(org, "a", { chat: 3, total: 3 });
    assert.deepEqual([capped.caps?.chat, capped.caps?.total, capped.caps?.webcall], [3, 3, null]);
    assert.equal((await client.setBurst(org, 1)).burst, 1);

    for (const id of ["a0", "a1", "a2"]) await client.acquire(org, { id, agent: "a", type: "chat" });
    const org1 = await client.getOrg(org);
    assert.deepEqual([org1.active, org1.burst_in_use], [3, 1]);
    assert.equal((await client.getCall(org, "a2")).slot, "burst");

    const refused: unknown = await client
      .acquire(org, { agent: "y", type: "chat", if_blocked: "refuse" })
      .catch((e: unknown) => e);
    assert.ok(refused instanceof CallBlocked);
    assert.deepEqual([refused.code, refused.error.blocked], ["call_blocked", "no_shared_capacity"]);
    const queued = await client.acquire(org, { id: "y1", agent: "y", type: "chat" });
    assert.deepEqual([queued.status, queued.call.blocked], [202, "no_shared_capacity"]);
    assert.equal((await client.getOrg(org)).blocked, 1);
  });

  test("usage by hour: admitted, waited and gave up, by hour and by day", T, async () => {
    const org = newOrg();
    await client.createOrg({ id: org, limit: 1 });
    await client.acquire(org, { id: "u1", agent: "a", type: "chat" });
    assert.equal((await client.acquire(org, { id: "u2", agent: "a", type: "inbound" })).status, 202);
    assert.equal((await client.acquire(org, { id: "u3", agent: "a", type: "chat" })).status, 202);
    await client.release(org, "u3");
    await client.release(org, "u1");
    const usage = await client.usage(org);
    assert.deepEqual([usage.org, usage.step, usage.steps.length], [org, "1h", 24]);
    // Summed: the test may run across the end of an hour.
    const sum = (f: (s: (typeof usage.steps)[number]) => number) => usage.steps.reduce((n, s) => n + f(s), 0);
    assert.deepEqual(
      [sum((s) => s.overall.admitted), sum((s) => s.overall.waited), sum((s) => s.overall.gave_up)],
      [2, 1, 1],
    );
    assert.equal(sum((s) => s.types.inbound.waited), 1);
    const days = await client.usage(org, { step: "1d" });
    assert.deepEqual([days.step, days.steps.length], ["1d", 7]);
    const bad: unknown = await client
      .usage(org, { from: "2026-11-02T00:00:00Z", to: "2026-11-01T00:00:00Z" })
      .catch((e: unknown) => e);
    assert.ok(bad instanceof ApiError && bad.status === 400 && bad.message.includes("to"));
  });

  test("plans: an org on one, its own limit, case 19 refused whole", T, async () => {
    const plans = await client.listPlans();
    assert.deepEqual(
      plans.filter((p) => p.id === "standard" || p.id === "enterprise").map((p) => [p.id, p.limit, p.burst]),
      [["enterprise", 100, 20], ["standard", 20, 0]],
    );
    const tier = `tier-${newOrg()}`;
    assert.equal((await client.createPlan({ id: tier, limit: 20 })).burst, 0);
    const x = newOrg();
    const created = await client.createOrg({ id: x, plan: tier });
    assert.deepEqual([created.plan, created.limit, created.limit_source], [tier, 20, "plan"]);
    await client.setReservations(x, "a", { chat: 18 });
    const refused: unknown = await client.updatePlan(tier, { limit: 15 }).catch((e: unknown) => e);
    assert.ok(refused instanceof ApiError);
    assert.deepEqual([refused.status, refused.code, refused.error.orgs, refused.error.count], [409, "plan_below_reservations", [x], 1]);
    assert.equal((await client.getOrg(x)).limit, 20);
    assert.equal((await client.updatePlan(tier, { limit: 19 })).orgs, 1);
    assert.equal((await client.getOrg(x)).limit, 19);
    const own = await client.setLimit(x, 30);
    assert.deepEqual([own.limit, own.limit_source], [30, "org"]);
    assert.equal((await client.setLimit(x, null)).limit, 19);
    const moved = await client.setOrgPlan(x, "enterprise");
    assert.deepEqual([moved.plan, moved.limit, moved.burst], ["enterprise", 100, 20]);
    await client.deletePlan(tier);
    const gone: unknown = await client.getPlan(tier).catch((e: unknown) => e);
    assert.ok(gone instanceof ApiError);
    assert.equal(gone.code, "plan_not_found");
  });

  test("calls: acquire (201, 202, 200 on retry), wait, heartbeat, release, list", T, async () => {
    const org = newOrg();
    await client.createOrg({ id: org, limit: 1 });
    const first = await client.acquire(org, { id: "c1", agent: "a", type: "inbound" });
    assert.deepEqual([first.status, first.call.state], [201, "active"]);
    const second = await client.acquire(org, { agent: "b", type: "chat" });
    assert.deepEqual([second.status, second.call.state, second.call.position], [202, "queued", 1]);
    assert.match(second.call.id, /^call_[0-9a-f]{24}$/);
    const again = await client.acquire(org, { id: "c1", agent: "a", type: "inbound" });
    assert.deepEqual([again.status, again.call.state], [200, "active"]);

    const queued = await client.listCalls(org, { state: "queued" });
    assert.deepEqual(queued.items.map((c) => c.id), [second.call.id]);
    assert.equal((await client.heartbeat(org, "c1", { leaseTtlS: 30 })).lease_ttl_s, 30);

    // A long-poll on the queued call returns when it is admitted.
    const waiting = client.getCall(org, second.call.id, { waitS: 20 });
    assert.ok(await pendingAfter(waiting, 300));
    assert.equal((await client.release(org, "c1")).end_reason, "released");
    assert.equal((await waiting).state, "active");

    const ended: unknown = await client.heartbeat(org, "c1").catch((e: unknown) => e);
    assert.ok(ended instanceof CallEnded, String(ended));
    assert.deepEqual([ended.status, ended.call?.end_reason], [410, "released"]);
    const unknown: unknown = await client.getCall(org, "nope").catch((e: unknown) => e);
    assert.ok(unknown instanceof ApiError);
    assert.deepEqual([unknown.status, unknown.code], [404, "call_not_found"]);
    await client.release(org, second.call.id);
  });

  test("keys: an org key works for its org until revoked", T, async () => {
    const org = newOrg();
    await client.createOrg({ id: org, limit: 1 });
    const made = await client.createKey(org, { role: "runtime", name: "worker" });
    const worker = new Client({ url: server.url, key: made.key });
    assert.equal((await worker.getOrg(org)).id, org);
    const forbidden: unknown = await worker.setLimit(org, 3).catch((e: unknown) => e);
    assert.ok(forbidden instanceof ApiError);
    assert.equal(forbidden.status, 403);
    const keys = await client.listKeys(org);
    assert.deepEqual(keys.items.map((k) => [k.id, k.name, k.role]), [[made.id, "worker", "runtime"]]);
    await client.revokeKey(org, made.id);
    await client.revokeKey(org, made.id).catch((e: unknown) => {
      assert.ok(e instanceof ApiError && e.code === "key_not_found");
    });
    const revoked: unknown = await worker.getOrg(org).catch((e: unknown) => e);
    assert.ok(revoked instanceof ApiError);
    assert.equal(revoked.status, 401);
  });

  test("events: pages, the long-poll, and the stream resumed with Last-Event-ID", T, async () => {
    const org = newOrg();
    await client.createOrg({ id: org, limit: 1 });
    await client.acquire(org, { id: "e1", agent: "a", type: "chat" });
    await client.acquire(org, { id: "e2", agent: "a", type: "chat" });
    const page = await client.events(org);
    assert.deepEqual(page.events.map((e) => e.type), ["org.created", "call.admitted", "call.queued"]);

    // The long-poll waits for the next event.
    const next = client.events(org, { after: page.next, waitS: 20 });
    assert.ok(await pendingAfter(next, 300));
    await client.release(org, "e1");
    const woke = await next;
    assert.deepEqual(woke.events.map((e) => e.type), ["call.ended", "call.admitted"]);

    // The stream from the start, stopped after two events ...
    const stop = new AbortController();
    const firstTwo = await take(client.streamEvents(org, { after: 0, signal: stop.signal }), 2);
    stop.abort();
    assert.deepEqual(firstTwo.map((e) => e.seq), [1, 2]);
    // ... resumes after the last one seen: nothing missed, nothing twice.
    const rest = client.streamEvents(org, { after: firstTwo[1]?.seq ?? 0 });
    const resumed = await take(rest, 3);
    assert.deepEqual(resumed.map((e) => e.seq), [3, 4, 5]);
    const last = resumed[2];
    assert.ok(last?.type === "call.admitted" && last.call === "e2");

    // follow_events: the long-polls, endless until aborted.
    const following = new AbortController();
    const followed = await take(client.followEvents(org, { after: 3, signal: following.signal }), 2);
    following.abort();
    assert.deepEqual(followed.map((e) => e.seq), [4, 5]);
  });

  test("the stream reconnects through a server restart, resuming after the last event", { timeout: 90_000 }, async () => {
    await using own = await serve();
    const admin = clientOf(own, { retry: { attempts: 40, backoffMs: 100, maxBackoffMs: 300 } });
    const org = newOrg();
    await admin.createOrg({ id: org, limit: 1 });
    const stop = new AbortController();
    const events = admin.streamEvents(org, { after: 0, signal: stop.signal })[Symbol.asyncIterator]();
    assert.equal((await events.next()).value?.type, "org.created");
    await own.kill9();
    await own.restart();
    await admin.acquire(org, { id: "after-restart", agent: "a", type: "chat" });
    const next = await events.next();
    assert.ok(next.value?.type === "call.admitted" && next.value.call === "after-restart");
    assert.equal(next.value.seq, 2);
    stop.abort();
    assert.equal((await events.next()).done, true);
  });
});

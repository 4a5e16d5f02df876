"""Every endpoint of API.md and its error codes, through the asyncio client,
against the real server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import AsyncIterator, Iterator, List

import pytest
from slotgate_server import MakeOrg, Server, new_id

import slotgate
from slotgate import (
    AsyncClient,
    CallState,
    CallType,
    EndReason,
    KeyRole,
    Slot,
)


async def test_health_metrics_and_openapi(client: AsyncClient, make_org: MakeOrg) -> None:
    org = make_org(3)
    await client.acquire(org, agent="a", type="chat")
    assert await client.health() is True
    text = await client.metrics()
    assert org in text  # per-org gauges name the org
    doc = await client.openapi()
    assert doc["openapi"].startswith("3")
    for path in (
        "/v1/orgs",
        "/v1/orgs/{org}",
        "/v1/orgs/{org}/limit",
        "/v1/orgs/{org}/agents/{agent}/reservations",
        "/v1/orgs/{org}/calls",
        "/v1/orgs/{org}/calls/{id}",
        "/v1/orgs/{org}/calls/{id}/heartbeat",
        "/v1/orgs/{org}/keys",
        "/v1/orgs/{org}/keys/{id}",
        "/v1/orgs/{org}/events",
        "/v1/orgs/{org}/events/stream",
    ):
        assert path in doc["paths"], path


async def test_create_get_and_list_orgs(client: AsyncClient) -> None:
    ids = sorted(new_id("list") for _ in range(3))
    for i in ids:
        created = await client.create_org(i, 7)
        assert (created.id, created.limit, created.reserved, created.shared) == (i, 7, 0, 7)
        assert (created.active, created.queued, created.shared_in_use, created.agents) == (
            0,
            0,
            0,
            [],
        )
    with pytest.raises(slotgate.OrgExists) as e:
        await client.create_org(ids[0], 3)
    assert (e.value.status, e.value.code) == (409, "org_exists")

    got = await client.get_org(ids[1])
    assert got.id == ids[1] and got.limit == 7

    # One page at a time, then all of them through the iterator, a page of 1 at a time.
    first = await client.orgs_page(limit=1)
    assert len(first.items) == 1 and first.next_cursor is not None
    seen = [o.id async for o in client.list_orgs(limit=1)]
    assert len(seen) == len(set(seen))
    assert set(ids) <= set(seen)
    everything = [o.id async for o in client.list_orgs()]
    assert everything == seen
    last = await client.orgs_page(limit=10000)
    assert last.next_cursor is None and [o.id for o in last.items] == seen

    with pytest.raises(slotgate.OrgNotFound) as nf:
        await client.get_org(new_id("nobody"))
    assert (nf.value.status, nf.value.code) == (404, "org_not_found")


async def test_invalid_requests_name_the_field(client: AsyncClient, make_org: MakeOrg) -> None:
    with pytest.raises(slotgate.InvalidRequest) as e:
        await client.create_org("not a valid id!", 3)
    assert e.value.status == 400 and e.value.code == "invalid_request"
    assert "id" in e.value.message
    org = make_org(3)
    with pytest.raises(slotgate.InvalidRequest) as e:
        await client.acquire(org, agent="a", type="chat", lease_ttl=1)
    assert "lease_ttl_s" in e.value.message
    with pytest.raises(slotgate.InvalidRequest) as e:
        await client.acquire(org, agent="a", type="chat", wait=61)
    assert "wait_s" in e.value.message
    with pytest.raises(slotgate.InvalidRequest) as e:
        await client.set_limit(org, 1_000_001)
    assert "limit" in e.value.message
    with pytest.raises(slotgate.InvalidRequest) as e:
        await client.calls_page(org, limit=0)
    assert "limit" in e.value.message
    with pytest.raises(ValueError):
        await client.acquire(org, agent="a", type="fax")  # not a CallType: refused before sending


async def test_limits_and_reservations(client: AsyncClient, make_org: MakeOrg) -> None:
    org = make_org(10)
    a = await client.set_reservations(org, "agent-a", webcall=2, chat=1, outbound=2, inbound=1)
    assert a.reserved == slotgate.PerType(2, 1, 2, 1)
    assert a.reserved_total == 6 and a.reserved[CallType.OUTBOUND] == 2
    snap = await client.get_org(org)
    assert (snap.reserved, snap.shared) == (6, 4)
    assert snap.agent("agent-a") == a

    # The org's sum may not pass its limit: `available` is the most B may reserve now.
    with pytest.raises(slotgate.ReservationsExceedLimit) as e:
        await client.set_reservations(org, "agent-b", chat=5)
    assert (e.value.status, e.value.code, e.value.available) == (
        409,
        "reservations_exceed_limit",
        4,
    )
    # For A itself, its own reservation counts as available.
    with pytest.raises(slotgate.ReservationsExceedLimit) as e:
        await client.set_reservations(org, "agent-a", inbound=11)
    assert e.value.available == 10
    assert (await client.get_org(org)).reserved == 6  # nothing changed by a refusal

    with pytest.raises(slotgate.LimitBelowReservations) as lb:
        await client.set_limit(org, 5)
    assert (lb.value.status, lb.value.code, lb.value.reserved) == (
        409,
        "limit_below_reservations",
        6,
    )
    raised = await client.set_limit(org, 12)
    assert (raised.limit, raised.shared) == (12, 6)

    never = await client.get_agent(org, "never-seen")
    assert never.reserved.total == 0 and never.active.total == 0 and never.queued.total == 0

    removed = await client.remove_reservations(org, "agent-a")
    assert removed.reserved == slotgate.PerType() and removed.reserved_total == 0
    snap = await client.get_org(org)
    assert (snap.reserved, snap.shared, snap.agents) == (0, 12, [])

    history = await client.history(org)
    assert history.interval_s > 0 and isinstance(history.samples, list)


async def test_caps_burst_and_blocked_calls(client: AsyncClient, make_org: MakeOrg) -> None:
    org = make_org(2)
    await client.set_reservations(org, "agent-a", chat=2)
    with pytest.raises(slotgate.CapBelowReservation) as e:
        await client.set_caps(org, "agent-a", chat=1)
    assert (e.value.status, e.value.code, e.value.reserved) == (409, "cap_below_reservation", 2)
    a = await client.set_caps(org, "agent-a", chat=3, total=3)
    assert a.caps == slotgate.Caps(chat=3, total=3)
    assert (await client.get_agent(org, "agent-a")).caps.webcall is None

    snap = await client.set_burst(org, 1)
    assert (snap.burst, snap.burst_in_use) == (1, 0)
    # The limit is in use (agent-a's reserved calls): the next call takes the burst.
    for i in range(2):
        await client.acquire(org, agent="agent-a", type="chat", id=f"a{i}")
    burst = await client.acquire(org, agent="agent-a", type="chat", id="a2", if_blocked="refuse")
    assert (burst.status, burst.slot) == (201, Slot.BURST)
    assert (await client.get_org(org)).burst_in_use == 1

    # Agent-y reserves nothing and reservations take the whole limit: blocked.
    with pytest.raises(slotgate.CallBlocked) as b:
        await client.acquire(org, agent="agent-y", type="chat", if_blocked="refuse")
    assert (b.value.code, b.value.blocked) == (
        "call_blocked",
        slotgate.BlockedReason.NO_SHARED_CAPACITY,
    )
    queued = await client.acquire(org, agent="agent-y", type="chat", id="y1")
    assert queued.status == 202
    call = await client.get_call(org, "y1")
    assert call.blocked is slotgate.BlockedReason.NO_SHARED_CAPACITY
    snap = await client.get_org(org)
    assert (snap.queued, snap.blocked) == (1, 1)
    with pytest.raises(slotgate.CallBlocked):
        async with client.slot(org, agent="agent-y", type="chat", if_blocked="refuse"):
            pass
    assert (await client.get_org(org)).queued == 1


async def test_usage_by_hour(
    client: AsyncClient, admin: slotgate.Client, make_org: MakeOrg
) -> None:
    org = make_org(1)
    await client.acquire(org, agent="agent-a", type="chat", id="u1")
    assert (await client.acquire(org, agent="agent-a", type="inbound", id="u2")).status == 202
    assert (await client.acquire(org, agent="agent-a", type="chat", id="u3")).status == 202
    await client.release(org, "u3")
    await client.release(org, "u1")

    usage = await client.usage(org)
    assert (usage.org, usage.step, len(usage.steps)) == (org, "1h", 24)
    overall = [s["overall"] for s in usage.steps]
    # Summed: the test may run across the end of an hour.
    assert sum(f["admitted"] for f in overall) == 2
    assert sum(f["waited"] for f in overall) == 1
    assert sum(f["gave_up"] for f in overall) == 1
    assert max(f["peak_queued"] for f in overall) == 2
    assert sum(s["types"]["inbound"]["waited"] for s in usage.steps) == 1

    days = admin.usage(org, step="1d")
    assert (days.step, len(days.steps)) == ("1d", 7)
    assert sum(s["overall"]["admitted"] for s in days.steps) == 2

    with pytest.raises(slotgate.InvalidRequest) as e:
        await client.usage(org, from_="2026-11-02T00:00:00Z", to="2026-11-01T00:00:00Z")
    assert "to" in e.value.message


async def test_plans_orgs_on_them_and_case_19(client: AsyncClient) -> None:
    plans = {p.id: p for p in await client.list_plans()}
    assert (plans["standard"].limit, plans["standard"].burst) == (20, 0)
    assert (plans["enterprise"].limit, plans["enterprise"].burst) == (100, 20)

    # A plan of this test's own: the server is shared with the other tests.
    tier = new_id("tier")
    created = await client.create_plan(tier, 20)
    assert (created.id, created.limit, created.burst, created.orgs) == (tier, 20, 0, 0)
    with pytest.raises(slotgate.PlanExists):
        await client.create_plan(tier, 5)
    x, own = new_id("x"), new_id("own")
    org = await client.create_org(x, plan=tier)
    assert (org.plan, org.limit, org.limit_source) == (tier, 20, slotgate.Source.PLAN)
    org = await client.create_org(own, 25, plan=tier)
    assert (org.limit, org.limit_source) == (25, slotgate.Source.ORG)

    # Case 19: X reserves 18 of the plan's 20; a limit of 15 is refused whole.
    await client.set_reservations(x, "agent", chat=18)
    with pytest.raises(slotgate.PlanBelowReservations) as e:
        await client.update_plan(tier, limit=15)
    assert (e.value.status, e.value.orgs, e.value.count) == (409, [x], 1)
    assert (await client.get_org(x)).limit == 20
    assert (await client.get_plan(tier)).limit == 20

    changed = await client.update_plan(tier, limit=19, burst=2)
    assert (changed.limit, changed.burst, changed.orgs) == (19, 2, 2)
    assert ((await client.get_org(x)).limit, (await client.get_org(own)).limit) == (19, 25)
    back = await client.set_limit(own, None)
    assert (back.limit, back.limit_source) == (19, slotgate.Source.PLAN)

    with pytest.raises(slotgate.PlanInUse) as u:
        await client.delete_plan(tier)
    assert u.value.count == 2
    off = await client.set_org_plan(own, None)
    assert (off.plan, off.limit, off.limit_source) == (None, 19, slotgate.Source.ORG)
    with pytest.raises(slotgate.NoPlan):
        await client.set_burst(own, None)
    with pytest.raises(slotgate.PlanNotFound):
        await client.set_org_plan(x, new_id("gone"))


async def test_acquire_admit_queue_idempotent_conflict(
    client: AsyncClient, make_org: MakeOrg
) -> None:
    org = make_org(2, **{"agent-a": {"chat": 1}})
    reserved = await client.acquire(org, agent="agent-a", type="chat", id="c1")
    assert (reserved.status, reserved.state, reserved.slot) == (
        201,
        CallState.ACTIVE,
        Slot.RESERVED,
    )
    assert reserved.call is not None and reserved.call.lease_expires_at is not None
    shared = await client.acquire(org, agent="agent-a", type="chat", id="c2", lease_ttl=30)
    assert (shared.status, shared.slot) == (201, Slot.SHARED)
    assert shared.call is not None and shared.call.lease_ttl_s == 30

    queued = await client.acquire(org, agent="agent-b", type=CallType.INBOUND, id="c3")
    assert (queued.status, queued.state, queued.position, queued.slot) == (
        202,
        CallState.QUEUED,
        1,
        None,
    )
    # The same id, agent and type again: the same call, nothing queued twice.
    again = await client.acquire(org, agent="agent-b", type="inbound", id="c3")
    assert (again.status, again.state, again.position) == (200, CallState.QUEUED, 1)
    assert (await client.get_org(org)).queued == 1
    # The same id with another type: a conflict.
    with pytest.raises(slotgate.CallIdConflict) as e:
        await client.acquire(org, agent="agent-b", type="outbound", id="c3")
    assert (e.value.status, e.value.code) == (409, "call_id_conflict")

    # An id made by the client when none is given.
    made = await client.acquire(org, agent="agent-c", type="webcall")
    assert made.id.startswith("call_") and made.position == 2
    assert made.call is not None and made.call.id == made.id


async def test_get_heartbeat_release_and_their_errors(
    client: AsyncClient, make_org: MakeOrg
) -> None:
    org = make_org(1)
    active = await client.acquire(org, agent="a", type="chat", id="act")
    queued = await client.acquire(org, agent="a", type="chat", id="que")

    got = await client.get_call(org, "act")
    assert (got.id, got.agent, got.type, got.state) == ("act", "a", CallType.CHAT, CallState.ACTIVE)
    renewed = await active.heartbeat(lease_ttl=120)
    assert renewed.lease_ttl_s == 120 and active.heartbeats == 1
    assert renewed.lease_expires_at is not None and got.lease_expires_at is not None
    assert renewed.lease_expires_at > got.lease_expires_at
    held = await client.heartbeat(org, "que")
    assert held.state is CallState.QUEUED

    cancelled = await queued.release()
    assert (cancelled.state, cancelled.end_reason) == (CallState.ENDED, EndReason.CANCELLED)
    released = await client.release(org, "act")
    assert (released.state, released.end_reason) == (CallState.ENDED, EndReason.RELEASED)
    assert released.ended_at is not None
    # Again: unchanged, not an error.
    assert await client.release(org, "act") == released

    # A heartbeat on an ended call: 410 with the call inside the error object.
    with pytest.raises(slotgate.CallEnded) as e:
        await active.heartbeat()
    assert (e.value.status, e.value.code) == (410, "call_ended")
    assert e.value.call == released
    assert active.lost and active.lost_call == released

    unknown = new_id("call")
    for attempt in (
        client.get_call(org, unknown),
        client.heartbeat(org, unknown),
        client.release(org, unknown),
    ):
        with pytest.raises(slotgate.CallNotFound) as nf:
            await attempt
        assert (nf.value.status, nf.value.code) == (404, "call_not_found")


async def test_list_calls_filters_and_pages(client: AsyncClient, make_org: MakeOrg) -> None:
    org = make_org(2)
    for i, agent in enumerate(["a", "b", "a", "b", "a"]):
        await client.acquire(org, agent=agent, type="webcall", id=f"k{i}")
    every = [c.id async for c in client.list_calls(org, limit=2)]
    assert every == ["k0", "k1", "k2", "k3", "k4"]  # active first, then queue order
    page = await client.calls_page(org, limit=2)
    assert [c.id for c in page.items] == ["k0", "k1"] and page.next_cursor is not None
    rest = await client.calls_page(org, limit=2, cursor=page.next_cursor)
    assert [c.id for c in rest.items] == ["k2", "k3"]
    queued = [c async for c in client.list_calls(org, state=CallState.QUEUED)]
    assert [(c.id, c.position) for c in queued] == [("k2", 1), ("k3", 2), ("k4", 3)]
    assert [c.id async for c in client.list_calls(org, state="active", agent="a")] == ["k0"]
    assert [c.id async for c in client.list_calls(org, agent="b", cursor="1")] == ["k3"]


async def test_long_polls_wait_for_admission(client: AsyncClient, make_org: MakeOrg) -> None:
    org = make_org(1)
    await client.acquire(org, agent="a", type="chat", id="first")
    await client.acquire(org, agent="a", type="chat", id="second")
    third = await client.acquire(org, agent="a", type="chat", id="third")

    # A GET with wait_s blocks while queued, and answers once the call is admitted.
    waiting = asyncio.ensure_future(client.get_call(org, "second", wait=30))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await client.release(org, "first")
    admitted = await asyncio.wait_for(waiting, 10)
    assert (admitted.state, admitted.slot) == (CallState.ACTIVE, Slot.SHARED)

    # An acquire with wait_s answers 201 when admitted within the wait.
    assert (await third.refresh()).position == 1
    again = asyncio.ensure_future(client.acquire(org, agent="a", type="chat", id="third", wait=30))
    await asyncio.sleep(0.2)
    await client.release(org, "second")
    permit = await asyncio.wait_for(again, 10)
    assert permit.state is CallState.ACTIVE and permit.status in (200, 201)

    # A GET with a wait on an active call answers at once.
    assert (await client.get_call(org, "third", wait=30)).state is CallState.ACTIVE


async def test_events_pages_long_poll_follow_and_stream(
    client: AsyncClient, make_org: MakeOrg
) -> None:
    org = make_org(1)
    page = await client.events(org)
    assert [e.type for e in page.events] == ["org.created"]
    assert page.events[0].seq == 1 and page.next == 1
    await client.set_limit(org, 2)
    await client.acquire(org, agent="a", type="outbound", id="e1")
    await client.release(org, "e1")
    page = await client.events(org, after=1)
    kinds = [e.type for e in page.events]
    assert kinds == ["org.limit_changed", "call.admitted", "call.ended"]
    limit_changed, admitted, ended = page.events
    assert (limit_changed.old, limit_changed.new, limit_changed.by) == (1, 2, "operator")
    assert (admitted.call, admitted.agent, admitted.call_type, admitted.slot) == (
        "e1",
        "a",
        CallType.OUTBOUND,
        Slot.SHARED,
    )
    assert admitted.waited_ms == 0
    assert (ended.call, ended.reason) == ("e1", EndReason.RELEASED)
    assert [e.seq for e in page.events] == [2, 3, 4] and page.next == 4
    assert (await client.events(org, after=1, limit=1)).next == 2

    # A long-poll answers when something happens.
    poll = asyncio.ensure_future(client.events(org, after=4, wait=30))
    await asyncio.sleep(0.2)
    assert not poll.done()
    await client.acquire(org, agent="a", type="chat", id="e2")
    woke = await asyncio.wait_for(poll, 10)
    assert [(e.type, e.call) for e in woke.events] == [("call.admitted", "e2")]

    # Following: everything from the start, then new events as they happen.
    follow = client.follow_events(org, after=0, wait=30)
    seen = [(await follow.__anext__()).seq for _ in range(5)]
    assert seen == [1, 2, 3, 4, 5]
    nxt = asyncio.ensure_future(follow.__anext__())
    await client.acquire(org, agent="a", type="chat", id="e3")
    assert (await asyncio.wait_for(nxt, 10)).seq == 6
    await follow.aclose()  # type: ignore[attr-defined]

    # The SSE stream: a replay from `after`, then live ones.
    stream = client.stream_events(org, after=4)
    replay = [await stream.__anext__() for _ in range(2)]
    assert [(e.seq, e.call) for e in replay] == [(5, "e2"), (6, "e3")]
    live = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0.2)
    await client.release(org, "e2")
    event = await asyncio.wait_for(live, 10)
    assert (event.type, event.call, event.reason) == ("call.ended", "e2", EndReason.RELEASED)
    await stream.aclose()  # type: ignore[attr-defined]

    # Without `after`, only the events from the moment the stream is open.
    async with client.event_stream(org) as fresh:
        await client.release(org, "e3")
        event = await asyncio.wait_for(fresh.__anext__(), 10)
    assert (event.type, event.call, event.seq) == ("call.ended", "e3", 8)

    # A heartbeat that changes the call's lease length is an event; one that
    # does not (no length, or the same) is none.
    await client.acquire(org, agent="a", type="chat", id="e4", lease_ttl=30)
    await client.heartbeat(org, "e4")
    await client.heartbeat(org, "e4", lease_ttl=30)
    await client.heartbeat(org, "e4", lease_ttl=90)
    page = await client.events(org, after=8)
    assert [(e.type, e.call, e.lease_ttl_ms) for e in page.events] == [
        ("call.admitted", "e4", 30_000),
        ("call.lease_changed", "e4", 90_000),
    ]
    changed = page.events[1]
    assert (changed.agent, changed.call_type) == ("a", CallType.CHAT)


async def test_keys_roles_and_auth(server: Server, client: AsyncClient, make_org: MakeOrg) -> None:
    org, other = make_org(5), make_org(5)
    runtime = await client.create_key(org, role=KeyRole.RUNTIME, name="orchestrator")
    admin = await client.create_key(org, role="admin", name="console")
    assert runtime.role is KeyRole.RUNTIME and admin.role is KeyRole.ADMIN
    assert runtime.key not in repr(runtime)  # the secret is not printed
    listed = [k async for k in client.list_keys(org, limit=1)]
    assert sorted((k.id, k.name, k.role) for k in listed) == sorted(
        [(runtime.id, "orchestrator", KeyRole.RUNTIME), (admin.id, "console", KeyRole.ADMIN)]
    )
    assert all(k.created_at is not None for k in listed)
    assert len((await client.keys_page(org, limit=1)).items) == 1

    async with (
        AsyncClient(server.url, runtime.key) as rt,
        AsyncClient(server.url, admin.key) as ad,
        AsyncClient(server.url, "sgk_nobody_nothing") as stranger,
    ):
        # The runtime key: calls and reads in its org, nothing else.
        p = await rt.acquire(org, agent="a", type="chat")
        assert p.active
        assert (await rt.get_org(org)).active == 1
        assert [c.id async for c in rt.list_calls(org)] == [p.id]
        await p.heartbeat()
        await p.release()
        with pytest.raises(slotgate.Forbidden) as fb:
            await rt.set_reservations(org, "a", chat=1)
        assert (fb.value.status, fb.value.code) == (403, "forbidden")
        with pytest.raises(slotgate.Forbidden):
            await rt.create_key(org, role="runtime", name="more")
        # Another org is not there at all for this key.
        with pytest.raises(slotgate.OrgNotFound):
            await rt.get_org(other)
        with pytest.raises(slotgate.OrgNotFound):
            await rt.acquire(other, agent="a", type="chat")

        # The admin key: everything in its org but the limit.
        assert (await ad.set_reservations(org, "a", chat=2)).reserved.chat == 2
        with pytest.raises(slotgate.Forbidden):
            await ad.set_limit(org, 9)
        with pytest.raises(slotgate.Forbidden):
            await ad.create_org(new_id("org"), 1)
        with pytest.raises(slotgate.Forbidden):
            await ad.orgs_page()
        made = await ad.create_key(org, role="runtime", name="by-admin")

        # No key the server knows: 401.
        with pytest.raises(slotgate.Unauthorized) as ua:
            await stranger.get_org(org)
        assert (ua.value.status, ua.value.code) == (401, "unauthorized")

        # A revoked key stops working at once.
        await client.revoke_key(org, runtime.id)
        with pytest.raises(slotgate.Unauthorized):
            await rt.get_org(org)
        await ad.revoke_key(org, made.id)
        with pytest.raises(slotgate.KeyNotFound) as kn:
            await client.revoke_key(org, runtime.id)
        assert (kn.value.status, kn.value.code) == (404, "key_not_found")
        assert [k.id async for k in client.list_keys(org)] == [admin.id]


def test_errors_read_extras_only_inside_the_error_object() -> None:
    # What API.md says a body is; a stray top-level field is not read.
    body = {"error": {"code": "reservations_exceed_limit", "message": "m", "available": 3}}
    err = slotgate._errors.api_error(409, body)
    assert isinstance(err, slotgate.ReservationsExceedLimit) and err.available == 3
    stray = {"available": 9, "error": {"code": "reservations_exceed_limit", "message": "m"}}
    err = slotgate._errors.api_error(409, stray)
    with pytest.raises(KeyError):
        _ = err.available  # type: ignore[attr-defined]
    unavailable = slotgate._errors.api_error(
        503, {"error": {"code": "store_unavailable", "message": "m"}}, retry_after=1.0
    )
    assert isinstance(unavailable, slotgate.StoreUnavailable)
    assert unavailable.transient and unavailable.retry_after == 1.0
    odd = slotgate._errors.api_error(418, {"error": {"code": "teapot", "message": "m"}})
    assert type(odd) is slotgate.ApiError and odd.code == "teapot"


async def test_payload_too_large(client: AsyncClient) -> None:
    with pytest.raises(slotgate.PayloadTooLarge) as e:
        await client.create_org("o" * 70_000, 1)  # a body over the server's 64 KiB
    assert (e.value.status, e.value.code) == (413, "payload_too_large")


async def test_unknown_routes_and_methods(server: Server, client: AsyncClient) -> None:
    with pytest.raises(slotgate.EndpointNotFound) as nf:
        await client._request("GET", "/no/such/thing")
    assert nf.value.status == 404
    with pytest.raises(slotgate.MethodNotAllowed) as mna:
        await client._request("PATCH", "/orgs")
    assert mna.value.status == 405


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(Path(tmp_path_factory.mktemp("capped")) / "data", ["--queue-cap", "2"]).start()
    yield srv
    srv.kill()


@pytest.fixture
async def capped_client(capped: Server) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(capped.url, capped.key) as c:
        yield c


async def test_queue_full(capped_client: AsyncClient) -> None:
    org = new_id("org")
    await capped_client.create_org(org, 0)
    ids: List[str] = []
    for _ in range(2):
        ids.append((await capped_client.acquire(org, agent="a", type="chat")).id)
    with pytest.raises(slotgate.QueueFull) as e:
        await capped_client.acquire(org, agent="a", type="chat", id="third")
    assert (e.value.status, e.value.code, e.value.cap) == (429, "queue_full", 2)
    with pytest.raises(slotgate.CallNotFound):
        await capped_client.get_call(org, "third")  # nothing was queued
    await capped_client.release(org, ids[0])
    assert (await capped_client.acquire(org, agent="a", type="chat", id="third")).position == 2


async def test_retries_through_a_server_restart(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data").start()
    try:
        async with AsyncClient(
            srv.url, srv.key, retry=slotgate.Retry(attempts=200, backoff=0.05, max_backoff=0.2)
        ) as c:
            org = new_id("org")
            await c.create_org(org, 1)
            srv.kill()
            # Reads and idempotent writes are retried until the server is back.
            pending = asyncio.ensure_future(c.set_limit(org, 4))
            await asyncio.sleep(0.3)
            assert not pending.done()
            await asyncio.get_running_loop().run_in_executor(None, srv.start)
            assert (await asyncio.wait_for(pending, 30)).limit == 4
            # A create is not idempotent, but a request refused at connect
            # never reached the server: that one is retried too.
            srv.kill()
            other = new_id("org")
            creating = asyncio.ensure_future(c.create_org(other, 2))
            await asyncio.sleep(0.3)
            assert not creating.done()
            await asyncio.get_running_loop().run_in_executor(None, srv.start)
            assert (await asyncio.wait_for(creating, 30)).id == other
            assert (await c.get_org(org)).limit == 4  # and the first change was durable
        async with AsyncClient(srv.url, srv.key, retry=slotgate.Retry(attempts=2)) as c:
            srv.kill()
            with pytest.raises(slotgate.TransportError):
                await c.get_org(org)
    finally:
        srv.kill()

"""The blocking Client against the real server: endpoints, `with client.slot(...)`, iterators."""

from __future__ import annotations

import signal
import threading
from typing import List, Optional

import pytest
from slotgate_server import MakeOrg, Server, new_id

import slotgate
from slotgate import CallState, CallType, Client, EndReason, KeyRole, Slot


def test_endpoints_and_errors(admin: Client, server: Server) -> None:
    org = new_id("org")
    created = admin.create_org(org, 4)
    assert (created.limit, created.shared) == (4, 4)
    with pytest.raises(slotgate.OrgExists):
        admin.create_org(org, 4)
    assert admin.health()
    assert "/v1/orgs" in admin.openapi()["paths"]
    assert admin.get_org(org).id == org
    assert org in [o.id for o in admin.list_orgs(limit=1)]
    assert admin.set_reservations(org, "a", chat=3).reserved_total == 3
    with pytest.raises(slotgate.ReservationsExceedLimit) as e:
        admin.set_reservations(org, "b", chat=2)
    assert e.value.available == 1
    with pytest.raises(slotgate.LimitBelowReservations) as lb:
        admin.set_limit(org, 2)
    assert lb.value.reserved == 3
    assert admin.set_limit(org, 5).limit == 5
    assert admin.get_agent(org, "a").reserved.chat == 3
    assert admin.remove_reservations(org, "a").reserved_total == 0

    p = admin.acquire(org, agent="a", type=CallType.CHAT, id="s1")
    assert (p.status, p.state, p.slot) == (201, CallState.ACTIVE, Slot.SHARED)
    assert admin.acquire(org, agent="a", type="chat", id="s1").status == 200
    with pytest.raises(slotgate.CallIdConflict):
        admin.acquire(org, agent="b", type="chat", id="s1")
    assert p.heartbeat().state is CallState.ACTIVE
    assert admin.get_call(org, "s1").id == "s1"
    assert [c.id for c in admin.list_calls(org, state="active")] == ["s1"]
    assert admin.release(org, "s1").end_reason is EndReason.RELEASED
    with pytest.raises(slotgate.CallEnded) as ce:
        admin.heartbeat(org, "s1")
    assert ce.value.call.end_reason is EndReason.RELEASED
    with pytest.raises(slotgate.CallNotFound):
        admin.get_call(org, "nope")

    key = admin.create_key(org, role=KeyRole.RUNTIME, name="rt")
    assert [k.id for k in admin.list_keys(org)] == [key.id]
    with Client(server.url, key.key) as rt:
        with pytest.raises(slotgate.Forbidden):
            rt.set_limit(org, 9)
        admin.revoke_key(org, key.id)
        with pytest.raises(slotgate.Unauthorized):
            rt.get_org(org)
    page = admin.events(org, after=0, limit=2)
    assert [e.seq for e in page.events] == [1, 2] and page.next == 2
    seqs = []
    for event in admin.follow_events(org, after=0, wait=1):
        seqs.append(event.seq)
        if len(seqs) == 3:
            break
    assert seqs == [1, 2, 3]
    replay = admin.stream_events(org, after=0)
    assert next(replay).type == "org.created"
    assert next(replay).seq == 2
    replay.close()  # type: ignore[attr-defined]


def test_slot_admitted_at_once(admin: Client, make_org: MakeOrg) -> None:
    org = make_org(1, a={"webcall": 1})
    with admin.slot(org, agent="a", type="webcall") as slot:
        assert slot.active and slot.slot is Slot.RESERVED
        assert admin.get_org(org).active == 1
    assert admin.get_call(org, slot.id).end_reason is EndReason.RELEASED


def test_slot_queued_then_admitted(admin: Client, make_org: MakeOrg) -> None:
    org = make_org(1)
    holder = admin.acquire(org, agent="x", type="chat", id="holder")
    positions: List[int] = []
    reported = threading.Event()

    def on_position(p: int) -> None:
        positions.append(p)
        reported.set()

    def hang_up_the_holder() -> None:
        if reported.wait(15):
            holder.release()

    helper = threading.Thread(target=hang_up_the_holder)
    helper.start()
    with admin.slot(org, agent="a", type="chat", id="q", on_position=on_position) as slot:
        assert slot.active and positions == [1]
        assert holder.state is CallState.ENDED
    helper.join()
    assert admin.get_call(org, "q").end_reason is EndReason.RELEASED


def test_slot_max_wait_and_exception(admin: Client, make_org: MakeOrg) -> None:
    org = make_org(0)
    with (
        pytest.raises(slotgate.QueueTimeout) as e,
        admin.slot(org, agent="a", type="chat", max_wait=0.3),
    ):
        pass
    assert e.value.call.end_reason is EndReason.TIMED_OUT
    admin.set_limit(org, 1)
    with pytest.raises(KeyError), admin.slot(org, agent="a", type="chat", id="oops"):
        raise KeyError("inside")
    assert admin.get_call(org, "oops").end_reason is EndReason.RELEASED
    assert admin.get_org(org).active == 0


def test_slot_lost(admin: Client, make_org: MakeOrg) -> None:
    org = make_org(1)
    lost: List[Optional[slotgate.Call]] = []
    with admin.slot(org, agent="a", type="chat", lease_ttl=5, on_lost=lost.append) as slot:
        admin.release(org, slot.id)
        assert slot.wait_lost(15)
        assert slot.lost and lost[0] is not None and lost[0].end_reason is EndReason.RELEASED


def test_manual_permit_across_requests(admin: Client, make_org: MakeOrg) -> None:
    org = make_org(1)
    admin.acquire(org, agent="a", type="inbound", id="first")
    queued = admin.acquire(org, agent="a", type="inbound", id="second")
    assert queued.queued and queued.position == 1
    # Later, in another request, the call is known by id only.
    later = admin.permit(org, "second")
    assert later.wait(timeout=0.2).state is CallState.QUEUED  # still queued when the wait ends
    admin.permit(org, "first").release()
    assert later.wait(timeout=10).state is CallState.ACTIVE
    assert later.heartbeat().state is CallState.ACTIVE
    assert later.release().end_reason is EndReason.RELEASED


def test_interrupting_a_blocked_wait_cancels_the_queued_call(
    admin: Client, make_org: MakeOrg
) -> None:
    org = make_org(0)
    reported = threading.Event()
    main = threading.main_thread()
    assert threading.current_thread() is main

    def interrupt() -> None:
        if reported.wait(15):
            signal.pthread_kill(main.ident or 0, signal.SIGINT)  # Ctrl-C

    # A program started in the background (`scripts/test.sh &`, nohup)
    # inherits SIGINT ignored, and Python then leaves it so: Ctrl-C here is
    # Python's own handler, as in a terminal. `max_wait` bounds the wait if
    # the interrupt never comes.
    ignored_or_not = signal.signal(signal.SIGINT, signal.default_int_handler)
    helper = threading.Thread(target=interrupt)
    helper.start()
    try:
        with (
            pytest.raises(KeyboardInterrupt),
            admin.slot(
                org,
                agent="a",
                type="chat",
                id="ctrl-c",
                max_wait=30,
                on_position=lambda p: reported.set(),
            ),
        ):
            raise AssertionError("never admitted")
    finally:
        helper.join()
        signal.signal(signal.SIGINT, ignored_or_not)
    call = admin.get_call(org, "ctrl-c")
    assert (call.state, call.end_reason) == (CallState.ENDED, EndReason.CANCELLED)

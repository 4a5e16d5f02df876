"""`async with client.slot(...)` against the real server: admission, the queue,
max_wait, cancellation, exceptions, lost slots and restarts."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import pytest
from slotgate_server import MakeOrg, Server, new_id

import slotgate
from slotgate import AsyncClient, CallState, EndReason, Slot


async def until(pred: Callable[[], bool], timeout: float = 15.0) -> None:
    """Waits for a condition that the test's own actions make true."""

    async def poll() -> None:
        while not pred():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


async def test_admitted_at_once(client: AsyncClient, make_org: MakeOrg) -> None:
    org = make_org(2, **{"agent-a": {"inbound": 1}})
    positions: List[int] = []
    async with client.slot(
        org, agent="agent-a", type="inbound", max_wait=30, on_position=positions.append
    ) as slot:
        assert slot.active and slot.slot is Slot.RESERVED and slot.id.startswith("call_")
        assert (await client.get_call(org, slot.id)).state is CallState.ACTIVE
        async with client.slot(org, agent="agent-a", type="inbound") as second:
            assert second.slot is Slot.SHARED
            assert (await client.get_org(org)).active == 2
    assert positions == []  # never queued
    for id in (slot.id, second.id):
        ended = await client.get_call(org, id)
        assert (ended.state, ended.end_reason) == (CallState.ENDED, EndReason.RELEASED)
    assert slot.call is not None and slot.call.end_reason is EndReason.RELEASED
    assert not slot.lost


async def test_queued_then_admitted_reporting_every_position(
    client: AsyncClient, make_org: MakeOrg
) -> None:
    org = make_org(1)
    holder = await client.acquire(org, agent="x", type="chat", id="holder")
    ahead = [await client.acquire(org, agent="x", type="chat", id=f"ahead{i}") for i in range(2)]
    positions: List[int] = []
    entered = asyncio.Event()

    async def conversation() -> Optional[Slot]:
        async with client.slot(
            org, agent="a", type="webcall", id="mine", on_position=positions.append
        ) as slot:
            entered.set()
            return slot.slot

    task = asyncio.ensure_future(conversation())
    await until(lambda: positions == [3])  # at once
    await ahead[0].release()  # a queued call ahead leaves: position 2
    await until(lambda: positions == [3, 2])
    await holder.release()  # the slot goes to ahead1: position 1
    await until(lambda: positions == [3, 2, 1])
    assert (await client.get_call(org, "ahead1")).state is CallState.ACTIVE
    assert not entered.is_set()
    await client.release(org, "ahead1")  # now it is ours
    assert await asyncio.wait_for(task, 15) is Slot.SHARED
    assert positions == [3, 2, 1]
    assert (await client.get_call(org, "mine")).end_reason is EndReason.RELEASED


async def test_waits_without_a_position_callback(client: AsyncClient, make_org: MakeOrg) -> None:
    org = make_org(1)
    holder = await client.acquire(org, agent="x", type="chat")

    async def conversation() -> str:
        async with client.slot(org, agent="a", type="chat", id="quiet") as slot:
            return slot.id

    task = asyncio.ensure_future(conversation())
    # Queued, and held by the acquire's own long-poll.
    while (await client.get_org(org)).queued == 0:
        await asyncio.sleep(0.02)
    while (await client.get_call(org, "quiet")).hold_expires_at is not None:
        await asyncio.sleep(0.02)  # until the long-poll's open wait holds it
    await holder.release()
    assert await asyncio.wait_for(task, 15) == "quiet"


async def test_max_wait_raises_queue_timeout(client: AsyncClient, make_org: MakeOrg) -> None:
    org = make_org(0)  # nobody is ever admitted
    behind = await client.acquire(org, agent="b", type="chat", id="behind")
    body_ran = False
    with pytest.raises(slotgate.QueueTimeout) as e:
        async with client.slot(org, agent="a", type="chat", id="impatient", max_wait=0.5):
            body_ran = True
    assert not body_ran
    assert (e.value.call.id, e.value.call.end_reason) == ("impatient", EndReason.TIMED_OUT)
    assert isinstance(e.value, slotgate.EndedWhileQueued)
    # The call is gone from the queue; the later call moved up.
    assert (await client.get_call(org, "impatient")).end_reason is EndReason.TIMED_OUT
    assert (await behind.refresh()).position == 1


async def test_cancelling_the_waiting_task_cancels_the_queued_call(
    client: AsyncClient, make_org: MakeOrg
) -> None:
    org = make_org(0)
    positions: List[int] = []

    async def conversation() -> None:
        async with client.slot(
            org, agent="a", type="chat", id="doomed", on_position=positions.append
        ):
            raise AssertionError("never admitted")

    task = asyncio.ensure_future(conversation())
    await until(lambda: positions == [1])
    behind = await client.acquire(org, agent="b", type="chat", id="behind")
    assert behind.position == 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    call = await client.get_call(org, "doomed")
    assert (call.state, call.end_reason) == (CallState.ENDED, EndReason.CANCELLED)
    assert (await behind.refresh()).position == 1
    assert (await client.get_org(org)).queued == 1


async def test_cancelling_the_task_inside_the_block_releases(
    client: AsyncClient, make_org: MakeOrg
) -> None:
    org = make_org(1)
    inside = asyncio.Event()

    async def conversation() -> None:
        async with client.slot(org, agent="a", type="chat", id="talking"):
            inside.set()
            await asyncio.sleep(3600)

    task = asyncio.ensure_future(conversation())
    await asyncio.wait_for(inside.wait(), 15)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await client.get_call(org, "talking")).end_reason is EndReason.RELEASED
    assert (await client.get_org(org)).active == 0


async def test_exception_inside_the_block_releases_and_propagates(
    client: AsyncClient, make_org: MakeOrg
) -> None:
    org = make_org(1)

    class Hangup(Exception):
        pass

    with pytest.raises(Hangup):
        async with client.slot(org, agent="a", type="chat", id="boom"):
            raise Hangup()
    call = await client.get_call(org, "boom")
    assert (call.state, call.end_reason) == (CallState.ENDED, EndReason.RELEASED)
    # The slot is free again at once.
    async with client.slot(org, agent="a", type="chat") as again:
        assert again.active


async def test_retried_slot_with_the_same_id_is_the_same_call(
    client: AsyncClient, make_org: MakeOrg
) -> None:
    org = make_org(2)
    async with client.slot(org, agent="a", type="chat", id="CA1") as first:
        # e.g. a retried webhook: the same id does not take a second slot.
        twin = await client.acquire(org, agent="a", type="chat", id="CA1")
        assert (twin.status, twin.state) == (200, CallState.ACTIVE)
        assert (await client.get_org(org)).active == 1
        assert first.id == "CA1"


async def test_lost_when_someone_else_ends_the_call(client: AsyncClient, make_org: MakeOrg) -> None:
    org = make_org(1)
    lost: List[Optional[slotgate.Call]] = []
    async with client.slot(org, agent="a", type="chat", lease_ttl=5, on_lost=lost.append) as slot:
        await client.release(org, slot.id)  # e.g. an operator ends it
        ended = await asyncio.wait_for(slot.wait_lost(), 15)
        assert slot.lost and ended is not None and ended.end_reason is EndReason.RELEASED
        assert lost == [ended]
    assert slot.lost


async def test_lost_when_the_lease_expires_without_heartbeats(
    client: AsyncClient, make_org: MakeOrg
) -> None:
    org = make_org(1)
    holder_lost = asyncio.Event()

    async def on_lost(call: Optional[slotgate.Call]) -> None:  # a coroutine works too
        holder_lost.set()

    waiter_in = asyncio.Event()

    async def next_caller() -> None:
        async with client.slot(org, agent="b", type="chat", id="next"):
            waiter_in.set()

    # Heartbeats far slower than the 5 s lease: the server expires the call.
    async with client.slot(
        org, agent="a", type="chat", id="sleepy", lease_ttl=5, heartbeat_every=6, on_lost=on_lost
    ) as slot:
        waiting = asyncio.ensure_future(next_caller())
        await asyncio.wait_for(holder_lost.wait(), 20)
        assert slot.lost_call is not None
        assert slot.lost_call.end_reason is EndReason.EXPIRED
        # The expired slot went to the caller waiting in the queue.
        await asyncio.wait_for(waiting, 15)
        assert waiter_in.is_set()
    assert (await client.get_call(org, "sleepy")).end_reason is EndReason.EXPIRED


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data").start()
    yield srv
    srv.kill()


async def test_server_restarted_while_a_slot_is_held(own_server: Server) -> None:
    async with AsyncClient(own_server.url, own_server.key) as c:
        org = new_id("org")
        await c.create_org(org, 1)
        loop = asyncio.get_running_loop()
        async with c.slot(org, agent="a", type="chat", id="survivor", lease_ttl=6) as slot:
            await until(lambda: slot.heartbeats >= 1)
            await loop.run_in_executor(None, own_server.restart)  # kill -9, start again
            beats = slot.heartbeats
            # Heartbeats resume against the restarted server; two in a row succeed.
            await until(lambda: slot.heartbeats >= beats + 2, timeout=30)
            assert not slot.lost
            call = await c.get_call(org, "survivor")
            assert call.state is CallState.ACTIVE
        assert (await c.get_call(org, "survivor")).end_reason is EndReason.RELEASED


async def test_server_restarted_while_waiting_in_the_queue(own_server: Server) -> None:
    async with AsyncClient(own_server.url, own_server.key) as c:
        org = new_id("org")
        await c.create_org(org, 1)
        holder = await c.acquire(org, agent="x", type="chat", id="holder", lease_ttl=30)
        positions: List[int] = []

        async def conversation() -> Optional[Slot]:
            async with c.slot(
                org, agent="a", type="chat", id="patient", on_position=positions.append
            ) as s:
                return s.slot

        task = asyncio.ensure_future(conversation())
        await until(lambda: positions == [1])
        await asyncio.get_running_loop().run_in_executor(None, own_server.restart)
        # The queue came back from disk; the wait goes on against the new process.
        await holder.release()
        assert await asyncio.wait_for(task, 30) is Slot.SHARED


async def test_a_slot_outlives_a_server_down_for_longer_than_its_lease(own_server: Server) -> None:
    # The server is killed and stays down past the lease: the client cannot
    # know whether the call lives on, so the slot is in doubt, not lost. The
    # restarted server restores the call with a grace lease, and the next
    # heartbeat keeps it.
    async with AsyncClient(own_server.url, own_server.key, retry=slotgate.Retry(attempts=1)) as c:
        org = new_id("org")
        await c.create_org(org, 1)
        lost: List[Optional[slotgate.Call]] = []
        async with c.slot(
            org, agent="a", type="chat", id="outlives", lease_ttl=5, on_lost=lost.append
        ) as slot:
            await until(lambda: slot.heartbeats >= 1)
            own_server.kill()
            await until(lambda: slot.in_doubt, timeout=20)  # a whole lease without an answer
            assert not slot.lost and lost == []
            await asyncio.get_running_loop().run_in_executor(None, own_server.start)
            beats = slot.heartbeats
            await until(lambda: slot.heartbeats >= beats + 2, timeout=30)
            assert not slot.in_doubt and not slot.lost and lost == []
            call = await c.get_call(org, "outlives")
            assert call.state is CallState.ACTIVE
        assert (await c.get_call(org, "outlives")).end_reason is EndReason.RELEASED


async def test_lost_with_the_call_when_a_frozen_server_expired_it(own_server: Server) -> None:
    # A frozen server (or a network that drops packets): heartbeats hang
    # rather than fail. Past the lease the slot is in doubt; when the server
    # answers again it has expired the call, and `on_lost` gets that call.
    assert own_server.proc is not None
    pid = own_server.proc.pid
    async with AsyncClient(own_server.url, own_server.key) as c:
        org = new_id("org")
        await c.create_org(org, 1)
        lost: List[Optional[slotgate.Call]] = []
        async with c.slot(
            org, agent="a", type="chat", id="frozen", lease_ttl=5, on_lost=lost.append
        ) as slot:
            await until(lambda: slot.heartbeats >= 1)
            os.kill(pid, signal.SIGSTOP)
            try:
                await until(lambda: slot.in_doubt, timeout=20)
                assert not slot.lost
            finally:
                os.kill(pid, signal.SIGCONT)
            ended = await asyncio.wait_for(slot.wait_lost(), 20)
            assert ended is not None and ended.end_reason is EndReason.EXPIRED
            assert slot.lost and not slot.in_doubt and lost == [ended]
        assert (await c.get_call(org, "frozen")).end_reason is EndReason.EXPIRED

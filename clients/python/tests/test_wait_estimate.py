"""`estimated_wait_s` through real HTTP: on the call, on `call.queued` events,
on the permit and with every position `on_position` hears.

The server estimates a queued call's wait from how long its slots were held
before their recent frees; it needs 8 frees of the org's shared pool first,
which this test makes with real time between them (about 0.1 s each)."""

from __future__ import annotations

import asyncio
from typing import List, Optional

from slotgate_server import MakeOrg

import slotgate
from slotgate import AsyncClient, CallState

#: Frees the shared pool needs before there are estimates (the engine's `MIN_FREES`).
MIN_FREES = 8


async def test_queued_calls_and_positions_carry_the_expected_wait(
    client: AsyncClient, make_org: MakeOrg
) -> None:
    org = make_org(2)
    holders = [await client.acquire(org, agent="a", type="chat", id=f"h{i}") for i in range(2)]
    assert all(p.active and p.estimated_wait_s is None for p in holders)
    active = [p.id for p in holders]
    first = await client.acquire(org, agent="a", type="chat", id="w0")
    assert first.queued and first.position == 1
    assert first.estimated_wait_s is None  # no history yet

    # Each release frees a shared slot, which the oldest queued call takes.
    for i in range(MIN_FREES):
        await asyncio.sleep(0.1)
        await client.release(org, active.pop(0))
        active.append(f"w{i}")
        await client.acquire(org, agent="a", type="chat", id=f"w{i + 1}")

    behind = await client.acquire(org, agent="a", type="chat", id="behind")
    assert behind.position == 2
    assert behind.estimated_wait_s is not None and behind.estimated_wait_s > 0
    head = await client.get_call(org, f"w{MIN_FREES}")
    assert head.estimated_wait_s is not None and head.estimated_wait_s > 0
    assert head.estimated_wait_s < behind.estimated_wait_s
    running = await client.get_call(org, active[0])
    assert running.state is CallState.ACTIVE and running.estimated_wait_s is None

    queued = {
        e.call: e.estimated_wait_s
        for e in (await client.events(org)).events
        if e.type == "call.queued"
    }
    assert queued["w0"] is None and queued["w1"] is None
    assert queued["behind"] == behind.estimated_wait_s

    # `on_position` hears each position with the expected wait then.
    heard: List[slotgate.Position] = []

    async def conversation() -> Optional[float]:
        async with client.slot(org, agent="a", type="chat", on_position=heard.append) as slot:
            return slot.estimated_wait_s

    task = asyncio.ensure_future(conversation())
    while not heard:
        await asyncio.sleep(0.02)
    await client.release(org, f"w{MIN_FREES}")
    await client.release(org, "behind")
    await client.release(org, active[0])
    assert await asyncio.wait_for(task, 15) is None  # active now: no estimate
    assert heard[0] == 3 and [int(p) for p in heard] == sorted(heard, reverse=True)
    assert all(p.estimated_wait_s is not None and p.estimated_wait_s > 0 for p in heard)

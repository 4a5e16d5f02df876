"""The phone example, end to end: the app runs under uvicorn, slotgate is the real
binary, and the test plays the telephony provider, sending its webhooks over
HTTP and following the markup's redirects as the provider would."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import AsyncIterator, Callable, Dict, Iterator, List, Optional

import httpx
import pytest
from phone_webhooks.campaign import run_campaign
from slotgate_server import Server, new_id

import slotgate
from slotgate import AsyncClient, AsyncPermit, CallState, EndReason

EXAMPLES = Path(__file__).resolve().parents[2]
LEASE_TTL_S = 5.0  # short, so that the app's heartbeats show within the test
HOLD_POLL_S = 2.0


@pytest.fixture(scope="module")
def slotgate_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(Path(tmp_path_factory.mktemp("phone")) / "data").start()
    yield srv
    srv.kill()


@pytest.fixture(scope="module")
def app_url(slotgate_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The example app under uvicorn, on a free port."""
    log_path = Path(tmp_path_factory.mktemp("app")) / "uvicorn.log"
    env = dict(
        os.environ,
        SLOTGATE_URL=slotgate_server.url,
        SLOTGATE_KEY=slotgate_server.key,
        LEASE_TTL_S=str(LEASE_TTL_S),
        HOLD_POLL_S=str(HOLD_POLL_S),
        MAX_WAIT_S="60",
    )
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "phone_webhooks.app:app",
                "--app-dir",
                str(EXAMPLES),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            m = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", log_path.read_text())
            if m:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the app did not start:\n" + log_path.read_text())
            time.sleep(0.05)
        yield m.group(1)
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.fixture
async def sg(slotgate_server: Server) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(slotgate_server.url, slotgate_server.key) as c:
        yield c


@pytest.fixture
async def http(app_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=app_url, timeout=30) as c:
        yield c


class Provider:
    """The telephony provider's side: webhooks in, markup out, redirects followed."""

    def __init__(self, http: httpx.AsyncClient, org: str) -> None:
        self.http = http
        self.org = org
        self.waits: Counter[str] = Counter()

    async def _post(self, path: str, sid: str, **fields: str) -> ET.Element:
        resp = await self.http.post(path, data={"CallSid": sid, **fields})
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("application/xml")
        return ET.fromstring(resp.text)

    async def incoming(
        self, sid: str, agent: str = "agent-a", max_wait: Optional[float] = None
    ) -> ET.Element:
        path = f"/voice/{self.org}/{agent}/incoming"
        if max_wait is not None:
            path += f"?max_wait={max_wait}"
        return await self._post(path, sid, From="+15550100", To="+15550199", CallStatus="ringing")

    async def follow(self, sid: str, twiml: ET.Element) -> ET.Element:
        """Plays the hold music (instantly) and follows each redirect, until the
        markup connects or hangs up."""
        while (redirect := twiml.find("Redirect")) is not None:
            assert redirect.text is not None
            self.waits[sid] += 1
            twiml = await self._post(redirect.text, sid)
        return twiml

    async def status(self, sid: str, status: str) -> None:
        resp = await self.http.post(
            f"/voice/{self.org}/status", data={"CallSid": sid, "CallStatus": status}
        )
        assert resp.status_code == 204


def connected_to(twiml: ET.Element) -> Optional[str]:
    """The call id of the media stream the markup connects to, if it connects."""
    stream = twiml.find("Connect/Stream")
    if stream is None:
        return None
    m = re.search(r"[?&]call=([^&]+)", stream.get("url", ""))
    return m.group(1) if m else None


def on_hold(twiml: ET.Element) -> bool:
    return twiml.find("Play") is not None and twiml.find("Redirect") is not None


def said(twiml: ET.Element) -> str:
    return " ".join(s.text or "" for s in twiml.iter("Say"))


async def until(pred: Callable[[], bool], timeout: float = 15.0) -> None:
    async def poll() -> None:
        while not pred():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


async def new_org(sg: AsyncClient, limit: int) -> str:
    org = new_id("phone")
    await sg.create_org(org, limit)
    return org


async def test_the_21st_call_waits_on_hold_and_connects_when_a_call_ends(
    sg: AsyncClient, http: httpx.AsyncClient
) -> None:
    org = await new_org(sg, 20)
    provider = Provider(http, org)
    sids = [f"CA{i:02d}" for i in range(1, 22)]
    answers = await asyncio.gather(*(provider.incoming(s) for s in sids[:20]))
    assert [connected_to(a) for a in answers] == sids[:20]

    twenty_first = await provider.incoming("CA21")
    assert on_hold(twenty_first) and connected_to(twenty_first) is None
    assert "number 1 in line" in said(twenty_first)
    snapshot = await sg.get_org(org)
    assert (snapshot.active, snapshot.queued) == (20, 1)

    holding = asyncio.ensure_future(provider.follow("CA21", twenty_first))
    # The caller stays on hold: a wait ends with more music and the provider comes back.
    await until(lambda: provider.waits["CA21"] >= 2)
    assert not holding.done()
    await provider.status("CA07", "completed")  # a caller hangs up: their slot frees
    final = await asyncio.wait_for(holding, 15)
    assert connected_to(final) == "CA21"

    assert (await sg.get_call(org, "CA07")).end_reason is EndReason.RELEASED
    assert (await sg.get_call(org, "CA21")).state is CallState.ACTIVE
    snapshot = await sg.get_org(org)
    assert (snapshot.active, snapshot.queued) == (20, 0)
    for sid in sids:
        await provider.status(sid, "completed")
    assert (await sg.get_org(org)).active == 0


async def test_a_caller_hanging_up_on_hold_frees_their_place(
    sg: AsyncClient, http: httpx.AsyncClient
) -> None:
    org = await new_org(sg, 1)
    provider = Provider(http, org)
    assert connected_to(await provider.incoming("CA1")) == "CA1"
    assert "number 1 in line" in said(await provider.incoming("CA2"))
    third = await provider.incoming("CA3")
    assert "number 2 in line" in said(third)

    await provider.status("CA2", "completed")  # hung up while listening to the music
    gone = await sg.get_call(org, "CA2")
    assert (gone.state, gone.end_reason) == (CallState.ENDED, EndReason.CANCELLED)
    assert (await sg.get_call(org, "CA3")).position == 1
    assert (await sg.get_org(org)).queued == 1

    holding = asyncio.ensure_future(provider.follow("CA3", third))
    await provider.status("CA1", "completed")
    assert connected_to(await asyncio.wait_for(holding, 15)) == "CA3"
    await provider.status("CA3", "completed")


async def test_a_retried_webhook_does_not_take_a_second_slot(
    sg: AsyncClient, http: httpx.AsyncClient
) -> None:
    org = await new_org(sg, 2)
    provider = Provider(http, org)
    first, retried = await asyncio.gather(provider.incoming("CA1"), provider.incoming("CA1"))
    assert connected_to(first) == connected_to(retried) == "CA1"
    assert (await sg.get_org(org)).active == 1
    assert connected_to(await provider.incoming("CA2")) == "CA2"

    queued = await provider.incoming("CA3")
    queued_again = await provider.incoming("CA3")
    assert "number 1 in line" in said(queued) and "number 1 in line" in said(queued_again)
    snapshot = await sg.get_org(org)
    assert (snapshot.active, snapshot.queued) == (2, 1)

    # A retried status callback is harmless too.
    await provider.status("CA1", "completed")
    await provider.status("CA1", "completed")
    assert connected_to(await provider.follow("CA3", queued)) == "CA3"
    assert (await sg.get_org(org)).active == 2


async def test_max_wait_on_hold_ends_with_a_goodbye(
    sg: AsyncClient, http: httpx.AsyncClient
) -> None:
    org = await new_org(sg, 1)
    provider = Provider(http, org)
    assert connected_to(await provider.incoming("CA1")) == "CA1"
    held = await provider.incoming("CA2", max_wait=1)
    final = await provider.follow("CA2", held)
    assert final.find("Hangup") is not None and "still busy" in said(final)
    assert (await sg.get_call(org, "CA2")).end_reason is EndReason.TIMED_OUT
    await provider.status("CA2", "completed")  # the provider's callback after the hangup
    await provider.status("CA1", "completed")
    assert (await sg.get_org(org)).active == 0


async def test_connected_calls_are_kept_alive_until_their_status_callback(
    sg: AsyncClient, http: httpx.AsyncClient
) -> None:
    org = await new_org(sg, 1)
    provider = Provider(http, org)
    assert connected_to(await provider.incoming("CA1")) == "CA1"
    seen: List[object] = [(await sg.get_call(org, "CA1")).lease_expires_at]

    async def renewed_twice() -> None:
        while len(set(seen)) < 3:
            call = await sg.get_call(org, "CA1")
            assert call.state is CallState.ACTIVE
            seen.append(call.lease_expires_at)
            await asyncio.sleep(0.1)

    # The lease is 5 s; the app heartbeats it every third of that.
    await asyncio.wait_for(renewed_twice(), 20)
    await provider.status("CA1", "failed")
    assert (await sg.get_call(org, "CA1")).end_reason is EndReason.RELEASED


async def test_outbound_campaign_dials_as_many_at_once_as_admitted(sg: AsyncClient) -> None:
    org = await new_org(sg, 3)
    numbers = [f"+1555000{i:04d}" for i in range(9)]
    in_progress = 0
    peak = 0
    dialled: List[str] = []
    three_talking = asyncio.Event()
    slots: Dict[str, Optional[slotgate.Slot]] = {}

    async def dial(number: str, slot: AsyncPermit) -> None:
        nonlocal in_progress, peak
        in_progress += 1
        peak = max(peak, in_progress)
        dialled.append(number)
        slots[number] = slot.slot
        try:
            if in_progress == 3:
                three_talking.set()
            await asyncio.wait_for(three_talking.wait(), 15)
            if number == numbers[4]:
                raise ConnectionError("the carrier refused the call")
            await asyncio.sleep(0.01)
        finally:
            in_progress -= 1

    outcomes = await run_campaign(sg, org, "dialer", numbers, dial, campaign="spring")
    assert sorted(dialled) == numbers  # each number once
    assert peak == 3  # as many at once as the org's limit, never more
    failed = [(o.number, type(o.error)) for o in outcomes if o.error is not None]
    assert failed == [(numbers[4], ConnectionError)]
    assert set(slots.values()) == {slotgate.Slot.SHARED}
    snapshot = await sg.get_org(org)
    assert (snapshot.active, snapshot.queued) == (0, 0)
    # Every call, the failed one too, was released.
    for o in outcomes:
        assert (await sg.get_call(org, o.call_id)).end_reason is EndReason.RELEASED

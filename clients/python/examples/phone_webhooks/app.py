"""Answering phone calls from Twilio-style webhooks, with slotgate deciding who talks now.

Each phone number's voice webhook points at ``/voice/{org}/{agent}/incoming``
(the org that owns the number and the agent that answers it) and its status
callback at ``/voice/{org}/status``. Run it with::

    SLOTGATE_URL=http://127.0.0.1:7878 SLOTGATE_KEY=... \\
        uvicorn phone_webhooks.app:app --app-dir clients/python/examples

- incoming call: acquire a slot with the provider's call id (``CallSid``) as
  the call id, without waiting. Admitted: answer with the markup that
  connects the caller to the agent's media stream. Queued: hold music, then a
  redirect to the wait endpoint.
- wait: long-poll slotgate for a while (the open poll holds the queued
  call); connect the caller the moment the slot is theirs, or play more hold
  music and come back; when ``max_wait`` passes, apologise and hang up.
- status callback (completed, failed, busy, no-answer, canceled): release the
  slot, or cancel the queued call if the caller hung up while on hold.

Connected calls are kept alive by a background heartbeat in this process
until their status callback arrives. A webhook the provider retries carries
the same ``CallSid``, so it is the same call: it never takes a second slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field
from typing import AsyncIterator, Dict, Optional, Set, Tuple
from xml.sax.saxutils import escape, quoteattr

from fastapi import FastAPI, Request, Response

import slotgate
from slotgate import AsyncClient, CallType

log = logging.getLogger("phone_webhooks")

#: The provider's final call statuses: the call is over, whatever it was doing.
FINAL_STATUSES = {"completed", "failed", "busy", "no-answer", "canceled"}


@dataclass
class Settings:
    slotgate_url: str = "http://127.0.0.1:7878"
    slotgate_key: str = ""
    #: Where the provider streams an answered call's audio; the agent runs there.
    media_url: str = "wss://media.example.com/stream"
    #: A short hold-music clip; the caller hears it between two waits.
    hold_music_url: str = "https://media.example.com/hold.mp3"
    #: Longest time a caller waits on hold before a polite goodbye.
    max_wait_s: float = 120.0
    #: How long one wait request long-polls slotgate before more hold music.
    hold_poll_s: float = 10.0
    #: The slot's lease; heartbeats renew it every third of it.
    lease_ttl_s: float = 60.0

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        d = cls()
        return cls(
            slotgate_url=env.get("SLOTGATE_URL", d.slotgate_url),
            slotgate_key=env.get("SLOTGATE_KEY", d.slotgate_key),
            media_url=env.get("MEDIA_URL", d.media_url),
            hold_music_url=env.get("HOLD_MUSIC_URL", d.hold_music_url),
            max_wait_s=float(env.get("MAX_WAIT_S", d.max_wait_s)),
            hold_poll_s=float(env.get("HOLD_POLL_S", d.hold_poll_s)),
            lease_ttl_s=float(env.get("LEASE_TTL_S", d.lease_ttl_s)),
        )


# ----- the markup the provider executes -----


def _twiml(*verbs: str) -> Response:
    body = '<?xml version="1.0" encoding="UTF-8"?><Response>' + "".join(verbs) + "</Response>"
    return Response(content=body, media_type="application/xml")


def connect(settings: Settings, org: str, call: slotgate.Call) -> Response:
    """Connects the caller to the agent's media stream."""
    url = f"{settings.media_url}?org={org}&agent={call.agent}&call={call.id}"
    return _twiml(f"<Connect><Stream url={quoteattr(url)}/></Connect>")


def hold(settings: Settings, org: str, position: Optional[int]) -> Response:
    """Hold music, then back to the wait endpoint."""
    say = ""
    if position is not None:
        say = f"<Say>All our agents are busy. You are number {position} in line.</Say>"
    return _twiml(
        say,
        f"<Play>{escape(settings.hold_music_url)}</Play>",
        f'<Redirect method="POST">/voice/{escape(org)}/wait</Redirect>',
    )


def goodbye(message: str) -> Response:
    return _twiml(f"<Say>{escape(message)}</Say>", "<Hangup/>")


# ----- keeping connected calls alive -----


@dataclass
class KeepAlive:
    """Heartbeats every connected call of this process until it ends."""

    client: AsyncClient
    every: float
    calls: Set[Tuple[str, str]] = field(default_factory=set)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            await asyncio.gather(*(self._beat(org, id) for org, id in list(self.calls)))

    async def _beat(self, org: str, id: str) -> None:
        try:
            await self.client.heartbeat(org, id)
        except (slotgate.CallEnded, slotgate.CallNotFound):
            # The slot is gone (e.g. the lease ran out while this process was
            # stuck): a real platform would hang up the call through the
            # provider's REST API here.
            log.warning("call %s/%s lost its slot", org, id)
            self.calls.discard((org, id))
        except slotgate.SlotgateError as e:
            log.info("heartbeat of %s/%s failed, will retry: %s", org, id, e)


# ----- the app -----


def create_app(settings: Optional[Settings] = None) -> FastAPI:
    settings = settings or Settings.from_env()
    client = AsyncClient(settings.slotgate_url, settings.slotgate_key)
    keepalive = KeepAlive(client, settings.lease_ttl_s / 3)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.ensure_future(keepalive.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await client.aclose()

    app = FastAPI(title="phone webhooks", lifespan=lifespan)
    app.state.settings = settings
    app.state.keepalive = keepalive

    def connected(org: str, call: slotgate.Call) -> Response:
        keepalive.calls.add((org, call.id))
        return connect(settings, org, call)

    async def form(request: Request) -> Dict[str, str]:
        return {k: str(v) for k, v in (await request.form()).items()}

    @app.post("/voice/{org}/{agent}/incoming")
    async def incoming(org: str, agent: str, request: Request) -> Response:
        params = await form(request)
        sid = params["CallSid"]
        max_wait = float(request.query_params.get("max_wait", settings.max_wait_s))
        try:
            permit = await client.acquire(
                org,
                agent=agent,
                type=CallType.INBOUND,
                id=sid,
                lease_ttl=settings.lease_ttl_s,
                max_wait=max_wait,
            )
        except slotgate.QueueFull:
            return goodbye("We are receiving too many calls right now. Please call again later.")
        call = permit.call
        assert call is not None
        if call.active:
            return connected(org, call)
        if call.queued:
            return hold(settings, org, call.position)
        # A retried webhook for a call that is over already.
        return goodbye("Goodbye.")

    @app.post("/voice/{org}/wait")
    async def wait(org: str, request: Request) -> Response:
        sid = (await form(request))["CallSid"]
        permit = client.permit(org, sid)
        try:
            call = await permit.wait(settings.hold_poll_s)
        except slotgate.QueueTimeout:
            return goodbye("All our agents are still busy. Please call again later. Goodbye.")
        except (slotgate.EndedWhileQueued, slotgate.CallNotFound):
            return goodbye("Goodbye.")
        if call.active:
            return connected(org, call)
        return hold(settings, org, None)

    @app.post("/voice/{org}/status")
    async def status(org: str, request: Request) -> Response:
        params = await form(request)
        sid, call_status = params["CallSid"], params.get("CallStatus", "")
        if call_status in FINAL_STATUSES:
            keepalive.calls.discard((org, sid))
            # Released if it was talking, cancelled if it was on hold;
            # idempotent, so a retried callback is harmless.
            with contextlib.suppress(slotgate.CallNotFound):
                await client.release(org, sid)
        return Response(status_code=204)

    return app


app = create_app()

"""The asyncio client: every endpoint of API.md, permits, and `async with client.slot(...)`."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import time
from types import TracebackType
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    List,
    Optional,
    Set,
    Type,
    TypeVar,
    Union,
)

import httpx

from ._errors import (
    ApiError,
    CallEnded,
    CallNotFound,
    DecodeError,
    EndedWhileQueued,
    KeyNotFound,
    QueueTimeout,
    SlotgateError,
    TransportError,
)
from ._http import (
    LONG_POLL_S,
    NO_RETRY,
    Retry,
    SseParser,
    decode,
    error_of,
    is_unsent,
    new_call_id,
    query,
    seg,
)
from ._types import (
    Agent,
    Call,
    CallState,
    CallType,
    Caps,
    EndReason,
    Event,
    EventPage,
    History,
    KeyInfo,
    KeyRole,
    NewKey,
    Org,
    Page,
    Plan,
    Position,
    Slot,
    Usage,
)

log = logging.getLogger("slotgate")

T = TypeVar("T")

#: `on_position`: called with the queue position (a :class:`Position`, an int
#: with the call's `estimated_wait_s`), at once and on every change.
PositionCallback = Callable[[Position], Any]
#: `on_lost`: called with the call as the server ended it (None only if the
#: server no longer knows the call at all); may be a coroutine function.
LostCallback = Callable[[Optional[Call]], Any]


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value


async def _shielded(aw: Awaitable[T]) -> T:
    """Runs `aw` to its end even if the awaiting task is cancelled meanwhile."""
    task = asyncio.ensure_future(aw)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        # Cancelled again while cleaning up: let the cleanup finish first.
        with contextlib.suppress(BaseException):
            await task
        raise


class AsyncClient:
    """A slotgate client for asyncio.

    ``AsyncClient("http://127.0.0.1:7878", key)``; use it as ``async with`` or
    call :meth:`aclose` when done. Every method maps to one endpoint of the
    HTTP API, except :meth:`slot` which holds a slot for a block of code.
    """

    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: float = 10.0,
        retry: Optional[Retry] = None,
        long_poll: float = LONG_POLL_S,
        transport: Optional[httpx.AsyncBaseTransport] = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retry = retry or Retry()
        self.long_poll = long_poll
        self._headers = {"Authorization": f"Bearer {key}"}
        self._http = httpx.AsyncClient(
            transport=transport,
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the connections."""
        await self._http.aclose()

    # ----- requests -----

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Optional[Dict[str, str]] = None,
        body: Any = None,
        wait: float = 0.0,
        idempotent: bool = True,
        retry: Optional[Retry] = None,
        timeout: Optional[float] = None,
    ) -> Any:
        policy = retry or self.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = await self._http.request(
                    method,
                    f"{self.url}/v1{path}",
                    params=params,
                    json=body,
                    headers=self._headers,
                    timeout=(timeout if timeout is not None else self.timeout) + wait,
                )
            except httpx.TransportError as e:
                if (idempotent or is_unsent(e)) and attempt < policy.attempts:
                    await asyncio.sleep(policy.delay(attempt))
                    continue
                raise TransportError(f"{method} {path}: {type(e).__name__}: {e}") from e
            if resp.status_code >= 400:
                err = error_of(resp)
                if err.transient and idempotent and attempt < policy.attempts:
                    await asyncio.sleep(policy.delay(attempt, err.retry_after))
                    continue
                raise err
            return decode(resp)

    async def _pages(
        self,
        path: str,
        field: str,
        parse: Callable[[Any], T],
        limit: Optional[int],
        cursor: Optional[str],
        **params: Any,
    ) -> Page[T]:
        body = await self._request("GET", path, params=query(limit=limit, cursor=cursor, **params))
        try:
            return Page([parse(x) for x in body[field]], body.get("next_cursor"))
        except (KeyError, TypeError, ValueError) as e:
            raise DecodeError(f"GET {path}: {e}") from e

    async def _iter_pages(
        self,
        path: str,
        field: str,
        parse: Callable[[Any], T],
        limit: Optional[int],
        cursor: Optional[str],
        **params: Any,
    ) -> AsyncIterator[T]:
        while True:
            page = await self._pages(path, field, parse, limit, cursor, **params)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # ----- operations -----

    async def health(self) -> bool:
        """`GET /healthz`: True when the server is serving."""
        try:
            resp = await self._http.get(f"{self.url}/healthz", timeout=self.timeout)
        except httpx.TransportError as e:
            raise TransportError(f"GET /healthz: {type(e).__name__}: {e}") from e
        return resp.status_code == 200

    async def metrics(self) -> str:
        """`GET /metrics`: the Prometheus text."""
        try:
            resp = await self._http.get(
                f"{self.url}/metrics", headers=self._headers, timeout=self.timeout
            )
        except httpx.TransportError as e:
            raise TransportError(f"GET /metrics: {type(e).__name__}: {e}") from e
        if resp.status_code >= 400:
            raise error_of(resp)
        return resp.text

    async def openapi(self) -> Dict[str, Any]:
        """`GET /v1/openapi.json`: the API as OpenAPI 3."""
        doc: Dict[str, Any] = await self._request("GET", "/openapi.json")
        return doc

    # ----- orgs and reservations -----

    async def create_org(
        self, id: str, limit: Optional[int] = None, *, plan: Optional[str] = None
    ) -> Org:
        """Creates an org (operator key) with its own ``limit``, or on a
        ``plan`` (it takes the plan's limit unless ``limit`` is given, and its
        burst). Not retried after it may have reached the server: a repeat
        would answer `org_exists`."""
        req: Dict[str, Any] = {"id": id}
        if limit is not None:
            req["limit"] = limit
        if plan is not None:
            req["plan"] = plan
        body = await self._request("POST", "/orgs", body=req, idempotent=False)
        return Org.from_json(body)

    async def list_plans(self) -> List[Plan]:
        """Every plan, with how many orgs are on each (operator key)."""
        body = await self._request("GET", "/plans")
        return [Plan.from_json(p) for p in body["plans"]]

    async def get_plan(self, plan: str) -> Plan:
        """One plan (operator key); `PlanNotFound` if there is none."""
        return Plan.from_json(await self._request("GET", f"/plans/{seg(plan)}"))

    async def create_plan(self, id: str, limit: int, burst: int = 0) -> Plan:
        """Creates a plan (operator key); `PlanExists` if the id is taken."""
        body = await self._request(
            "POST", "/plans", body={"id": id, "limit": limit, "burst": burst}, idempotent=False
        )
        return Plan.from_json(body)

    async def update_plan(
        self, plan: str, *, limit: Optional[int] = None, burst: Optional[int] = None
    ) -> Plan:
        """Changes a plan's limit, burst or both (None: unchanged), and with it
        every org on it that takes them, in one change; or refuses it whole
        (`PlanBelowReservations`, naming the orgs in the way) and changes
        nothing (operator key)."""
        req: Dict[str, Any] = {}
        if limit is not None:
            req["limit"] = limit
        if burst is not None:
            req["burst"] = burst
        body = await self._request("PATCH", f"/plans/{seg(plan)}", body=req)
        return Plan.from_json(body)

    async def delete_plan(self, plan: str) -> None:
        """Deletes a plan; `PlanInUse` while orgs are on it (operator key)."""
        await self._request("DELETE", f"/plans/{seg(plan)}", idempotent=False)

    async def set_org_plan(self, org: str, plan: Optional[str]) -> Org:
        """Puts an org on a plan: it takes the plan's limit and burst (its own
        are cleared); `LimitBelowReservations` if the plan's limit is below
        its reservations. None takes it off plans, keeping its limit and
        burst as its own (operator key)."""
        body = await self._request("PUT", f"/orgs/{seg(org)}/plan", body={"plan": plan})
        return Org.from_json(body)

    async def orgs_page(
        self, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Page[Org]:
        """One page of orgs (operator key)."""
        return await self._pages("/orgs", "orgs", Org.from_json, limit, cursor)

    def list_orgs(
        self, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> AsyncIterator[Org]:
        """Every org from `cursor` on, fetched `limit` a page (operator key)."""
        return self._iter_pages("/orgs", "orgs", Org.from_json, limit, cursor)

    async def get_org(self, org: str) -> Org:
        """An org's concurrency snapshot."""
        return Org.from_json(await self._request("GET", f"/orgs/{seg(org)}"))

    async def set_limit(self, org: str, limit: Optional[int]) -> Org:
        """Sets an org's own limit, overriding its plan's (operator key);
        `LimitBelowReservations` if below them. None returns it to its plan's
        limit (`NoPlan` for an org on no plan)."""
        body = await self._request("PUT", f"/orgs/{seg(org)}/limit", body={"limit": limit})
        return Org.from_json(body)

    async def set_burst(self, org: str, burst: Optional[int]) -> Org:
        """Sets an org's own burst, the slots it may use above its limit once
        the whole limit is in use (operator key). None returns it to its
        plan's burst (`NoPlan` for an org on no plan)."""
        body = await self._request("PUT", f"/orgs/{seg(org)}/burst", body={"burst": burst})
        return Org.from_json(body)

    async def set_caps(
        self,
        org: str,
        agent: str,
        *,
        webcall: Optional[int] = None,
        chat: Optional[int] = None,
        outbound: Optional[int] = None,
        inbound: Optional[int] = None,
        total: Optional[int] = None,
    ) -> Agent:
        """Sets an agent's caps, all five at once (one left out: no cap);
        `CapBelowReservation` (with `reserved`, the lowest allowed) if a cap
        would be below the reservation it covers."""
        caps = Caps(webcall=webcall, chat=chat, outbound=outbound, inbound=inbound, total=total)
        body = await self._request(
            "PUT", f"/orgs/{seg(org)}/agents/{seg(agent)}/caps", body=caps.to_json()
        )
        return Agent.from_json(body)

    async def get_agent(self, org: str, agent: str) -> Agent:
        """One agent (zeros if never seen)."""
        return Agent.from_json(await self._request("GET", f"/orgs/{seg(org)}/agents/{seg(agent)}"))

    async def set_reservations(
        self,
        org: str,
        agent: str,
        *,
        webcall: int = 0,
        chat: int = 0,
        outbound: int = 0,
        inbound: int = 0,
    ) -> Agent:
        """Sets an agent's four reservations (a type left out is 0);
        `ReservationsExceedLimit` (with `available`) if the org's sum would pass its limit."""
        body = await self._request(
            "PUT",
            f"/orgs/{seg(org)}/agents/{seg(agent)}/reservations",
            body={"webcall": webcall, "chat": chat, "outbound": outbound, "inbound": inbound},
        )
        return Agent.from_json(body)

    async def remove_reservations(self, org: str, agent: str) -> Agent:
        """Sets an agent's reservations to 0; its slots return to the shared pool."""
        body = await self._request("DELETE", f"/orgs/{seg(org)}/agents/{seg(agent)}/reservations")
        return Agent.from_json(body)

    async def history(self, org: str) -> History:
        """Active and queued calls over the last 15 minutes (the dashboard's chart)."""
        return History.from_json(await self._request("GET", f"/orgs/{seg(org)}/history"))

    async def usage(
        self,
        org: str,
        *,
        from_: Optional[str] = None,
        to: Optional[str] = None,
        step: Optional[str] = None,
    ) -> Usage:
        """The org's usage by UTC hour (`step="1h"`, the default) or day
        (`"1d"`) from `from_` to `to` (RFC 3339 UTC): peaks, seconds at the
        limit, burst, calls admitted, waited and given up, per call type and
        overall. Org admin or operator key."""
        params = query(to=to, step=step)
        if from_ is not None:
            params["from"] = from_
        return Usage.from_json(await self._request("GET", f"/orgs/{seg(org)}/usage", params=params))

    # ----- calls -----

    async def acquire(
        self,
        org: str,
        *,
        agent: str,
        type: Union[CallType, str],
        id: Optional[str] = None,
        lease_ttl: Optional[float] = None,
        max_wait: Optional[float] = None,
        wait: float = 0.0,
        if_blocked: Optional[str] = None,
    ) -> AsyncPermit:
        """`POST /v1/orgs/{org}/calls`: one request, returning at once (or within
        `wait` seconds) with the call active or queued. The id is made here
        when not given, so the request is retried safely; the same id again is
        the same call (`permit.status` 200). With ``if_blocked="refuse"``, a
        call the org can never admit as configured now raises
        :class:`CallBlocked` instead of queueing (``"queue"``, the default,
        queues it with its `blocked` reason).

        The permit neither heartbeats nor releases by itself: see :meth:`slot`.
        """
        call_id = id or new_call_id()
        body: Dict[str, Any] = {"id": call_id, "agent": agent, "type": CallType(type).value}
        if lease_ttl is not None:
            body["lease_ttl_s"] = lease_ttl
        if max_wait is not None:
            body["max_wait_s"] = max_wait
        if wait:
            body["wait_s"] = wait
        if if_blocked is not None:
            body["if_blocked"] = if_blocked
        permit = AsyncPermit(self, org, call_id, lease_ttl=lease_ttl)
        status, call = await self._acquire(org, body, wait)
        permit._update(call)
        permit.status = status
        return permit

    async def _acquire(self, org: str, body: Dict[str, Any], wait: float) -> tuple[int, Call]:
        # Like _request, but the status (201/202/200) matters.
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = await self._http.post(
                    f"{self.url}/v1/orgs/{seg(org)}/calls",
                    json=body,
                    headers=self._headers,
                    timeout=self.timeout + wait,
                )
            except httpx.TransportError as e:
                if attempt < self.retry.attempts:
                    await asyncio.sleep(self.retry.delay(attempt))
                    continue
                raise TransportError(f"POST /orgs/{org}/calls: {type(e).__name__}: {e}") from e
            if resp.status_code >= 400:
                err = error_of(resp)
                if err.transient and attempt < self.retry.attempts:
                    await asyncio.sleep(self.retry.delay(attempt, err.retry_after))
                    continue
                raise err
            return resp.status_code, Call.from_json(decode(resp))

    def permit(self, org: str, id: str, *, lease_ttl: Optional[float] = None) -> AsyncPermit:
        """A permit for a call acquired earlier (e.g. in another webhook), by id.
        Makes no request."""
        return AsyncPermit(self, org, id, lease_ttl=lease_ttl)

    async def get_call(self, org: str, id: str, *, wait: float = 0.0) -> Call:
        """One call; with `wait` (up to 60 s), blocks while it is queued (and holds it)."""
        body = await self._request(
            "GET",
            f"/orgs/{seg(org)}/calls/{seg(id)}",
            params=query(wait_s=wait) if wait else None,
            wait=wait,
        )
        return Call.from_json(body)

    async def heartbeat(
        self,
        org: str,
        id: str,
        *,
        lease_ttl: Optional[float] = None,
        retry: Optional[Retry] = None,
        timeout: Optional[float] = None,
    ) -> Call:
        """Renews a call's lease (or a queued call's hold); `CallEnded` (with
        `.call`) if it has ended."""
        body = {} if lease_ttl is None else {"lease_ttl_s": lease_ttl}
        answer = await self._request(
            "POST",
            f"/orgs/{seg(org)}/calls/{seg(id)}/heartbeat",
            body=body,
            retry=retry,
            timeout=timeout,
        )
        return Call.from_json(answer)

    async def release(self, org: str, id: str) -> Call:
        """Ends a call: `released` if active, `cancelled` if queued; an ended
        call answers as it ended."""
        return Call.from_json(await self._request("DELETE", f"/orgs/{seg(org)}/calls/{seg(id)}"))

    async def calls_page(
        self,
        org: str,
        *,
        state: Union[CallState, str, None] = None,
        agent: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[Call]:
        """One page of live calls: active ones, then queued ones in queue order."""
        return await self._pages(
            f"/orgs/{seg(org)}/calls",
            "calls",
            Call.from_json,
            limit,
            cursor,
            state=state,
            agent=agent,
        )

    def list_calls(
        self,
        org: str,
        *,
        state: Union[CallState, str, None] = None,
        agent: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> AsyncIterator[Call]:
        """Every live call from `cursor` on, `limit` a page."""
        return self._iter_pages(
            f"/orgs/{seg(org)}/calls",
            "calls",
            Call.from_json,
            limit,
            cursor,
            state=state,
            agent=agent,
        )

    # ----- keys -----

    async def create_key(self, org: str, *, role: Union[KeyRole, str], name: str) -> NewKey:
        """Creates an org key; its secret is in this answer only. Not retried
        after it may have reached the server (a repeat makes a second key)."""
        body = await self._request(
            "POST",
            f"/orgs/{seg(org)}/keys",
            body={"role": KeyRole(role).value, "name": name},
            idempotent=False,
        )
        return NewKey.from_json(body)

    async def keys_page(
        self, org: str, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Page[KeyInfo]:
        """One page of an org's keys."""
        return await self._pages(f"/orgs/{seg(org)}/keys", "keys", KeyInfo.from_json, limit, cursor)

    def list_keys(
        self, org: str, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> AsyncIterator[KeyInfo]:
        """Every key of an org."""
        return self._iter_pages(f"/orgs/{seg(org)}/keys", "keys", KeyInfo.from_json, limit, cursor)

    async def revoke_key(self, org: str, id: str) -> None:
        """Revokes a key; it stops working at once."""
        path = f"/orgs/{seg(org)}/keys/{seg(id)}"
        try:
            await self._request("DELETE", path, retry=NO_RETRY)
            return
        except TransportError:
            pass
        except ApiError as e:
            if not e.transient:
                raise
        # The first attempt may have revoked it: a retry that finds it gone is a success.
        with contextlib.suppress(KeyNotFound):
            await self._request("DELETE", path)

    # ----- events -----

    async def events(
        self,
        org: str,
        *,
        after: int = 0,
        limit: Optional[int] = None,
        wait: float = 0.0,
    ) -> EventPage:
        """Events with a seq above `after`, oldest first; with `wait` (up to
        60 s), long-polls while there are none."""
        body = await self._request(
            "GET",
            f"/orgs/{seg(org)}/events",
            params=query(after=after, limit=limit, wait_s=wait or None),
            wait=wait,
        )
        return EventPage.from_json(body)

    async def follow_events(
        self, org: str, *, after: int = 0, wait: float = LONG_POLL_S
    ) -> AsyncIterator[Event]:
        """Every event after `after`, then each new one as it happens, by long-polls. Endless."""
        while True:
            page = await self.events(org, after=after, wait=wait)
            for e in page.events:
                yield e
            after = page.next

    async def stream_events(self, org: str, *, after: Optional[int] = None) -> AsyncIterator[Event]:
        """The org's events as server-sent events: after `after`, or (None)
        only those from now on. Ends when the server closes the stream."""
        async with self.event_stream(org, after=after) as events:
            async for e in events:
                yield e

    @contextlib.asynccontextmanager
    async def event_stream(
        self, org: str, *, after: Optional[int] = None
    ) -> AsyncIterator[AsyncIterator[Event]]:
        """The SSE stream as ``async with client.event_stream(org) as events:
        async for e in events: ...``. Once the ``async with`` is entered the
        server is subscribed: no event from then on is missed."""
        req = self._http.build_request(
            "GET",
            f"{self.url}/v1/orgs/{seg(org)}/events/stream",
            params=query(after=after),
            headers={**self._headers, "Accept": "text/event-stream"},
            timeout=httpx.Timeout(self.timeout, read=None),
        )
        try:
            resp = await self._http.send(req, stream=True)
        except httpx.TransportError as e:
            raise TransportError(f"GET /orgs/{org}/events/stream: {e}") from e
        try:
            if resp.status_code >= 400:
                await resp.aread()
                raise error_of(resp)

            async def events() -> AsyncIterator[Event]:
                parser = SseParser()
                try:
                    async for line in resp.aiter_lines():
                        event = parser.feed(line)
                        if event is not None:
                            yield event
                except httpx.TransportError as e:
                    raise TransportError(f"event stream of {org}: {e}") from e

            yield events()
        finally:
            await resp.aclose()

    # ----- holding a slot -----

    def slot(
        self,
        org: str,
        *,
        agent: str,
        type: Union[CallType, str],
        id: Optional[str] = None,
        max_wait: Optional[float] = None,
        lease_ttl: float = 60.0,
        on_position: Optional[PositionCallback] = None,
        on_lost: Optional[LostCallback] = None,
        heartbeat_every: Optional[float] = None,
        if_blocked: Optional[str] = None,
    ) -> AsyncSlotContext:
        """Holds a slot for an ``async with`` block.

        Entering acquires (with `id`, or one made here, so retries are safe)
        and waits through the queue with long-polls, calling `on_position`
        with the queue position (a :class:`Position`, which carries the
        expected wait too) at once and on every change; a `max_wait`
        that passes raises :class:`QueueTimeout`. Inside, the lease is renewed
        in the background every third of `lease_ttl`; if the slot is lost
        (the server says the call ended) the permit's `lost` is set and
        `on_lost` is called with the ended call. A server that does not
        answer for a whole lease makes the slot `in_doubt`, not lost: a
        restarted server restores its calls with a grace lease, so the
        heartbeats go on until the server answers, one way or the other. Leaving releases the slot,
        whether the block ended normally, raised, or was cancelled; a
        cancelled wait cancels the queued call. With ``if_blocked="refuse"``,
        a call the org can never admit as configured now raises
        :class:`CallBlocked` on entering, and nothing is queued.
        """
        return AsyncSlotContext(
            self,
            org,
            agent=agent,
            type=CallType(type),
            id=id,
            max_wait=max_wait,
            lease_ttl=lease_ttl,
            on_position=on_position,
            on_lost=on_lost,
            heartbeat_every=heartbeat_every,
            if_blocked=if_blocked,
        )


class _Positions:
    """Reports queue positions: the first at once, then each lower one."""

    def __init__(self, callback: Optional[PositionCallback]) -> None:
        self.callback = callback
        self.last: Optional[int] = None

    async def report(self, call: Call) -> None:
        if self.callback is None or not call.queued or call.position is None:
            return
        if self.last is not None and call.position >= self.last:
            return
        self.last = call.position
        try:
            await _maybe_await(self.callback(Position(call.position, call.estimated_wait_s)))
        except Exception:
            log.exception("slotgate: on_position raised")


class AsyncPermit:
    """One call of an org: the handle to wait for, heartbeat and release it.

    Made by :meth:`AsyncClient.acquire` (manual: nothing happens in the
    background), by :meth:`AsyncClient.permit` (for a call acquired earlier),
    or yielded by :meth:`AsyncClient.slot` (which heartbeats and releases).
    """

    def __init__(
        self, client: AsyncClient, org: str, id: str, *, lease_ttl: Optional[float] = None
    ) -> None:
        self.client = client
        self.org = org
        self.id = id
        #: The call as last seen.
        self.call: Optional[Call] = None
        #: The HTTP status of the acquire: 201 admitted, 202 queued, 200 existing.
        self.status: Optional[int] = None
        #: Heartbeats that succeeded (background ones included).
        self.heartbeats = 0
        self._lease_ttl = lease_ttl
        self._lost = False
        self._in_doubt = False
        self._lost_call: Optional[Call] = None
        self._lost_event: Optional[asyncio.Event] = None
        self._heartbeat_task: Optional[asyncio.Task[None]] = None

    def __repr__(self) -> str:
        state = self.call.state.value if self.call else "?"
        return f"<AsyncPermit {self.org}/{self.id} {state}{' lost' if self._lost else ''}>"

    # The call's fields, as last seen.

    @property
    def state(self) -> Optional[CallState]:
        return self.call.state if self.call else None

    @property
    def slot(self) -> Optional[Slot]:
        """`reserved` or `shared` once admitted."""
        return self.call.slot if self.call else None

    @property
    def position(self) -> Optional[int]:
        return self.call.position if self.call else None

    @property
    def estimated_wait_s(self) -> Optional[float]:
        """While queued, the expected wait as last seen (see :attr:`Call.estimated_wait_s`)."""
        return self.call.estimated_wait_s if self.call else None

    @property
    def active(self) -> bool:
        return self.call is not None and self.call.active

    @property
    def queued(self) -> bool:
        return self.call is not None and self.call.queued

    @property
    def lease_ttl(self) -> float:
        if self.call is not None and self.call.lease_ttl_s:
            return self.call.lease_ttl_s
        return self._lease_ttl or 60.0

    # Lost.

    @property
    def lost(self) -> bool:
        """The slot was lost: the server says the call ended without us."""
        return self._lost

    @property
    def in_doubt(self) -> bool:
        """The background heartbeats have had no answer for longer than the
        lease: the server is down or out of reach. The slot is not lost yet
        (a restarted server restores its calls with a grace lease); the
        heartbeats go on, and this turns False again when the server renews
        the lease, or the slot is `lost` when the server says it ended."""
        return self._in_doubt

    @property
    def lost_call(self) -> Optional[Call]:
        """The call as it ended, once lost (None only if the server no longer knows it)."""
        return self._lost_call

    async def wait_lost(self) -> Optional[Call]:
        """Returns when the slot is lost (never while it is kept alive)."""
        if not self._lost:
            if self._lost_event is None:
                self._lost_event = asyncio.Event()
            await self._lost_event.wait()
        return self._lost_call

    def _lose(self, call: Optional[Call]) -> None:
        self._lost = True
        self._lost_call = call
        if call is not None:
            self.call = call
        if self._lost_event is not None:
            self._lost_event.set()

    def _update(self, call: Call) -> None:
        self.call = call

    # Requests.

    async def refresh(self) -> Call:
        """Reads the call now."""
        call = await self.client.get_call(self.org, self.id)
        self._update(call)
        return call

    async def heartbeat(self, *, lease_ttl: Optional[float] = None) -> Call:
        """Renews the lease (or the queued call's hold). `CallEnded` if the
        call has ended; the permit is then `lost`."""
        try:
            call = await self.client.heartbeat(self.org, self.id, lease_ttl=lease_ttl)
        except CallEnded as e:
            self._lose(e.call)
            raise
        self._update(call)
        self.heartbeats += 1
        return call

    async def release(self) -> Call:
        """Ends the call: releases the slot, or cancels the queued call. Idempotent."""
        await self._stop_heartbeats()
        call = await self.client.release(self.org, self.id)
        self._update(call)
        return call

    async def wait(
        self,
        timeout: Optional[float] = None,
        *,
        on_position: Optional[PositionCallback] = None,
    ) -> Call:
        """Waits while the call is queued, holding it with long-polls.

        Returns the call once active, or still queued when `timeout` seconds
        pass. Raises :class:`QueueTimeout` if its `max_wait` passed, and
        :class:`EndedWhileQueued` if it ended in the queue for another reason.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        call = self.call or await self.refresh()
        positions = _Positions(on_position)
        await positions.report(call)
        watcher: Optional[asyncio.Task[None]] = None
        if on_position is not None and call.queued:
            watcher = asyncio.ensure_future(self._watch_positions(positions))
        try:
            last_ok = time.monotonic()
            while call.queued:
                poll = self.client.long_poll
                if deadline is not None:
                    poll = min(poll, deadline - time.monotonic())
                    if poll <= 0:
                        return call
                try:
                    call = await self.client.get_call(self.org, self.id, wait=poll)
                    last_ok = time.monotonic()
                except (TransportError, ApiError) as e:
                    # Keep trying through a passing fault (e.g. a server
                    # restart) for as long as the hold could last.
                    if isinstance(e, ApiError) and not e.transient:
                        raise
                    if time.monotonic() - last_ok > self.lease_ttl:
                        raise
                    await asyncio.sleep(random.uniform(0.25, 1.0))
                    continue
                self._update(call)
                await positions.report(call)
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(BaseException):
                    await watcher
        if call.ended:
            if call.end_reason is EndReason.TIMED_OUT:
                raise QueueTimeout(call, f"call {call.id}: max_wait passed in the queue")
            raise EndedWhileQueued(call)
        return call

    async def _watch_positions(self, positions: _Positions) -> None:
        """Re-reads the call when the org's queue moves, so every new position
        is reported, not only those seen at the end of a long-poll."""
        # Only a queued call leaving the queue moves the calls behind it up: one
        # admitted from the queue, or one ended while queued. (An active call
        # ending frees a slot; the call that then leaves the queue has its own
        # `call.admitted`.)
        queue_exits = (EndReason.CANCELLED, EndReason.ABANDONED, EndReason.TIMED_OUT)
        queued_since: Set[str] = set()
        try:
            async with self.client.event_stream(self.org) as events:
                # Subscribed: nothing that happens from now on is missed.
                call = await self.client.get_call(self.org, self.id)
                await positions.report(call)
                async for e in events:
                    # A new lease length moves nobody, this call included.
                    if e.type == "call.lease_changed":
                        continue
                    if e.call == self.id:
                        return
                    if e.type == "call.queued" and e.call is not None:
                        queued_since.add(e.call)
                        continue
                    moved = (
                        e.type == "call.admitted"
                        and (e.call in queued_since or (e.waited_ms or 0) > 0)
                    ) or (e.type == "call.ended" and e.reason in queue_exits)
                    if not moved:
                        continue
                    call = await self.client.get_call(self.org, self.id)
                    await positions.report(call)
                    if not call.queued:
                        return
        except (SlotgateError, httpx.HTTPError) as e:
            # The long-polls still report what they see.
            log.debug("slotgate: position watch of %s stopped: %s", self.id, e)

    # Background heartbeats.

    def _start_heartbeats(self, every: float, on_lost: Optional[LostCallback]) -> None:
        self._heartbeat_task = asyncio.ensure_future(self._heartbeat_loop(every, on_lost))

    async def _stop_heartbeats(self) -> None:
        task, self._heartbeat_task = self._heartbeat_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def _heartbeat_loop(self, every: float, on_lost: Optional[LostCallback]) -> None:
        """Renews the lease every `every` seconds until cancelled.

        Only the server's word loses the slot: 410 (the call ended; `on_lost`
        gets it) or 404 (the server no longer knows the call). A server that
        does not answer, for however long, is asked again every second or so,
        since a restarted server gives every restored call a grace of one
        lease from the moment it serves again."""
        ttl = self.lease_ttl
        last_ok = time.monotonic()
        next_at = last_ok + every
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            sent = time.monotonic()
            lost: Optional[Call] = None
            # A request that hangs must not outlast the lease it is renewing;
            # once the lease is in doubt, each try may take a heartbeat period.
            left = last_ok + ttl - sent
            timeout = min(self.client.timeout, max(0.5, left if left > 0 else every))
            try:
                call = await self.client.heartbeat(
                    self.org, self.id, retry=NO_RETRY, timeout=timeout
                )
            except CallEnded as e:
                lost = e.call
            except CallNotFound:
                lost = None
            except (TransportError, ApiError, DecodeError) as e:
                now = time.monotonic()
                if now >= last_ok + ttl and not self._in_doubt:
                    self._in_doubt = True
                    log.warning(
                        "slotgate: no answer to the heartbeats of %s for a whole lease; "
                        "asking the server until it says whether the slot is kept: %s",
                        self.id,
                        e,
                    )
                else:
                    log.info("slotgate: heartbeat of %s failed, retrying: %s", self.id, e)
                next_at = now + min(1.0, every) * random.uniform(0.5, 1.0)
                continue
            else:
                if self._in_doubt:
                    log.warning("slotgate: the server answered again: %s keeps its slot", self.id)
                    self._in_doubt = False
                self._update(call)
                self.heartbeats += 1
                last_ok = sent
                next_at = sent + every
                continue
            self._in_doubt = False
            self._lose(lost)
            if on_lost is not None:
                try:
                    await _maybe_await(on_lost(lost))
                except Exception:
                    log.exception("slotgate: on_lost raised")
            return


class AsyncSlotContext:
    """What :meth:`AsyncClient.slot` returns: ``async with`` it to hold a slot."""

    def __init__(
        self,
        client: AsyncClient,
        org: str,
        *,
        agent: str,
        type: CallType,
        id: Optional[str],
        max_wait: Optional[float],
        lease_ttl: float,
        on_position: Optional[PositionCallback],
        on_lost: Optional[LostCallback],
        heartbeat_every: Optional[float],
        if_blocked: Optional[str] = None,
    ) -> None:
        self.client = client
        self.org = org
        self.agent = agent
        self.type = type
        self.id = id or new_call_id()
        self.max_wait = max_wait
        self.lease_ttl = lease_ttl
        self.on_position = on_position
        self.on_lost = on_lost
        self.heartbeat_every = heartbeat_every or lease_ttl / 3
        self.if_blocked = if_blocked
        self.permit: Optional[AsyncPermit] = None

    async def __aenter__(self) -> AsyncPermit:
        # With a position to report, ask without waiting first, so the first
        # position is reported at once; else the acquire itself long-polls.
        wait = 0.0 if self.on_position is not None else self.client.long_poll
        permit: Optional[AsyncPermit] = None
        try:
            permit = await self.client.acquire(
                self.org,
                agent=self.agent,
                type=self.type,
                id=self.id,
                lease_ttl=self.lease_ttl,
                max_wait=self.max_wait,
                wait=wait,
                if_blocked=self.if_blocked,
            )
            await permit.wait(on_position=self.on_position)
        except BaseException:
            # Cancelled, timed out or failed while waiting: do not leave the
            # call queued (or holding a slot admitted at the last moment).
            await _shielded(self._end_quietly())
            raise
        self.permit = permit
        permit._start_heartbeats(self.heartbeat_every, self.on_lost)
        return permit

    async def _end_quietly(self) -> None:
        try:
            call = await self.client.release(self.org, self.id)
        except CallNotFound:
            return
        except SlotgateError as e:
            # The lease (or the queue's hold) frees it in time anyway.
            log.warning("slotgate: could not end call %s: %s", self.id, e)
            return
        if self.permit is not None:
            self.permit._update(call)

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        permit = self.permit
        if permit is None:
            return
        await _shielded(permit._stop_heartbeats())
        await _shielded(self._end_quietly())

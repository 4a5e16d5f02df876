"""The blocking client: the asyncio client run on a private event loop thread.

Every method of :class:`Client` runs the same code as :class:`AsyncClient`
(same waits, heartbeats and retries); background heartbeats of a held slot
run on that thread, and so do the `on_position` and `on_lost` callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType
from typing import (
    Any,
    AsyncIterator,
    Coroutine,
    Dict,
    Iterator,
    List,
    Optional,
    Type,
    TypeVar,
    Union,
)

from ._async import AsyncClient, AsyncPermit, AsyncSlotContext, LostCallback, PositionCallback
from ._http import LONG_POLL_S, Retry
from ._types import (
    Agent,
    Call,
    CallState,
    CallType,
    Event,
    EventPage,
    History,
    KeyInfo,
    KeyRole,
    NewKey,
    Org,
    Page,
    Plan,
    Slot,
    Usage,
)

T = TypeVar("T")


class _Portal:
    """An event loop on a daemon thread, and a way to run coroutines on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="slotgate-client", daemon=True)
        self._thread.start()
        self.closed = False

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self.closed:
            coro.close()
            raise RuntimeError("this slotgate Client is closed")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a blocking slotgate Client cannot be used from its own callbacks")
        finished = threading.Event()

        async def run() -> T:
            try:
                return await coro
            finally:
                finished.set()

        fut = asyncio.run_coroutine_threadsafe(run(), self.loop)
        try:
            return fut.result()
        except BaseException:
            if not fut.done():
                # Interrupted here (e.g. KeyboardInterrupt): cancel it there,
                # and let its cleanup (cancelling a queued call) run.
                fut.cancel()
                finished.wait(30)
            raise

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()

    def iterate(self, it: AsyncIterator[T]) -> Iterator[T]:
        try:
            while True:
                try:
                    yield self.call(_next(it))
                except StopAsyncIteration:
                    return
        finally:
            aclose = getattr(it, "aclose", None)
            if aclose is not None and not self.closed:
                self.call(aclose())


async def _next(it: AsyncIterator[T]) -> T:
    return await it.__anext__()


class Client:
    """A blocking slotgate client; the same methods as :class:`AsyncClient`.

    ``Client("http://127.0.0.1:7878", key)``; use it as ``with`` or call
    :meth:`close` when done.
    """

    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: float = 10.0,
        retry: Optional[Retry] = None,
        long_poll: float = LONG_POLL_S,
    ) -> None:
        self._portal = _Portal()
        self._async = AsyncClient(url, key, timeout=timeout, retry=retry, long_poll=long_poll)

    @property
    def aio(self) -> AsyncClient:
        """The asyncio client underneath (its loop is this client's thread)."""
        return self._async

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connections and stops the client's thread."""
        if not self._portal.closed:
            self._portal.call(self._async.aclose())
            self._portal.close()

    # ----- operations -----

    def health(self) -> bool:
        """`GET /healthz`: True when the server is serving."""
        return self._portal.call(self._async.health())

    def metrics(self) -> str:
        """`GET /metrics`: the Prometheus text."""
        return self._portal.call(self._async.metrics())

    def openapi(self) -> Dict[str, Any]:
        """`GET /v1/openapi.json`."""
        return self._portal.call(self._async.openapi())

    # ----- orgs and reservations -----

    def create_org(
        self, id: str, limit: Optional[int] = None, *, plan: Optional[str] = None
    ) -> Org:
        """Creates an org with its own ``limit``, or on a ``plan`` (operator key)."""
        return self._portal.call(self._async.create_org(id, limit, plan=plan))

    def list_plans(self) -> List[Plan]:
        """Every plan, with how many orgs are on each (operator key)."""
        return self._portal.call(self._async.list_plans())

    def get_plan(self, plan: str) -> Plan:
        """One plan (operator key)."""
        return self._portal.call(self._async.get_plan(plan))

    def create_plan(self, id: str, limit: int, burst: int = 0) -> Plan:
        """Creates a plan (operator key)."""
        return self._portal.call(self._async.create_plan(id, limit, burst))

    def update_plan(
        self, plan: str, *, limit: Optional[int] = None, burst: Optional[int] = None
    ) -> Plan:
        """Changes a plan, and every org on it that takes its terms, in one
        change, or refuses it whole (`PlanBelowReservations`) (operator key)."""
        return self._portal.call(self._async.update_plan(plan, limit=limit, burst=burst))

    def delete_plan(self, plan: str) -> None:
        """Deletes a plan no org is on (operator key)."""
        return self._portal.call(self._async.delete_plan(plan))

    def set_org_plan(self, org: str, plan: Optional[str]) -> Org:
        """Puts an org on a plan (None: off plans) (operator key)."""
        return self._portal.call(self._async.set_org_plan(org, plan))

    def orgs_page(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> Page[Org]:
        """One page of orgs (operator key)."""
        return self._portal.call(self._async.orgs_page(limit=limit, cursor=cursor))

    def list_orgs(
        self, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Iterator[Org]:
        """Every org from `cursor` on, `limit` a page (operator key)."""
        return self._portal.iterate(self._async.list_orgs(limit=limit, cursor=cursor))

    def get_org(self, org: str) -> Org:
        """An org's concurrency snapshot."""
        return self._portal.call(self._async.get_org(org))

    def set_limit(self, org: str, limit: Optional[int]) -> Org:
        """Sets an org's own limit (None: back to its plan's) (operator key)."""
        return self._portal.call(self._async.set_limit(org, limit))

    def set_burst(self, org: str, burst: Optional[int]) -> Org:
        """Sets an org's own burst (None: back to its plan's) (operator key)."""
        return self._portal.call(self._async.set_burst(org, burst))

    def set_caps(
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
        """Sets an agent's caps, all five at once (one left out: no cap)."""
        return self._portal.call(
            self._async.set_caps(
                org,
                agent,
                webcall=webcall,
                chat=chat,
                outbound=outbound,
                inbound=inbound,
                total=total,
            )
        )

    def get_agent(self, org: str, agent: str) -> Agent:
        """One agent (zeros if never seen)."""
        return self._portal.call(self._async.get_agent(org, agent))

    def set_reservations(
        self,
        org: str,
        agent: str,
        *,
        webcall: int = 0,
        chat: int = 0,
        outbound: int = 0,
        inbound: int = 0,
    ) -> Agent:
        """Sets an agent's four reservations (a type left out is 0)."""
        return self._portal.call(
            self._async.set_reservations(
                org, agent, webcall=webcall, chat=chat, outbound=outbound, inbound=inbound
            )
        )

    def remove_reservations(self, org: str, agent: str) -> Agent:
        """Sets an agent's reservations to 0."""
        return self._portal.call(self._async.remove_reservations(org, agent))

    def history(self, org: str) -> History:
        """Active and queued calls over the last 15 minutes."""
        return self._portal.call(self._async.history(org))

    def usage(
        self,
        org: str,
        *,
        from_: Optional[str] = None,
        to: Optional[str] = None,
        step: Optional[str] = None,
    ) -> Usage:
        """The org's usage by UTC hour or day (see the async client's `usage`)."""
        return self._portal.call(self._async.usage(org, from_=from_, to=to, step=step))

    # ----- calls -----

    def acquire(
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
    ) -> Permit:
        """One acquire request; see :meth:`AsyncClient.acquire`."""
        permit = self._portal.call(
            self._async.acquire(
                org,
                agent=agent,
                type=type,
                id=id,
                lease_ttl=lease_ttl,
                max_wait=max_wait,
                wait=wait,
                if_blocked=if_blocked,
            )
        )
        return Permit(self, permit)

    def permit(self, org: str, id: str, *, lease_ttl: Optional[float] = None) -> Permit:
        """A permit for a call acquired earlier, by id. Makes no request."""
        return Permit(self, self._async.permit(org, id, lease_ttl=lease_ttl))

    def get_call(self, org: str, id: str, *, wait: float = 0.0) -> Call:
        """One call; with `wait`, blocks while it is queued (and holds it)."""
        return self._portal.call(self._async.get_call(org, id, wait=wait))

    def heartbeat(self, org: str, id: str, *, lease_ttl: Optional[float] = None) -> Call:
        """Renews a call's lease; `CallEnded` if it has ended."""
        return self._portal.call(self._async.heartbeat(org, id, lease_ttl=lease_ttl))

    def release(self, org: str, id: str) -> Call:
        """Ends a call (released or cancelled); idempotent."""
        return self._portal.call(self._async.release(org, id))

    def calls_page(
        self,
        org: str,
        *,
        state: Union[CallState, str, None] = None,
        agent: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[Call]:
        """One page of live calls."""
        return self._portal.call(
            self._async.calls_page(org, state=state, agent=agent, limit=limit, cursor=cursor)
        )

    def list_calls(
        self,
        org: str,
        *,
        state: Union[CallState, str, None] = None,
        agent: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Iterator[Call]:
        """Every live call, active ones first, then queued ones in queue order."""
        return self._portal.iterate(
            self._async.list_calls(org, state=state, agent=agent, limit=limit, cursor=cursor)
        )

    # ----- keys -----

    def create_key(self, org: str, *, role: Union[KeyRole, str], name: str) -> NewKey:
        """Creates an org key; its secret is in this answer only."""
        return self._portal.call(self._async.create_key(org, role=role, name=name))

    def keys_page(
        self, org: str, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Page[KeyInfo]:
        """One page of an org's keys."""
        return self._portal.call(self._async.keys_page(org, limit=limit, cursor=cursor))

    def list_keys(
        self, org: str, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Iterator[KeyInfo]:
        """Every key of an org."""
        return self._portal.iterate(self._async.list_keys(org, limit=limit, cursor=cursor))

    def revoke_key(self, org: str, id: str) -> None:
        """Revokes a key."""
        self._portal.call(self._async.revoke_key(org, id))

    # ----- events -----

    def events(
        self, org: str, *, after: int = 0, limit: Optional[int] = None, wait: float = 0.0
    ) -> EventPage:
        """Events after `after`; with `wait`, long-polls while there are none."""
        return self._portal.call(self._async.events(org, after=after, limit=limit, wait=wait))

    def follow_events(
        self, org: str, *, after: int = 0, wait: float = LONG_POLL_S
    ) -> Iterator[Event]:
        """Every event after `after`, then each new one, by long-polls. Endless."""
        return self._portal.iterate(self._async.follow_events(org, after=after, wait=wait))

    def stream_events(self, org: str, *, after: Optional[int] = None) -> Iterator[Event]:
        """The org's events as server-sent events (None: only new ones)."""
        return self._portal.iterate(self._async.stream_events(org, after=after))

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
    ) -> SlotContext:
        """Holds a slot for a ``with`` block; see :meth:`AsyncClient.slot`.
        The callbacks run on the client's thread."""
        return SlotContext(
            self,
            self._async.slot(
                org,
                agent=agent,
                type=type,
                id=id,
                max_wait=max_wait,
                lease_ttl=lease_ttl,
                on_position=on_position,
                on_lost=on_lost,
                heartbeat_every=heartbeat_every,
                if_blocked=if_blocked,
            ),
        )


class Permit:
    """The blocking twin of :class:`AsyncPermit`."""

    def __init__(self, client: Client, permit: AsyncPermit) -> None:
        self._client = client
        self._permit = permit

    def __repr__(self) -> str:
        return repr(self._permit).replace("AsyncPermit", "Permit")

    @property
    def org(self) -> str:
        return self._permit.org

    @property
    def id(self) -> str:
        return self._permit.id

    @property
    def call(self) -> Optional[Call]:
        """The call as last seen."""
        return self._permit.call

    @property
    def status(self) -> Optional[int]:
        """The HTTP status of the acquire: 201 admitted, 202 queued, 200 existing."""
        return self._permit.status

    @property
    def state(self) -> Optional[CallState]:
        return self._permit.state

    @property
    def slot(self) -> Optional[Slot]:
        return self._permit.slot

    @property
    def position(self) -> Optional[int]:
        return self._permit.position

    @property
    def estimated_wait_s(self) -> Optional[float]:
        return self._permit.estimated_wait_s

    @property
    def active(self) -> bool:
        return self._permit.active

    @property
    def queued(self) -> bool:
        return self._permit.queued

    @property
    def heartbeats(self) -> int:
        return self._permit.heartbeats

    @property
    def lost(self) -> bool:
        """The slot was lost: the server says the call ended without us."""
        return self._permit.lost

    @property
    def in_doubt(self) -> bool:
        """No answer to heartbeats for longer than the lease (:attr:`AsyncPermit.in_doubt`)."""
        return self._permit.in_doubt

    @property
    def lost_call(self) -> Optional[Call]:
        return self._permit.lost_call

    def wait_lost(self, timeout: Optional[float] = None) -> bool:
        """Blocks until the slot is lost or `timeout` passes; returns `lost`."""

        async def wait() -> None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._permit.wait_lost(), timeout)

        self._client._portal.call(wait())
        return self._permit.lost

    def refresh(self) -> Call:
        return self._client._portal.call(self._permit.refresh())

    def heartbeat(self, *, lease_ttl: Optional[float] = None) -> Call:
        return self._client._portal.call(self._permit.heartbeat(lease_ttl=lease_ttl))

    def release(self) -> Call:
        return self._client._portal.call(self._permit.release())

    def wait(
        self, timeout: Optional[float] = None, *, on_position: Optional[PositionCallback] = None
    ) -> Call:
        return self._client._portal.call(self._permit.wait(timeout, on_position=on_position))


class SlotContext:
    """What :meth:`Client.slot` returns: ``with`` it to hold a slot."""

    def __init__(self, client: Client, inner: AsyncSlotContext) -> None:
        self._client = client
        self._inner = inner

    @property
    def id(self) -> str:
        """The call's id (made by the client unless given)."""
        return self._inner.id

    def __enter__(self) -> Permit:
        return Permit(self._client, self._client._portal.call(self._inner.__aenter__()))

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self._client._portal.call(self._inner.__aexit__(exc_type, exc, tb))

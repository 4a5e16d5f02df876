"""The API's JSON shapes (API.md) as typed Python values."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, Generic, List, Mapping, Optional, TypeVar

T = TypeVar("T")


class CallType(str, enum.Enum):
    """The four kinds of call; they share the org's one pool."""

    WEBCALL = "webcall"
    CHAT = "chat"
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class CallState(str, enum.Enum):
    """`queued` -> `active` -> `ended`, or `queued` -> `ended`."""

    QUEUED = "queued"
    ACTIVE = "active"
    ENDED = "ended"


class Slot(str, enum.Enum):
    """Which part of the pool an active call counts against."""

    RESERVED = "reserved"
    SHARED = "shared"
    #: Above the org's limit, within its burst (only when the whole limit was in use).
    BURST = "burst"


class Source(str, enum.Enum):
    """Where an org's limit (or burst) comes from."""

    #: Its plan's: a change of the plan changes it.
    PLAN = "plan"
    #: Its own, set on the org: it overrides its plan's.
    ORG = "org"


class BlockedReason(str, enum.Enum):
    """Why a queued call can never be admitted as its org is configured now."""

    #: The org's limit and burst are both 0.
    LIMIT_ZERO = "limit_zero"
    #: Its agent's cap for its type, or its agent's total cap, is 0.
    CAP_ZERO = "cap_zero"
    #: Its agent reserves nothing for its type and reservations take the whole limit.
    NO_SHARED_CAPACITY = "no_shared_capacity"


class EndReason(str, enum.Enum):
    """Why a call ended."""

    RELEASED = "released"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    ABANDONED = "abandoned"
    TIMED_OUT = "timed_out"


class KeyRole(str, enum.Enum):
    """The role of an org key."""

    ADMIN = "admin"
    RUNTIME = "runtime"
    METRICS = "metrics"


def parse_time(value: Any) -> Optional[datetime]:
    """An RFC 3339 UTC time (`2026-11-23T20:00:00.123Z`), or None."""
    if value is None:
        return None
    text = str(value)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text)


def _opt_int(value: Any) -> Optional[int]:
    return None if value is None else int(value)


def _opt_float(value: Any) -> Optional[float]:
    return None if value is None else float(value)


def _opt_str(value: Any) -> Optional[str]:
    return None if value is None else str(value)


@dataclass(frozen=True)
class PerType:
    """A number per call type."""

    webcall: int = 0
    chat: int = 0
    outbound: int = 0
    inbound: int = 0

    @property
    def total(self) -> int:
        """The sum over the four types."""
        return self.webcall + self.chat + self.outbound + self.inbound

    def __getitem__(self, call_type: CallType | str) -> int:
        return int(getattr(self, CallType(call_type).value))

    def to_json(self) -> Dict[str, int]:
        return {
            "webcall": self.webcall,
            "chat": self.chat,
            "outbound": self.outbound,
            "inbound": self.inbound,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PerType:
        return cls(
            webcall=int(d.get("webcall", 0)),
            chat=int(d.get("chat", 0)),
            outbound=int(d.get("outbound", 0)),
            inbound=int(d.get("inbound", 0)),
        )


@dataclass(frozen=True)
class Caps:
    """An agent's caps: the most active calls per call type and in total
    (None: no cap). A cap is never below the reservation it covers."""

    webcall: Optional[int] = None
    chat: Optional[int] = None
    outbound: Optional[int] = None
    inbound: Optional[int] = None
    total: Optional[int] = None

    def to_json(self) -> Dict[str, Optional[int]]:
        return {
            "webcall": self.webcall,
            "chat": self.chat,
            "outbound": self.outbound,
            "inbound": self.inbound,
            "total": self.total,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Caps:
        return cls(
            webcall=_opt_int(d.get("webcall")),
            chat=_opt_int(d.get("chat")),
            outbound=_opt_int(d.get("outbound")),
            inbound=_opt_int(d.get("inbound")),
            total=_opt_int(d.get("total")),
        )


@dataclass(frozen=True)
class Agent:
    """An agent's reservations, caps and usage."""

    id: str
    reserved: PerType
    active: PerType
    queued: PerType
    reserved_total: int
    reserved_in_use: int
    shared_in_use: int
    caps: Caps = field(default_factory=Caps)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Agent:
        return cls(
            id=str(d["id"]),
            reserved=PerType.from_json(d["reserved"]),
            active=PerType.from_json(d["active"]),
            queued=PerType.from_json(d["queued"]),
            reserved_total=int(d["reserved_total"]),
            reserved_in_use=int(d["reserved_in_use"]),
            shared_in_use=int(d["shared_in_use"]),
            caps=Caps.from_json(d.get("caps") or {}),
        )


@dataclass(frozen=True)
class Org:
    """An org's concurrency snapshot."""

    id: str
    limit: int
    reserved: int
    shared: int
    active: int
    queued: int
    shared_in_use: int
    agents: List[Agent]
    #: Slots it may use above its limit once the whole limit is in use.
    burst: int = 0
    #: Active calls above the limit: max(0, active - limit).
    burst_in_use: int = 0
    #: Queued calls that can never be admitted as the org is configured now.
    blocked: int = 0
    #: The plan it is on (None: none; its limit and burst are its own).
    plan: Optional[str] = None
    #: Where ``limit`` comes from: its plan's, or its own.
    limit_source: Source = Source.ORG
    #: Where ``burst`` comes from: its plan's, or its own.
    burst_source: Source = Source.ORG

    def agent(self, agent_id: str) -> Optional[Agent]:
        """The listed agent with this id, if any."""
        for a in self.agents:
            if a.id == agent_id:
                return a
        return None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Org:
        return cls(
            id=str(d["id"]),
            limit=int(d["limit"]),
            reserved=int(d["reserved"]),
            shared=int(d["shared"]),
            active=int(d["active"]),
            queued=int(d["queued"]),
            shared_in_use=int(d["shared_in_use"]),
            agents=[Agent.from_json(a) for a in d.get("agents", [])],
            burst=int(d.get("burst", 0)),
            burst_in_use=int(d.get("burst_in_use", 0)),
            blocked=int(d.get("blocked", 0)),
            plan=None if d.get("plan") is None else str(d["plan"]),
            limit_source=Source(d.get("limit_source", "org")),
            burst_source=Source(d.get("burst_source", "org")),
        )


@dataclass(frozen=True)
class Plan:
    """An operator-defined tier of limit and burst that orgs are put on."""

    id: str
    #: The limit of every org on it that has no limit of its own.
    limit: int
    #: The burst of every org on it that has no burst of its own.
    burst: int
    #: How many orgs are on it.
    orgs: int

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Plan:
        return cls(
            id=str(d["id"]),
            limit=int(d["limit"]),
            burst=int(d["burst"]),
            orgs=int(d.get("orgs", 0)),
        )


class Position(int):
    """A queued call's position, as `on_position` hears it: an ``int`` that
    also carries the call's expected wait at that moment.

    ``estimated_wait_s`` is the call's `estimated_wait_s` (None while the org
    has too little history). Callbacks that take an ``int`` work unchanged.
    """

    estimated_wait_s: Optional[float]

    def __new__(cls, position: int, estimated_wait_s: Optional[float] = None) -> Position:
        p = super().__new__(cls, position)
        p.estimated_wait_s = estimated_wait_s
        return p


@dataclass(frozen=True)
class Call:
    """One call, as the server reports it."""

    id: str
    agent: str
    type: CallType
    state: CallState
    slot: Optional[Slot]
    position: Optional[int]
    queued_at: Optional[datetime]
    admitted_at: Optional[datetime]
    lease_expires_at: Optional[datetime]
    ended_at: Optional[datetime]
    end_reason: Optional[EndReason]
    hold_expires_at: Optional[datetime] = None
    max_wait_expires_at: Optional[datetime] = None
    lease_ttl_s: Optional[float] = None
    #: While queued: about how many seconds until it is admitted, as of the
    #: answer, from how long the slots it can take were held before their
    #: recent frees and the calls ahead of it; None while the org has too
    #: little history (and for active and ended calls).
    estimated_wait_s: Optional[float] = None
    #: While queued: why it can never be admitted as its org is configured
    #: now; None if it can. It stays queued: a change may unblock it.
    blocked: Optional[BlockedReason] = None

    @property
    def active(self) -> bool:
        return self.state is CallState.ACTIVE

    @property
    def queued(self) -> bool:
        return self.state is CallState.QUEUED

    @property
    def ended(self) -> bool:
        return self.state is CallState.ENDED

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Call:
        slot = d.get("slot")
        reason = d.get("end_reason")
        return cls(
            id=str(d["id"]),
            agent=str(d["agent"]),
            type=CallType(d["type"]),
            state=CallState(d["state"]),
            slot=None if slot is None else Slot(slot),
            position=_opt_int(d.get("position")),
            queued_at=parse_time(d.get("queued_at")),
            admitted_at=parse_time(d.get("admitted_at")),
            lease_expires_at=parse_time(d.get("lease_expires_at")),
            ended_at=parse_time(d.get("ended_at")),
            end_reason=None if reason is None else EndReason(reason),
            hold_expires_at=parse_time(d.get("hold_expires_at")),
            max_wait_expires_at=parse_time(d.get("max_wait_expires_at")),
            lease_ttl_s=_opt_float(d.get("lease_ttl_s")),
            estimated_wait_s=_opt_float(d.get("estimated_wait_s")),
            blocked=None if d.get("blocked") is None else BlockedReason(d["blocked"]),
        )


@dataclass(frozen=True)
class KeyInfo:
    """An org key as listed (no secret)."""

    id: str
    name: str
    role: KeyRole
    created_at: Optional[datetime]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> KeyInfo:
        return cls(
            id=str(d["id"]),
            name=str(d["name"]),
            role=KeyRole(d["role"]),
            created_at=parse_time(d.get("created_at")),
        )


@dataclass(frozen=True)
class NewKey:
    """A new key with its secret, shown only once."""

    id: str
    name: str
    role: KeyRole
    key: str = field(repr=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> NewKey:
        return cls(id=str(d["id"]), name=str(d["name"]), role=KeyRole(d["role"]), key=str(d["key"]))


@dataclass(frozen=True)
class Event:
    """One state change of an org.

    `type` is `call.queued`, `call.admitted`, `call.ended`,
    `call.lease_changed`, `org.created`, `org.limit_changed`,
    `agent.reservations_changed`, ... (kept as a string: the server may add
    kinds). Fields that a kind does not have are None; `raw` is the whole
    JSON object.
    """

    seq: int
    org: str
    type: str
    at: Optional[datetime]
    call: Optional[str] = None
    agent: Optional[str] = None
    call_type: Optional[CallType] = None
    slot: Optional[Slot] = None
    position: Optional[int] = None
    #: `call.queued`: the call's expected wait on arrival (None: too little history).
    estimated_wait_s: Optional[float] = None
    waited_ms: Optional[int] = None
    reason: Optional[EndReason] = None
    by: Optional[str] = None
    #: `call.queued`, `call.admitted`: the call's lease length; `call.lease_changed`: its new one.
    lease_ttl_ms: Optional[int] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def old(self) -> Any:
        """`org.limit_changed`, `agent.reservations_changed`: the value before."""
        return self.raw.get("old")

    @property
    def new(self) -> Any:
        """`org.limit_changed`, `agent.reservations_changed`: the value after."""
        return self.raw.get("new")

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Event:
        ct = d.get("call_type")
        slot = d.get("slot")
        reason = d.get("reason")
        return cls(
            seq=int(d["seq"]),
            org=str(d["org"]),
            type=str(d["type"]),
            at=parse_time(d.get("at")),
            call=_opt_str(d.get("call")),
            agent=_opt_str(d.get("agent")),
            call_type=None if ct is None else CallType(ct),
            slot=None if slot is None else Slot(slot),
            position=_opt_int(d.get("position")),
            estimated_wait_s=_opt_float(d.get("estimated_wait_s")),
            waited_ms=_opt_int(d.get("waited_ms")),
            reason=None if reason is None else EndReason(reason),
            by=_opt_str(d.get("by")),
            lease_ttl_ms=_opt_int(d.get("lease_ttl_ms")),
            raw=dict(d),
        )


@dataclass(frozen=True)
class EventPage:
    """Events after some seq, oldest first; pass `next` as `after` next time."""

    events: List[Event]
    next: int

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> EventPage:
        return cls(events=[Event.from_json(e) for e in d["events"]], next=int(d["next"]))


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the cursor of the next (None on the last page)."""

    items: List[T]
    next_cursor: Optional[str]


@dataclass(frozen=True)
class History:
    """`GET /v1/orgs/{org}/history`: samples over the last 15 minutes."""

    interval_s: int
    samples: List[Dict[str, Any]]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> History:
        return cls(interval_s=int(d["interval_s"]), samples=list(d["samples"]))


@dataclass(frozen=True)
class Usage:
    """`GET /v1/orgs/{org}/usage`: the org's usage by UTC hour or day.

    Each step is a dict as the API sends it: `start`, `limit`,
    `at_limit_seconds`, `burst_seconds`, `overall` and `types` (per call
    type), the last two with `peak_active`, `peak_queued`, `admitted`,
    `waited`, `wait_p50_ms`, `wait_p90_ms` and `gave_up`.
    """

    org: str
    step: str
    from_: str
    to: str
    steps: List[Dict[str, Any]]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Usage:
        return cls(
            org=str(d["org"]),
            step=str(d["step"]),
            from_=str(d["from"]),
            to=str(d["to"]),
            steps=list(d["steps"]),
        )

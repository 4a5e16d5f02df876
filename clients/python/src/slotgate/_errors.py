"""What can go wrong talking to slotgate, as exceptions.

Every refusal of the server is an :class:`ApiError` subclass chosen by the
API's error code; its extras (``available``, ``reserved``, ``cap``, ``call``)
are read from inside the body's ``error`` object, where API.md puts them.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Type

from ._types import BlockedReason, Call


class SlotgateError(Exception):
    """Base of every error this package raises."""


class TransportError(SlotgateError):
    """The request did not complete (connection refused or reset, timed out),
    after the retries that were safe to make."""


class DecodeError(SlotgateError):
    """The server's answer was not what the API promises."""


class ApiError(SlotgateError):
    """The server refused: an HTTP status and the API's error code."""

    #: The code this class stands for (None on the base class).
    CODE: Optional[str] = None

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        error: Optional[Mapping[str, Any]] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(f"{code} ({status}): {message}")
        self.status = status
        self.code = code
        self.message = message
        #: The whole `error` object of the answer, extras included.
        self.error: Dict[str, Any] = dict(error or {})
        #: Seconds from a `Retry-After` header, if any.
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """A passing fault of the server: the same request may succeed later."""
        return self.status in (502, 503, 504)


class InvalidRequest(ApiError):
    """400: a field is malformed or out of range (the message names it)."""

    CODE = "invalid_request"


class Unauthorized(ApiError):
    """401: no key, or a key the server does not know."""

    CODE = "unauthorized"


class Forbidden(ApiError):
    """403: this key's role may not do this."""

    CODE = "forbidden"


class NotFound(ApiError):
    """404: base of the not-found codes."""


class OrgNotFound(NotFound):
    """404: no such org, or one this key may not see."""

    CODE = "org_not_found"


class CallNotFound(NotFound):
    """404: no such call."""

    CODE = "call_not_found"


class KeyNotFound(NotFound):
    """404: no such key."""

    CODE = "key_not_found"


class PlanNotFound(NotFound):
    """404: no such plan."""

    CODE = "plan_not_found"


class EndpointNotFound(NotFound):
    """404: no such endpoint."""

    CODE = "not_found"


class MethodNotAllowed(ApiError):
    """405: the endpoint does not take this method."""

    CODE = "method_not_allowed"


class Conflict(ApiError):
    """409: base of the conflict codes."""


class OrgExists(Conflict):
    """409: an org with this id exists."""

    CODE = "org_exists"


class CallIdConflict(Conflict):
    """409: the call id exists with another agent or type."""

    CODE = "call_id_conflict"


class LimitBelowReservations(Conflict):
    """409: the limit would be below the sum of reservations, ``reserved``."""

    CODE = "limit_below_reservations"

    @property
    def reserved(self) -> int:
        """The sum of the org's reservations."""
        return int(self.error["reserved"])


class ReservationsExceedLimit(Conflict):
    """409: the reservations would exceed the limit; ``available`` is the most
    this agent could reserve in total now."""

    CODE = "reservations_exceed_limit"

    @property
    def available(self) -> int:
        """The most this agent could reserve in total now."""
        return int(self.error["available"])


class CapBelowReservation(Conflict):
    """409: a cap would be below the reservation it covers; ``reserved`` is
    that reservation, the lowest value the cap may have."""

    CODE = "cap_below_reservation"

    @property
    def reserved(self) -> int:
        """The lowest value the cap may have."""
        return int(self.error["reserved"])


class PlanExists(Conflict):
    """409: a plan with this id exists."""

    CODE = "plan_exists"


class _NamesOrgs(Conflict):
    """A refusal that names the orgs in the way: the first ten, and how many."""

    @property
    def orgs(self) -> List[str]:
        """The first ten orgs in the way, by id."""
        return [str(o) for o in self.error.get("orgs", [])]

    @property
    def count(self) -> int:
        """How many orgs are in the way in all."""
        return int(self.error.get("count", 0))


class PlanBelowReservations(_NamesOrgs):
    """409: the plan's new limit would be below the reservations of orgs on
    it that take its limit (``orgs``, ``count``); nothing changed."""

    CODE = "plan_below_reservations"


class PlanInUse(_NamesOrgs):
    """409: orgs are on the plan (``orgs``, ``count``), so it cannot be deleted."""

    CODE = "plan_in_use"


class NoPlan(Conflict):
    """409: a limit or burst of None (back to the plan's) for an org on no plan."""

    CODE = "no_plan"


class CallBlocked(Conflict):
    """409: the call would wait blocked and the acquire asked to be refused
    (``if_blocked="refuse"``); nothing was queued."""

    CODE = "call_blocked"

    @property
    def blocked(self) -> BlockedReason:
        """Why the call would have waited blocked."""
        return BlockedReason(self.error["blocked"])


class CallEnded(ApiError):
    """410: the call has ended; ``call`` is the call as it ended."""

    CODE = "call_ended"

    @property
    def call(self) -> Call:
        """The ended call."""
        return Call.from_json(self.error["call"])


class PayloadTooLarge(ApiError):
    """413: the body is over the server's limit."""

    CODE = "payload_too_large"


class QueueFull(ApiError):
    """429: the org's queue is at its cap; nothing was queued."""

    CODE = "queue_full"

    @property
    def cap(self) -> Optional[int]:
        """The queue's cap, when the server says."""
        value = self.error.get("cap")
        return None if value is None else int(value)


class InternalError(ApiError):
    """500: a fault of the server."""

    CODE = "internal"


class StoreUnavailable(ApiError):
    """503: the server's store cannot be written; retried by the client where safe."""

    CODE = "store_unavailable"


class EndedWhileQueued(SlotgateError):
    """The call ended while waiting in the queue (abandoned, or cancelled by someone else)."""

    def __init__(self, call: Call, message: Optional[str] = None) -> None:
        reason = call.end_reason.value if call.end_reason else "?"
        super().__init__(message or f"call {call.id} ended while queued ({reason})")
        self.call = call


class QueueTimeout(EndedWhileQueued):
    """``max_wait`` passed before a slot was free; the call ended ``timed_out``."""


_BY_CODE: Dict[str, Type[ApiError]] = {
    cls.CODE: cls
    for cls in (
        InvalidRequest,
        Unauthorized,
        Forbidden,
        OrgNotFound,
        CallNotFound,
        KeyNotFound,
        PlanNotFound,
        EndpointNotFound,
        MethodNotAllowed,
        OrgExists,
        CallIdConflict,
        LimitBelowReservations,
        ReservationsExceedLimit,
        CapBelowReservation,
        PlanExists,
        PlanBelowReservations,
        PlanInUse,
        NoPlan,
        CallBlocked,
        CallEnded,
        PayloadTooLarge,
        QueueFull,
        InternalError,
        StoreUnavailable,
    )
    if cls.CODE is not None
}


def api_error(status: int, body: Any, retry_after: Optional[float] = None) -> ApiError:
    """The exception for an error answer: its class by the API's code, its
    extras from inside the body's ``error`` object only."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ApiError(status, f"http_{status}", "the server answered without an error object")
    code = str(error.get("code", f"http_{status}"))
    message = str(error.get("message", ""))
    cls = _BY_CODE.get(code)
    if cls is None:
        if status == 404:
            cls = NotFound
        elif status == 409:
            cls = Conflict
        else:
            cls = ApiError
    return cls(status, code, message, error, retry_after)

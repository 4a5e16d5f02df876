"""Pieces shared by the clients: retry policy, paths, answers, server-sent events."""

from __future__ import annotations

import json
import random
import secrets
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, List, Optional
from urllib.parse import quote

import httpx

from ._errors import ApiError, DecodeError, api_error
from ._types import Event

#: How long one long-poll asks the server to wait (the server allows 60 s).
LONG_POLL_S = 20.0


@dataclass(frozen=True)
class Retry:
    """How transient failures (connection errors, 502/503/504) are retried.

    Only requests that are safe to repeat are retried: reads, idempotent
    writes (limits, reservations, heartbeats, releases, acquires with an id;
    the client always sends one). A request that never reached the server (the
    connection was refused) is retried whatever it is.
    """

    #: Attempts in all, the first included.
    attempts: int = 5
    #: The pause after the first failure; each next one doubles, up to `max_backoff`.
    backoff: float = 0.1
    #: The longest pause.
    max_backoff: float = 5.0

    def delay(self, attempt: int, retry_after: Optional[float] = None) -> float:
        """The pause after failed attempt number `attempt` (from 1), with jitter."""
        base = min(self.max_backoff, self.backoff * (2 ** max(0, attempt - 1)))
        pause = random.uniform(base / 2, base)
        if retry_after is not None:
            pause = max(pause, min(retry_after, self.max_backoff))
        return pause


NO_RETRY = Retry(attempts=1)


def new_call_id() -> str:
    """A call id made by the client, so that a retried acquire is the same call."""
    return "call_" + secrets.token_hex(12)


def seg(value: str) -> str:
    """One path segment, percent-encoded."""
    return quote(str(value), safe="")


def retry_after(resp: httpx.Response) -> Optional[float]:
    value = resp.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def decode(resp: httpx.Response) -> Any:
    """The JSON of a successful answer, or raises the API's error."""
    if 200 <= resp.status_code < 300:
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError as e:
            raise DecodeError(f"{resp.request.method} {resp.request.url}: not JSON: {e}") from e
    raise error_of(resp)


def error_of(resp: httpx.Response) -> ApiError:
    try:
        body = resp.json()
    except ValueError:
        body = None
    return api_error(resp.status_code, body, retry_after(resp))


def is_unsent(e: httpx.TransportError) -> bool:
    """The request certainly never reached the server."""
    return isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout))


def query(**params: Any) -> dict[str, str]:
    """Query parameters, without the ones that are None."""
    out: dict[str, str] = {}
    for k, v in params.items():
        if v is None:
            continue
        out[k] = _fmt(v)
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if hasattr(v, "value"):
        return str(v.value)
    return str(v)


class SseParser:
    """Turns the lines of a `text/event-stream` into events."""

    def __init__(self) -> None:
        self._data: List[str] = []

    def feed(self, line: str) -> Optional[Event]:
        """One line (without its end); returns an event when a block ends."""
        line = line.rstrip("\r")
        if line == "":
            if not self._data:
                return None
            data = "\n".join(self._data)
            self._data = []
            try:
                return Event.from_json(json.loads(data))
            except (ValueError, KeyError, TypeError) as e:
                raise DecodeError(f"an event that is not one: {data!r}: {e}") from e
        if line.startswith(":"):
            return None  # a comment, e.g. keep-alive
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        return None

    def feed_all(self, lines: Iterable[str]) -> Iterator[Event]:
        for line in lines:
            event = self.feed(line)
            if event is not None:
                yield event

"""Whether, and after how long, to try a Replicate request again."""

import asyncio
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import httpx
from replicate.exceptions import ReplicateError

T = TypeVar("T")

# "Your rate limit resets in ~30s." (current wording) and "Expected available in 1 second."
# (older wording) in the 429 body's ``detail``.
_DETAIL_DELAY = re.compile(r"(?:resets in ~?\s*|available in\s+)(\d+(?:\.\d+)?)\s*(?:s\b|sec|second)", re.IGNORECASE)
# Server hints are honoured, but never waited on exactly: many shots throttled by the same
# 429 burst would otherwise all come back at the same instant.
_JITTER = 0.2


class Throttled(ReplicateError):
    """An HTTP 429 from Replicate, with the delay the response asked for (if any)."""

    def __init__(self, detail: str | None, retry_after_s: float | None) -> None:
        super().__init__(title="Too Many Requests", status=429, detail=detail)
        self.retry_after_s = retry_after_s


def retry_after_s(headers: Mapping[str, str], body: object) -> float | None:
    """The delay a 429 response asks for: the ``Retry-After`` header (seconds or HTTP date),
    else the body's ``retry_after`` field, else the "resets in ~Ns" of its ``detail``."""
    header = (headers.get("retry-after") or "").strip()
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(header)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
    if not isinstance(body, Mapping):
        return None
    field = body.get("retry_after")
    if isinstance(field, (int, float)) and not isinstance(field, bool):
        return max(0.0, float(field))
    detail = body.get("detail")
    match = _DETAIL_DELAY.search(detail) if isinstance(detail, str) else None
    return float(match.group(1)) if match else None


async def raise_throttled(response: httpx.Response) -> None:
    """httpx response hook: turn a 429 into ``Throttled``.

    The client's own ``ReplicateError`` keeps only the body's problem fields, losing the
    ``Retry-After`` header and the ``retry_after`` field that say how long to wait.
    """
    if response.status_code != 429:
        return
    await response.aread()
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    raise Throttled(detail if isinstance(detail, str) else None, retry_after_s(response.headers, body))


def jittered(delay_s: float) -> float:
    """``delay_s`` stretched by up to a fifth, so that retries spread out."""
    return delay_s * (1.0 + random.uniform(0.0, _JITTER))


def backoff_s(attempt: int, base_s: float, cap_s: float) -> float:
    """Exponential backoff for the ``attempt``-th retry (1-based), jittered, at most ``cap_s``."""
    return min(cap_s, jittered(base_s * 2 ** (attempt - 1)))


def retry_delay_s(exc: BaseException, attempt: int, base_s: float, cap_s: float) -> float:
    """How long to wait after the ``attempt``-th failure (1-based): what a 429 asked for, else
    exponential backoff; jittered either way, and at most ``cap_s``."""
    hint = exc.retry_after_s if isinstance(exc, Throttled) else None
    delay = jittered(hint) if hint is not None else backoff_s(attempt, base_s, cap_s)
    return min(cap_s, delay)


def http_status(exc: BaseException) -> int | None:
    """The HTTP status behind an error from the client or from httpx, if there was one."""
    if isinstance(exc, ReplicateError):
        return exc.status
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code
    return None


def transient(exc: BaseException) -> bool:
    """Whether repeating a request that failed with ``exc`` may succeed: a dropped or timed
    out connection, a 429 or a 5xx. (The client retries only GETs, and only on 429/503/504.)"""
    if isinstance(exc, (httpx.TransportError, TimeoutError)):
        return True
    status = http_status(exc)
    return status is not None and (status == 429 or status >= 500)


async def retrying(call: Callable[[], Awaitable[T]], attempts: int, base_s: float, cap_s: float) -> T:
    """``call()``, repeated up to ``attempts`` times while it fails transiently. Only for
    requests that are safe to repeat: never for a create, which would pay twice."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except Exception as exc:
            if attempt == attempts or not transient(exc):
                raise
            await asyncio.sleep(retry_delay_s(exc, attempt, base_s, cap_s))
    raise AssertionError("unreachable: the last attempt returns or raises")

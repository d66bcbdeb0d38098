"""Whether, and after how long, to try a Replicate request again."""

import random
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import httpx
from replicate.exceptions import ReplicateError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base, wait_exponential, wait_random

from actor_pipeline.errors import PipelineError

T = TypeVar("T")

# "Your rate limit resets in ~30s." (current wording) and "Expected available in 1 second."
# (older wording) in the 429 body's ``detail``.
_DETAIL_DELAY = re.compile(r"(?:resets in ~?\s*|available in\s+)(\d+(?:\.\d+)?)\s*(?:s\b|sec|second)", re.IGNORECASE)
_HINT_JITTER = 0.2  # a server's hint is stretched by up to this fraction (see RetryWait)


class Throttled(ReplicateError, PipelineError):
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


class RetryWait(wait_base):
    """Tenacity's wait between retries: what a 429 asked for, stretched by up to a fifth (a server's
    hint is honoured, but never to the instant: shots throttled by the same burst would otherwise
    all come back together); else exponential backoff from ``base_s`` plus up to ``base_s`` of
    jitter. At most ``cap_s`` either way."""

    def __init__(self, base_s: float, cap_s: float) -> None:
        self._backoff = wait_exponential(multiplier=base_s, max=cap_s) + wait_random(0, base_s)
        self._cap_s = cap_s

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        hint = exc.retry_after_s if isinstance(exc, Throttled) else None
        delay = hint * random.uniform(1.0, 1.0 + _HINT_JITTER) if hint is not None else self._backoff(retry_state)
        return min(self._cap_s, delay)

    def after(self, exc: BaseException, attempt: int) -> float:
        """The wait after the ``attempt``-th failure (1-based), ``exc``, of a loop tenacity does
        not drive: the backend's creates, which look for what a failed create made before the
        next one."""
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = attempt
        state.set_exception((type(exc), exc, exc.__traceback__))
        return self(state)


# Failures that prove the request never reached Replicate, so nothing can have been created.
UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def http_status(exc: BaseException) -> int | None:
    """The HTTP status behind an error from the client or from httpx, if there was one."""
    if isinstance(exc, ReplicateError):
        return exc.status
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code
    return None


def unanswered(exc: BaseException) -> bool:
    """Whether a request that failed with ``exc`` was sent and may still be taken: no answer came
    (a timeout, a dropped connection), or a gateway gave up waiting for the API (504). A create
    held in a queue is taken, and listed, after the client gave up on it."""
    if isinstance(exc, UNSENT):
        return False
    no_answer = (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
    return isinstance(exc, no_answer) or http_status(exc) == 504


def transient(exc: BaseException) -> bool:
    """Whether repeating a request that failed with ``exc`` may succeed: a dropped or timed
    out connection, a 429 or a 5xx. (The client retries only GETs, and only on 429/503/504.)"""
    if isinstance(exc, (httpx.TransportError, TimeoutError)):
        return True
    status = http_status(exc)
    return status is not None and (status == 429 or status >= 500)


async def retrying(call: Callable[[], Awaitable[T]], attempts: int, wait: RetryWait) -> T:
    """``call()``, repeated up to ``attempts`` times while it fails transiently. Only for
    requests that are safe to repeat: never for a create, which would pay twice."""
    # Iterated rather than called: called, tenacity 9 would not await what a lambda returns.
    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(attempts), retry=retry_if_exception(transient), wait=wait, reraise=True
    ):
        with attempt:
            return await call()
    raise AssertionError("unreachable: the last attempt returns or raises")


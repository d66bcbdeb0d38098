"""Replicate not answering, or refusing the token: failures that paid nothing. An outage is
waited out by every shot of a session together, up to a bound; a refused token stops at once."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import httpx
import replicate

from actor_pipeline.errors import CredentialsRefused
from actor_pipeline.generation.replicate.pacing import ReadPace
from actor_pipeline.generation.replicate.problems import describe
from actor_pipeline.generation.replicate.retry import RetryWait, http_status, raise_throttled, transient
from actor_pipeline.generation.types import ProviderDown

T = TypeVar("T")
log = logging.getLogger(__name__)


def refuse_credentials(exc: BaseException, model: str) -> None:
    """Raise ``CredentialsRefused`` when ``exc`` is Replicate refusing the token: every other
    request with it would be refused too."""
    status = http_status(exc)
    if status == 401:
        raise CredentialsRefused(
            f"Replicate refused the API token ({describe(exc)}): set REPLICATE_API_TOKEN to a token from "
            "https://replicate.com/account/api-tokens; nothing was created"
        ) from exc
    if status == 403:
        raise CredentialsRefused(
            f"Replicate refused this API token access to {model} ({describe(exc)}): use a token of an account "
            "that may run it; nothing was created"
        ) from exc


class Outage:
    """How long Replicate has not answered, shared by every request of an actor's session, so
    that all its shots wait out one outage together, up to ``limit_s``, and then stop creating."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self.down_since: float | None = None

    def answered(self) -> None:
        if self.down_since is not None:
            log.info("Replicate answers again")
            self.down_since = None

    def failed(self, what: str) -> None:
        """Note a failure that paid nothing (``what`` says which); raise ``ProviderDown`` once the
        outage has lasted longer than its limit."""
        now = time.monotonic()
        if self.down_since is None:
            log.warning("Replicate is not answering (%s): waiting up to %g s for it, creating nothing meanwhile", what, self.limit_s)
            self.down_since = now
        elif now - self.down_since > self.limit_s:
            raise ProviderDown(
                f"Replicate did not answer for {self.limit_s:g} s (last: {what}); nothing was paid for "
                "the shots not made: rerun the same command (or `actor-pipeline retry-failed`) once it answers"
            )


class OutageWatch(httpx.AsyncBaseTransport):
    """The session's transport: it sees every answer, the ``replicate`` client's own hidden retries
    of reads included (ten, over 51 s, on a 429/503/504), so an outage is bounded by its limit
    and not by the client's retries; and it tells ``reads`` what each read's answer says is left
    of the account's reads."""

    def __init__(self, outage: Outage, reads: ReadPace | None = None) -> None:
        self._outage = outage
        self._reads = reads
        self._wrapped = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self._wrapped.handle_async_request(request)
        except httpx.TransportError as exc:
            self._outage.failed(describe(exc))
            raise
        if response.status_code == 429 or response.status_code >= 500:
            try:
                self._outage.failed(f"HTTP {response.status_code} from {request.method} {request.url.path}")
            except ProviderDown:
                await response.aclose()
                raise
        else:
            self._outage.answered()
            # Creates (POSTs) answer with what is left of the create limit, not of the reads.
            remaining = response.headers.get("ratelimit-remaining", "")
            if self._reads is not None and request.method == "GET" and remaining.isdigit():
                self._reads.observe(int(remaining))
        return response

    async def aclose(self) -> None:
        await self._wrapped.aclose()


@asynccontextmanager
async def watched_client(
    api_token: str, outage: Outage, reads: ReadPace | None = None
) -> AsyncIterator[replicate.Client]:
    """A ``replicate.Client`` whose every answer ``outage`` (and, for reads, ``reads``) sees, and
    whose 429s say how long to wait (``Throttled``). The base URL is the client's own:
    REPLICATE_BASE_URL, else Replicate's. Its transport is closed on exit, which the client
    offers no way to do."""
    transport = OutageWatch(outage, reads)
    try:
        yield replicate.Client(api_token, transport=transport, event_hooks={"response": [raise_throttled]})
    finally:
        await transport.aclose()


async def through_outage(call: Callable[[], Awaitable[T]], outage: Outage, wait: RetryWait, model: str) -> T:
    """``call()``, repeated while it fails transiently and the outage lasts no longer than its
    limit. Only for requests that are safe to repeat."""
    attempt = 0
    while True:
        try:
            result = await call()
        except Exception as exc:
            refuse_credentials(exc, model)
            if not transient(exc):
                raise
            outage.failed(describe(exc))
            attempt += 1
            await asyncio.sleep(wait.after(exc, attempt))
            continue
        outage.answered()
        return result

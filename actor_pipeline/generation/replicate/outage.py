"""Replicate not answering, or refusing the token: failures that paid nothing. An outage is
waited out by every shot of a session together, up to a bound; a refused token stops at once."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from actor_pipeline.errors import CredentialsRefused
from actor_pipeline.generation.replicate.problems import describe
from actor_pipeline.generation.replicate.retry import RetryWait, http_status, transient
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

    def failed(self, exc: BaseException) -> None:
        """Note a failure that paid nothing; raise ``ProviderDown`` once the outage is too long."""
        now = time.monotonic()
        if self.down_since is None:
            log.warning(
                "Replicate is not answering (%s): waiting up to %g s for it, creating nothing meanwhile",
                describe(exc), self.limit_s,
            )  # fmt: skip
            self.down_since = now
        elif now - self.down_since > self.limit_s:
            raise ProviderDown(
                f"Replicate did not answer for {self.limit_s:g} s (last: {describe(exc)}); nothing was paid for "
                "the shots not made: rerun the same command (or `actor-pipeline retry-failed`) once it answers"
            ) from exc


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
            outage.failed(exc)
            attempt += 1
            await asyncio.sleep(wait.after(exc, attempt))
            continue
        outage.answered()
        return result

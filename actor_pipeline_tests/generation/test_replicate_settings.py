"""Settings validation and the small helpers of the Replicate backend: waits, retries, pacing."""

import asyncio
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from replicate.exceptions import ReplicateError

from actor_pipeline.defs.resources import ImageGeneratorResource
from actor_pipeline.errors import ConfigurationError
from actor_pipeline.generation.replicate import ASPECT_RATIOS, ReplicateBackend, ReplicateSettings
from actor_pipeline.generation.replicate.pacing import CreatePacer
from actor_pipeline.generation.replicate.problems import describe
from actor_pipeline.generation.replicate.retry import RetryWait, Throttled, retry_after_s, retrying, transient

# --- settings -----------------------------------------------------------------------------------


def test_defaults_follow_the_issue() -> None:
    s = ReplicateSettings()
    assert (s.model, s.aspect_ratio, s.output_format, s.safety_tolerance, s.prompt_upsampling) == (
        "black-forest-labs/flux-kontext-pro", "16:9", "jpg", 2, False,
    )  # fmt: skip
    assert (s.creates_per_minute, s.price_per_image_usd, s.inline_limit_bytes) == (600, 0.04, 256_000)
    # Every shot of an actor is in flight by default; three actors' 17 shots polled at once stay
    # under the 3000 reads/min budget.
    assert ImageGeneratorResource().max_concurrency is None
    assert 3 * 17 * 60 / s.poll_interval_s <= 3060


def test_every_setting_says_what_it_is() -> None:
    # The descriptions are what the Launchpad shows for the generator's replicate config.
    assert all(field.description for field in ReplicateSettings.model_fields.values())


def test_settings_cannot_be_changed_once_made() -> None:
    with pytest.raises(ValidationError, match="frozen"):
        ReplicateSettings().safety_tolerance = 6  # type: ignore[misc]


@pytest.mark.parametrize("tolerance", [0, 1, 2])
def test_safety_tolerance_up_to_two_is_accepted(tolerance: int) -> None:
    assert ReplicateSettings(safety_tolerance=tolerance).safety_tolerance == tolerance


@pytest.mark.parametrize("tolerance", [3, 6, 7])
def test_safety_tolerance_above_two_is_refused_not_sent(tolerance: int) -> None:
    with pytest.raises(
        ConfigurationError, match=r"at most 2 when an input image is sent.*set safety_tolerance to 0, 1 or 2"
    ):
        ReplicateSettings(safety_tolerance=tolerance)


@pytest.mark.parametrize(
    ("tolerance", "message"),
    [
        (-1, "safety_tolerance -1 is refused: input should be greater than or equal to 0"),
        (True, "safety_tolerance True is refused: input should be a valid integer"),
        (2.0, "safety_tolerance 2.0 is refused: input should be a valid integer"),
    ],
)
def test_safety_tolerance_that_is_no_tolerance_is_refused(tolerance: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ReplicateSettings(safety_tolerance=tolerance)  # type: ignore[arg-type]


@pytest.mark.parametrize("ratio", ASPECT_RATIOS)
def test_every_aspect_ratio_the_model_takes_is_configurable(ratio: str) -> None:
    assert ReplicateBackend(ReplicateSettings(aspect_ratio=ratio), "r8_test").aspect_ratio == ratio


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"aspect_ratio": "16:10"}, "use one of match_input_image, 1:1, 16:9"),
        ({"output_format": "png"}, "set output_format to 'jpg'"),
        ({"model": "flux-kontext-pro"}, "'owner/name'"),
        ({"create_attempts": 0}, "create_attempts 0 is refused: input should be greater than or equal to 1"),
        ({"poll_interval_s": 0}, "poll_interval_s 0 is refused: input should be greater than 0"),
        ({"price_per_image_usd": -1}, "price_per_image_usd -1 is refused: input should be greater than or equal to 0"),
        ({"poll_interval": 2}, "poll_interval 2 is refused: extra inputs are not permitted"),
        (
            {"create_burst": 0, "aspect_ratio": "16:10"},
            r"aspect_ratio '16:10' is not accepted .*; create_burst 0 is refused: input should be greater",
        ),
    ],
)
def test_unusable_settings_name_the_fix(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ReplicateSettings(**overrides)  # type: ignore[arg-type]


def test_a_backend_without_a_token_says_where_to_get_one() -> None:
    with pytest.raises(ConfigurationError, match="set REPLICATE_API_TOKEN to one from https://replicate.com"):
        ReplicateBackend(ReplicateSettings(), "")


def test_fingerprint_holds_what_shapes_the_image() -> None:
    backend = ReplicateBackend(ReplicateSettings(aspect_ratio="1:1", safety_tolerance=1), "r8_test")
    assert backend.name == "replicate" and backend.model == "black-forest-labs/flux-kontext-pro"
    assert backend.fingerprint_params() == {
        "model": "black-forest-labs/flux-kontext-pro",
        "aspect_ratio": "1:1",
        "output_format": "jpg",
        "safety_tolerance": 1,
        "prompt_upsampling": False,
    }
    # Operational settings do not invalidate images already made.
    assert ReplicateBackend(ReplicateSettings(creates_per_minute=60, poll_interval_s=9), "r8_test").fingerprint_params() == (
        ReplicateBackend(ReplicateSettings(), "r8_test").fingerprint_params()
    )


@pytest.mark.parametrize("wait", [0, 61])
def test_prefer_wait_stays_within_the_api_range(wait: int) -> None:
    with pytest.raises(ConfigurationError, match=r"create_wait_s \d+ is refused: input should be (greater|less) than or equal to (1|60)"):
        ReplicateSettings(create_wait_s=wait)


# --- how long to wait ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"retry-after": "7"}, None, 7.0),
        ({}, {"detail": "Request was throttled. Your rate limit resets in ~30s."}, 30.0),
        ({}, {"detail": "Request was throttled. Expected available in 1 second."}, 1.0),
        ({}, {"detail": "… reduced to 6 requests per minute … resets in ~5s.", "retry_after": 4}, 4.0),
        ({"retry-after": "2"}, {"detail": "resets in ~30s."}, 2.0),
        ({}, {"detail": "Request was throttled."}, None),
        ({}, None, None),
    ],
)
def test_the_delay_a_429_asks_for(headers: dict[str, str], body: object, expected: float | None) -> None:
    assert retry_after_s(headers, body) == expected


def test_a_retry_after_date_is_read_as_a_delay() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (retry_after_s({"retry-after": when}, None) or 0) <= 30


@given(st.integers(min_value=0, max_value=10**6))
def test_any_resets_in_figure_is_read(seconds: int) -> None:
    assert retry_after_s({}, {"detail": f"Your rate limit resets in ~{seconds}s."}) == seconds


@given(
    st.integers(min_value=1, max_value=40),
    st.floats(min_value=0.001, max_value=10),
    st.floats(min_value=0.01, max_value=100),
)
def test_backoff_grows_but_never_passes_the_cap(attempt: int, base: float, cap: float) -> None:
    wait = RetryWait(base, cap).after(httpx.ConnectError("refused"), attempt)
    assert min(cap, base * 2 ** (attempt - 1)) <= wait <= min(cap, base * 2 ** (attempt - 1) + base)


def test_a_servers_hint_is_honoured_with_jitter_and_capped() -> None:
    assert 3.0 <= RetryWait(0.1, 60).after(Throttled("x", 3.0), 1) <= 3.6
    assert RetryWait(0.1, 60).after(Throttled("x", 500.0), 1) == 60
    # A 429 without a hint backs off as any transient failure does.
    assert 0.4 <= RetryWait(0.1, 60).after(Throttled("x", None), 3) <= 0.5


class Flaky:
    """A request that fails with each of ``failures`` in turn, then answers."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls: list[float] = []

    def __call__(self) -> Awaitable[str]:
        # Not a coroutine function, as the backend's lambdas are not.
        self.calls.append(time.monotonic())
        return self._answer()

    async def _answer(self) -> str:
        if self.failures:
            raise self.failures.pop(0)
        return "answer"


def test_transient_failures_are_retried_until_the_answer() -> None:
    call = Flaky(httpx.ReadTimeout("slow"), ReplicateError(status=503))
    assert asyncio.run(retrying(call, 3, RetryWait(0.001, 0.01))) == "answer"
    assert len(call.calls) == 3


def test_retries_stop_at_the_attempt_bound_with_the_last_failure() -> None:
    call = Flaky(*[ReplicateError(status=502)] * 3, ReplicateError(status=504))
    with pytest.raises(ReplicateError) as raised:
        asyncio.run(retrying(call, 4, RetryWait(0.001, 0.01)))
    assert raised.value.status == 504 and len(call.calls) == 4


def test_a_refusal_is_not_retried() -> None:
    call = Flaky(ReplicateError(status=422))
    with pytest.raises(ReplicateError):
        asyncio.run(retrying(call, 5, RetryWait(0.001, 0.01)))
    assert len(call.calls) == 1


def test_a_429_is_retried_after_the_delay_it_asks_for() -> None:
    call = Flaky(Throttled("Request was throttled.", 0.2))
    assert asyncio.run(retrying(call, 2, RetryWait(0.001, 10))) == "answer"
    first, second = call.calls
    assert 0.2 <= second - first < 1.0  # the hint, not the 1 ms backoff


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.RemoteProtocolError("gone"), True),
        (httpx.ConnectError("refused"), True),
        (TimeoutError(), True),
        (ReplicateError(status=429), True),
        (ReplicateError(status=502), True),
        (ReplicateError(status=422), False),
        (ReplicateError(status=401), False),
        (ValueError("bug"), False),
    ],
)
def test_which_failures_are_worth_repeating(exc: BaseException, expected: bool) -> None:
    assert transient(exc) is expected


# --- pacing ---------------------------------------------------------------------------------------


def test_a_burst_goes_at_once_and_the_rest_at_the_configured_rate() -> None:
    pacer = CreatePacer(per_minute=1200, burst=3)  # one per 50 ms after the first three

    async def delays() -> list[float]:
        start = time.monotonic()

        async def one() -> float:
            await pacer.acquire()
            return time.monotonic() - start

        return sorted(await asyncio.gather(*(one() for _ in range(8))))

    found = asyncio.run(delays())
    # The burst is not held back; after it the n-th create goes no earlier than its interval (a
    # late wake-up only delays it).
    assert all(delay < 0.05 for delay in found[:3])
    assert all(delay >= 0.05 * (n - 2) - 0.001 for n, delay in enumerate(found) if n >= 3)


def test_a_pause_holds_every_create_back() -> None:
    pacer = CreatePacer(per_minute=60_000)

    async def after_pause() -> float:
        await pacer.acquire()
        pacer.pause(0.2)
        paused_at = time.monotonic()
        await pacer.acquire()
        return time.monotonic() - paused_at

    assert asyncio.run(after_pause()) >= 0.2


# --- messages (the safety filter's: test_replicate_problems.py) -----------------------------------


def test_descriptions_name_the_fix() -> None:
    assert describe(ReplicateError(status=401, detail="You did not pass a valid authentication token")) == (
        "Replicate answered HTTP 401: You did not pass a valid authentication token "
        "(set REPLICATE_API_TOKEN to a valid API token)"
    )
    assert "HTTP 502: no details" in describe(ReplicateError(status=502))
    assert "RemoteProtocolError" in describe(httpx.RemoteProtocolError("Server disconnected"))

"""Every failure issue 3 names, injected in the emulator and met through the real client."""

import asyncio
import time

import pytest
import replicate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actor_pipeline.generation.types import GeneratedImage, ProviderDown, ShotGenerationError, ShotStatus, Usage
from actor_pipeline_tests.replicate_emulator import FLAGGED_ERROR, Behaviour, Fault, ReplicateEmulator
from actor_pipeline_tests.replicate_emulator.driver import (
    RecordedProgress,
    fast_settings,
    make_jobs,
    replicate_backend,
    run,
    succeeded,
)


def failure(result: GeneratedImage | ShotGenerationError) -> ShotGenerationError:
    assert isinstance(result, ShotGenerationError), "the shot was expected to fail"
    return result


# --- 429 on create -------------------------------------------------------------------------


def test_throttled_creates_are_retried_without_extra_predictions(emulator: ReplicateEmulator, portrait: bytes) -> None:
    emulator.account.throttle_creates(3, retry_after_s=1)  # waits are capped at 0.2 s in tests
    images = succeeded(run(replicate_backend(fast_settings()), portrait, make_jobs(5)))

    counters = emulator.account.counters()
    assert counters.throttled == 3 and counters.create_requests == 8
    assert counters.predictions_created == counters.paid == 5
    assert all(image.usage.predictions_created == 1 for image in images)


@pytest.mark.parametrize("style", ["detail", "header", "field"])
def test_a_429_is_waited_out_as_long_as_it_says(emulator: ReplicateEmulator, portrait: bytes, style: str) -> None:
    emulator.account.throttle_creates(1, retry_after_s=1, style=style)  # type: ignore[arg-type]
    succeeded(run(replicate_backend(fast_settings(retry_max_delay_s=10)), portrait, make_jobs(1)))

    first, second = emulator.account.counters().create_times
    assert second - first >= 1.0  # a lower bound only: the wait may be longer, never shorter


def test_endless_429s_are_an_outage_that_stops_creating_after_its_bound(
    emulator: ReplicateEmulator, portrait: bytes
) -> None:
    emulator.account.throttle_creates(1000, retry_after_s=0)
    with pytest.raises(ProviderDown, match=r"did not answer for 0.3 s .*429.*nothing was paid"):
        run(replicate_backend(fast_settings(outage_wait_s=0.3)), portrait, make_jobs(1))

    counters = emulator.account.counters()
    assert counters.predictions_created == 0 and counters.create_requests > 1


# --- 5xx and dropped connections on create: never pay twice ---------------------------------

AMBIGUOUS = [Fault(500, after_create=True), Fault(502, after_create=True), Fault(None, after_create=True)]
REFUSED = [Fault(500), Fault(503), Fault(504), Fault(None)]


@pytest.mark.parametrize("fault", AMBIGUOUS + REFUSED, ids=repr)
def test_a_failed_create_is_looked_for_before_creating_again(
    emulator: ReplicateEmulator, portrait: bytes, fault: Fault
) -> None:
    emulator.account.inject("create", fault)
    [image] = succeeded(run(replicate_backend(fast_settings()), portrait, make_jobs(1)))

    counters = emulator.account.counters()
    assert counters.predictions_created == counters.paid == 1
    assert counters.lists >= 1
    assert counters.create_requests == (1 if fault.after_create else 2)
    assert image.usage == Usage(predictions_created=1, predictions_succeeded=1, cost_usd=0.04)


def test_when_the_list_cannot_be_read_no_second_prediction_is_created(
    emulator: ReplicateEmulator, portrait: bytes
) -> None:
    emulator.account.inject("create", Fault(None, after_create=True))
    emulator.account.inject("list", *[Fault(500)] * 1000)
    with pytest.raises(ProviderDown):  # the attempt stays planned: the next run's recall tells
        run(replicate_backend(fast_settings(outage_wait_s=0.3)), portrait, make_jobs(1))

    assert emulator.account.counters().create_requests == 1


def test_the_lookup_reads_every_page_of_the_list(emulator: ReplicateEmulator, portrait: bytes) -> None:
    emulator.behaviour.page_size = 2
    succeeded(run(replicate_backend(fast_settings()), portrait, make_jobs(5, prompt="earlier {index}")))
    emulator.account.inject("create", Fault(502, after_create=True))
    succeeded(run(replicate_backend(fast_settings()), portrait, make_jobs(1)))

    assert emulator.account.counters().predictions_created == 6


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(faults=st.lists(st.builds(Fault, st.sampled_from([None, 500, 502, 503, 504]), st.booleans()), max_size=8))
def test_no_shot_is_ever_paid_twice_whatever_fails(
    monkeypatch: pytest.MonkeyPatch, portrait: bytes, faults: list[Fault]
) -> None:
    with ReplicateEmulator(behaviour=Behaviour(latency_s=0.02)) as emulator:
        for name, value in emulator.env().items():
            monkeypatch.setenv(name, value)
        emulator.account.inject("create", *faults)
        results = run(replicate_backend(fast_settings(create_attempts=4)), portrait, make_jobs(4))
        counters = emulator.account.counters()

    assert all(count == 1 for count in counters.predictions_per_shot.values())
    # The ledger knows of every prediction the account made, and of no other.
    assert sum(result.usage.predictions_created for result in results) == counters.predictions_created
    assert sum(isinstance(result, GeneratedImage) for result in results) == counters.paid


def test_a_refused_input_is_not_retried(emulator: ReplicateEmulator) -> None:
    [result] = run(replicate_backend(fast_settings()), b"not a jpeg at all", make_jobs(1))

    error = failure(result)
    assert "422" in str(error) and "jpeg, png, gif, or webp" in str(error)
    assert emulator.account.counters().create_requests == 1


# --- polling ----------------------------------------------------------------------------------


def test_a_processing_answer_after_prefer_wait_is_polled_to_the_end(
    emulator: ReplicateEmulator, portrait: bytes
) -> None:
    emulator.behaviour.wait_cap_s = 0.05
    emulator.behaviour.latency_s = 0.2
    [image] = succeeded(run(replicate_backend(fast_settings()), portrait, make_jobs(1)))

    counters = emulator.account.counters()
    assert counters.unfinished_wait_answers == 1 and counters.polls >= 1
    assert image.usage.predictions_succeeded == 1


def test_the_clients_run_returns_none_on_that_same_answer(emulator: ReplicateEmulator) -> None:
    # The trap the backend avoids: after Prefer: wait, run() treats "processing" as final.
    emulator.behaviour.wait_cap_s = 0.05
    emulator.behaviour.latency_s = 0.2
    assert replicate.Client().run("black-forest-labs/flux-kontext-pro", input={"prompt": "x"}) is None


def test_polling_rides_out_errors_and_dropped_connections(emulator: ReplicateEmulator, portrait: bytes) -> None:
    emulator.behaviour.wait_cap_s = 0.01
    emulator.behaviour.latency_s = 0.3
    emulator.account.inject("poll", Fault(503), Fault(504), Fault(None), Fault(500), Fault(502), Fault(None))
    [image] = succeeded(run(replicate_backend(fast_settings()), portrait, make_jobs(1)))

    assert emulator.account.counters().polls >= 7
    assert image.usage.predictions_created == 1


def test_a_slow_prediction_within_the_deadline_succeeds(emulator: ReplicateEmulator, portrait: bytes) -> None:
    emulator.behaviour.wait_cap_s = 0.01
    emulator.behaviour.slow = {"[slow]": 0.4}
    succeeded(run(replicate_backend(fast_settings()), portrait, make_jobs(1, prompt="[slow]", timeout_s=3)))


@pytest.mark.parametrize("prompt", ["[hang] scene", "[slow] scene"])
def test_a_prediction_past_its_deadline_is_canceled_and_timed_out(
    emulator: ReplicateEmulator, portrait: bytes, prompt: str
) -> None:
    emulator.behaviour.wait_cap_s = 0.05
    emulator.behaviour.slow = {"[slow]": 5.0}
    jobs = make_jobs(1, prompt=prompt, timeout_s=0.4) + make_jobs(1, prompt="fine scene")
    hung, fine = run(replicate_backend(fast_settings()), portrait, jobs)

    error = failure(hung)
    assert error.status is ShotStatus.TIMED_OUT and "did not finish in time" in str(error)
    assert error.prediction_id and error.usage == Usage(predictions_created=1, predictions_canceled=1)
    assert isinstance(fine, GeneratedImage)
    counters = emulator.account.counters()
    assert counters.canceled == 1 and counters.cancel_requests == 1


def test_a_prediction_that_ended_unseen_before_its_deadline_is_taken_as_it_ended(
    emulator: ReplicateEmulator, portrait: bytes
) -> None:
    # Every poll is lost, so only the cancel at the deadline shows the prediction had finished.
    emulator.behaviour.wait_cap_s = 0.01
    emulator.account.inject("poll", *[Fault(None)] * 100)
    jobs = make_jobs(1, timeout_s=0.5) + make_jobs(1, "other", "[fail] scene", timeout_s=0.5)
    image, failed = run(replicate_backend(fast_settings()), portrait, jobs)

    assert isinstance(image, GeneratedImage)
    assert image.usage == Usage(predictions_created=1, predictions_succeeded=1, cost_usd=0.04)
    assert failure(failed).status is ShotStatus.FAILED
    assert failure(failed).usage == Usage(predictions_created=1, predictions_failed=1)
    assert emulator.account.counters().cancel_requests == 2


# --- how predictions end ---------------------------------------------------------------------


def test_a_flagged_prediction_is_recorded_and_not_retried(emulator: ReplicateEmulator, portrait: bytes) -> None:
    [result] = run(replicate_backend(fast_settings()), portrait, make_jobs(1, prompt="[flag] scene"))

    error = failure(result)
    assert error.status is ShotStatus.CONTENT_FLAGGED
    assert FLAGGED_ERROR in str(error) and "a rerun tries the shot's next rewording" in str(error)
    assert error.usage == Usage(predictions_created=1, predictions_failed=1)
    assert emulator.account.counters().create_requests == 1


def test_a_failed_prediction_is_recorded_as_failed(emulator: ReplicateEmulator, portrait: bytes) -> None:
    [result] = run(replicate_backend(fast_settings()), portrait, make_jobs(1, prompt="[fail] scene"))

    error = failure(result)
    assert error.status is ShotStatus.FAILED and "failed" in str(error)
    assert error.usage == Usage(predictions_created=1, predictions_failed=1)


def test_a_prediction_canceled_elsewhere_is_recorded_as_canceled(emulator: ReplicateEmulator, portrait: bytes) -> None:
    [result] = run(replicate_backend(fast_settings()), portrait, make_jobs(1, prompt="[cancel] scene"))

    error = failure(result)
    assert error.status is ShotStatus.CANCELED
    assert error.usage == Usage(predictions_created=1, predictions_canceled=1)


def test_the_ledger_adds_up_over_mixed_outcomes(emulator: ReplicateEmulator, portrait: bytes) -> None:
    emulator.behaviour.wait_cap_s = 0.05
    prompts = ["a", "b", "c", "[flag] d", "[hang] e", "[cancel] f"]
    jobs = [job for index, prompt in enumerate(prompts) for job in make_jobs(1, f"actor-{index}", prompt, timeout_s=0.4)]
    results = run(replicate_backend(fast_settings(price_per_image_usd=0.04)), portrait, jobs)

    total = sum((result.usage for result in results), Usage())
    assert total == Usage(6, 3, 1, 2, 0.12)
    counters = emulator.account.counters()
    assert (counters.predictions_created, counters.paid, counters.failed, counters.canceled) == (6, 3, 1, 2)


# --- downloads -------------------------------------------------------------------------------


def test_downloads_are_retried_and_complete_exactly_once(emulator: ReplicateEmulator, portrait: bytes) -> None:
    emulator.account.inject("download", Fault(500), Fault(None), Fault(502))
    [image] = succeeded(run(replicate_backend(fast_settings()), portrait, make_jobs(1)))

    counters = emulator.account.counters()
    assert counters.downloads == {image.prediction_id: 1}
    assert counters.download_requests == 4


def test_downloads_give_up_after_the_configured_attempts(emulator: ReplicateEmulator, portrait: bytes) -> None:
    emulator.account.inject("download", *[Fault(500)] * 10)
    [result] = run(replicate_backend(fast_settings(download_attempts=3)), portrait, make_jobs(1))

    error = failure(result)
    assert "after 3 attempts" in str(error)
    assert error.usage == Usage(predictions_created=1, predictions_succeeded=1, cost_usd=0.04)  # paid all the same
    assert emulator.account.counters().download_requests == 3


def test_an_expired_output_fails_at_once_saying_why(emulator: ReplicateEmulator, portrait: bytes) -> None:
    emulator.behaviour.output_ttl_s = 0
    [result] = run(replicate_backend(fast_settings()), portrait, make_jobs(1))

    error = failure(result)
    assert "gone (HTTP 404)" in str(error) and "an hour" in str(error)
    assert error.usage.predictions_succeeded == 1
    assert emulator.account.counters().download_requests == 1


def test_an_outage_is_bounded_by_its_limit_not_by_the_clients_hidden_retries_of_reads(
    emulator: ReplicateEmulator, portrait: bytes
) -> None:
    emulator.behaviour.wait_cap_s = 0.05  # the prediction is created, then polled
    emulator.behaviour.latency_s = 5.0
    backend = replicate_backend(fast_settings(outage_wait_s=0.5))

    async def outage_while_polling() -> None:
        async with backend.session(portrait) as shots:
            job = make_jobs(1)[0]
            shot = asyncio.create_task(shots.generate(job, RecordedProgress(job.deadline)))
            while not emulator.account.predictions():
                await asyncio.sleep(0.01)
            emulator.behaviour.down = True
            with pytest.raises(ProviderDown):
                await shot

    asyncio.run(outage_while_polling())
    counters = emulator.account.counters()
    # The client alone sends a poll 10 times over 51 s before the backend sees its 503.
    assert counters.refused_in_outage < 10
    assert counters.predictions_created == 1  # kept for the rerun, not failed


def test_a_create_taken_after_the_client_gave_up_is_found_and_not_made_again(
    emulator: ReplicateEmulator, portrait: bytes
) -> None:
    # The client waits 1.5 s for a create held 1 s (Prefer: wait); the API takes it at 2 s, so
    # the first look finds nothing: creating again then would pay twice.
    emulator.behaviour.create_delay_s = 2.0
    settings = fast_settings(create_wait_s=1, create_settle_s=5)
    [image] = succeeded(run(replicate_backend(settings), portrait, make_jobs(1)))
    time.sleep(emulator.behaviour.create_delay_s + 0.5)  # every create sent has been taken

    counters = emulator.account.counters()
    assert counters.predictions_created == counters.paid == 1, counters
    assert image.usage.predictions_created == 1


def test_a_create_held_past_create_settle_s_is_made_again_and_the_log_says_both_may_be_paid(
    emulator: ReplicateEmulator, portrait: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    # Taken 3 s after it is sent, past a settle of 1 s: with no idempotency key the bound is a
    # trade-off, and the one place a second payment can come from must say so.
    emulator.behaviour.create_delay_s = 3.0
    settings = fast_settings(create_wait_s=1, create_settle_s=1)
    [image] = succeeded(run(replicate_backend(settings), portrait, make_jobs(1)))
    time.sleep(emulator.behaviour.create_delay_s + 0.5)  # every create sent has been taken

    assert emulator.account.counters().paid >= 2
    warned = [r.getMessage() for r in caplog.records if "creating it again" in r.getMessage()]
    assert warned and "both are paid" in warned[0] and "actor-pipeline ledger" in warned[0], caplog.text

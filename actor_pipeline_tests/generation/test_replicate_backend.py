"""The Replicate backend on the happy path, through the real client against the emulator."""

import asyncio
import base64
import io
from contextlib import ExitStack
from dataclasses import replace

import pytest
import replicate
from PIL import Image

from actor_pipeline.errors import ConfigurationError, CredentialsRefused
from actor_pipeline.generation.replicate.pacing import ReadPace
from actor_pipeline.generation.types import GeneratedImage, ShotGenerationError, Usage
from actor_pipeline_tests.replicate_emulator import Fault, ReplicateEmulator
from actor_pipeline_tests.replicate_emulator.driver import (
    fast_settings,
    generate_all,
    make_jobs,
    replicate_backend,
    run,
    succeeded,
)


def test_seventeen_shots_make_seventeen_paid_images_downloaded_once(
    emulator: ReplicateEmulator, portrait: bytes
) -> None:
    # A long hold: on a loaded machine a 1 s hold times out, and the lookup and a poll that follow
    # are right, but not what this test is about.
    backend = replicate_backend(fast_settings(price_per_image_usd=0.05, create_wait_s=10))
    images = succeeded(run(backend, portrait, make_jobs(17)))

    counters = emulator.account.counters()
    assert counters.predictions_created == counters.paid == 17
    assert set(counters.downloads.values()) == {1} and len(counters.downloads) == 17
    assert counters.polls == 0  # Prefer: wait brought every prediction back finished
    for image in images:
        assert (image.width, image.height) == (1392, 752)
        with Image.open(io.BytesIO(image.data)) as decoded:
            assert decoded.format == "JPEG" and decoded.size == (1392, 752)
        assert image.usage == Usage(predictions_created=1, predictions_succeeded=1, cost_usd=0.05)
    assert len({image.prediction_id for image in images}) == 17


def test_the_input_sent_is_the_models_schema_with_settings_and_seed(
    emulator: ReplicateEmulator, portrait: bytes
) -> None:
    backend = replicate_backend(fast_settings(aspect_ratio="1:1", safety_tolerance=1))
    [image] = succeeded(run(backend, portrait, make_jobs(1)))

    [prediction] = emulator.account.predictions()
    sent = prediction["input"]
    assert sent == {
        "prompt": "the actor in scene 1",
        "input_image": "data:image/jpeg;base64," + base64.b64encode(portrait).decode(),
        "aspect_ratio": "1:1",
        "output_format": "jpg",
        "safety_tolerance": 1,
        "seed": 1001,
        "prompt_upsampling": False,
    }
    assert (image.width, image.height) == (1024, 1024)
    assert image.request_payload == {**sent, "input_image": f"<data URI, {len(portrait)} bytes>"}


def test_payloads_and_messages_never_hold_the_token_or_image_data(emulator: ReplicateEmulator, portrait: bytes) -> None:
    jobs = make_jobs(2, prompt="scene {index} [flag]")
    results = run(replicate_backend(fast_settings()), portrait, jobs)

    encoded = base64.b64encode(portrait).decode()
    for result in results:
        assert isinstance(result, ShotGenerationError)
        text = f"{result} {result.request_payload}"
        assert emulator.token not in text and encoded[:40] not in text


def test_a_large_portrait_is_uploaded_once_and_its_url_reused(
    emulator: ReplicateEmulator, large_portrait: bytes
) -> None:
    images = succeeded(run(replicate_backend(fast_settings()), large_portrait, make_jobs(5)))

    counters = emulator.account.counters()
    assert counters.uploads == 1
    urls = {p["input"]["input_image"] for p in emulator.account.predictions()}
    assert len(urls) == 1 and urls.pop().startswith(f"{emulator.base_url}/v1/files/")
    assert {image.request_payload["input_image"] for image in images} == {
        p["input"]["input_image"] for p in emulator.account.predictions()
    }
    assert counters.files_deleted == 1  # the portrait does not linger for a day


def test_a_failed_upload_is_retried(emulator: ReplicateEmulator, large_portrait: bytes) -> None:
    emulator.account.inject("upload", Fault(500), Fault(None), Fault(503))
    succeeded(run(replicate_backend(fast_settings()), large_portrait, make_jobs(2)))

    assert emulator.account.counters().uploads == 1


def test_a_portrait_at_the_inline_limit_is_inlined_and_one_byte_over_is_uploaded(
    emulator: ReplicateEmulator, portrait: bytes
) -> None:
    run(replicate_backend(fast_settings(inline_limit_bytes=len(portrait))), portrait, make_jobs(1))
    assert emulator.account.counters().uploads == 0
    run(replicate_backend(fast_settings(inline_limit_bytes=len(portrait) - 1)), portrait, make_jobs(1))
    assert emulator.account.counters().uploads == 1


def test_seeds_are_sent_recorded_and_reproduce_the_image(emulator: ReplicateEmulator, portrait: bytes) -> None:
    backend = replicate_backend(fast_settings())
    jobs = make_jobs(3)
    first = succeeded(run(backend, portrait, jobs))
    again = succeeded(run(backend, portrait, jobs))
    reseeded = succeeded(run(backend, portrait, [replace(job, seed=job.seed + 7) for job in jobs]))

    assert [image.request_payload["seed"] for image in first] == [job.seed for job in jobs]
    assert [image.data for image in again] == [image.data for image in first]
    assert all(a.data != b.data for a, b in zip(first, reseeded, strict=True))
    assert sorted(p["input"]["seed"] for p in emulator.account.predictions()) == [
        1001,
        1001,
        1002,
        1002,
        1003,
        1003,
        1008,
        1009,
        1010,
    ]


@pytest.mark.parametrize("max_concurrency", [1, 3, 8, 17])
def test_all_shots_are_in_flight_at_once_up_to_the_bound(
    emulator: ReplicateEmulator, portrait: bytes, max_concurrency: int
) -> None:
    emulator.behaviour.latency_s = 0.2  # long enough for every create to land while the first runs
    succeeded(run(replicate_backend(fast_settings()), portrait, make_jobs(9), max_concurrency))

    assert emulator.account.counters().peak_in_flight >= min(max_concurrency, 9)
    assert emulator.account.counters().peak_in_flight <= max_concurrency


def test_one_backend_serves_successive_event_loops(emulator: ReplicateEmulator, portrait: bytes) -> None:
    # The client's httpx.AsyncClient is loop-bound (replicate-python #217): a client per session.
    backend = replicate_backend(fast_settings())
    for _ in range(3):
        succeeded(run(backend, portrait, make_jobs(2)))
    assert emulator.account.counters().paid == 6


def test_concurrent_actors_share_one_backend(emulator: ReplicateEmulator, portrait: bytes) -> None:
    backend = replicate_backend(fast_settings())

    async def both() -> list[list[GeneratedImage | ShotGenerationError]]:
        alice = generate_all(backend, portrait, make_jobs(4, "alice"), 8)
        bob = generate_all(backend, portrait, make_jobs(4, "bob", "bob in scene {index}"), 8)
        return list(await asyncio.gather(alice, bob))

    for results in asyncio.run(both()):
        succeeded(results)
    assert emulator.account.counters().paid == 8


def test_outputs_given_as_data_uris_are_decoded(emulator: ReplicateEmulator, portrait: bytes) -> None:
    emulator.behaviour.data_uri_outputs = True
    [image] = succeeded(run(replicate_backend(fast_settings()), portrait, make_jobs(1)))

    assert (image.width, image.height) == (1392, 752)
    assert emulator.account.counters().download_requests == 0


def test_a_missing_token_is_a_configuration_error(
    emulator: ReplicateEmulator, portrait: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", "")
    with pytest.raises(ConfigurationError, match="set REPLICATE_API_TOKEN"):
        run(replicate_backend(fast_settings()), portrait, make_jobs(1))


def test_a_rejected_token_stops_at_the_first_401_naming_the_fix(
    emulator: ReplicateEmulator, portrait: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_wrong_token_value")
    with pytest.raises(CredentialsRefused) as refused:
        run(replicate_backend(fast_settings()), portrait, make_jobs(1))

    assert "401" in str(refused.value) and "set REPLICATE_API_TOKEN" in str(refused.value)
    assert "r8_wrong_token_value" not in str(refused.value)
    assert isinstance(refused.value, ConfigurationError)  # the CLI's exit 2
    assert emulator.account.counters().predictions_created == 0


def test_a_failed_upload_names_the_problem(emulator: ReplicateEmulator, large_portrait: bytes) -> None:
    emulator.account.inject("upload", Fault(400))
    with pytest.raises(RuntimeError, match=r"could not upload the portrait .* HTTP 400"):
        run(replicate_backend(fast_settings()), large_portrait, make_jobs(1))


def test_an_upload_refused_for_the_token_stops_naming_the_fix(
    emulator: ReplicateEmulator, large_portrait: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_wrong_token_value")
    with pytest.raises(CredentialsRefused, match=r"HTTP 401.*set REPLICATE_API_TOKEN"):
        run(replicate_backend(fast_settings()), large_portrait, make_jobs(1))

def test_polls_are_spaced_by_what_is_left_of_the_accounts_reads(emulator: ReplicateEmulator, portrait: bytes) -> None:
    # 100 reads a minute, and polls every 0.02 s: unspaced, 8 predictions of 2 s would ask about
    # 800 times and be answered 429 after the first 100.
    emulator.behaviour.latency_s = 2.0
    emulator.behaviour.reads_per_minute = 100
    succeeded(run(replicate_backend(fast_settings(reads_per_minute=100)), portrait, make_jobs(8)))

    counters = emulator.account.counters()
    assert counters.throttled == 0 and counters.paid == 8
    assert counters.polls <= 3 * 8, counters.polls


def test_the_read_pace_spreads_the_spare_reads_over_the_polls_in_flight() -> None:
    pace = ReadPace(per_minute=3000)  # a tenth, 300, kept spare
    assert pace.interval(1.0) == 1.0  # nothing heard yet
    with ExitStack() as polls:
        for _ in range(17):
            polls.enter_context(pace.polling())
        pace.observe(2999)
        assert pace.interval(1.0) == 1.0  # one actor's 17 polls: 1,020 a minute, well within
        pace.observe(810)
        assert pace.interval(1.0) == pytest.approx(17 * 30 / 510)
        pace.observe(300)
        assert pace.interval(1.0) == 10.0  # nothing spare: the longest interval
    with pace.polling():
        pace.observe(810)
        assert pace.interval(1.0) == 1.0  # the others ended


def test_cancel_stops_a_running_prediction_unpaid_and_counts_a_finished_one_paid(
    emulator: ReplicateEmulator, portrait: bytes
) -> None:
    # What the runner does with a create Replicate took late, after the shot had made it again.
    emulator.behaviour.slow = {"running": 60.0}
    client = replicate.Client(api_token=emulator.token, base_url=emulator.base_url)
    model = "black-forest-labs/flux-kontext-pro"
    running = client.models.predictions.create(model=model, input={"prompt": "still running", "seed": 1})
    finished = client.models.predictions.create(model=model, input={"prompt": "finished", "seed": 2}, wait=5)
    assert finished.status == "succeeded"

    async def cancel_both() -> list[Usage]:
        async with replicate_backend().session(portrait) as shots:
            return [await shots.cancel(running.id), await shots.cancel(finished.id)]  # type: ignore[attr-defined]

    stopped, paid = asyncio.run(cancel_both())
    assert (stopped.predictions_canceled, stopped.cost_usd) == (1, 0.0)
    assert (paid.predictions_succeeded, paid.cost_usd) == (1, 0.04)
    assert emulator.account.counters().paid == 1

"""The generation runner, without Dagster: concurrency, reuse, failure isolation, the ledger."""

import asyncio
import hashlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from actor_pipeline.catalog.model import load_catalog
from actor_pipeline.catalog.prompts import build_prompt_set
from actor_pipeline.generation.records import load_record
from actor_pipeline.generation.runner import ActorBatch, generate_shots
from actor_pipeline.generation.types import GeneratedImage, ShotGenerationError, ShotJob, ShotStatus, Usage
from actor_pipeline.outputs.debug import DebugWriter
from actor_pipeline.storage.layout import ActorLayout
from actor_pipeline.storage.local import LocalStorage
from actor_pipeline_tests.conftest import FlakyBackend, jpeg

CATALOG = load_catalog()
LAYOUT = ActorLayout("u1", "alice")


def batch(portrait: bytes, shot_ids: list[str] | None = None) -> ActorBatch:
    return ActorBatch(LAYOUT, build_prompt_set(CATALOG, "alice", "woman"), portrait, shot_ids or CATALOG.ids)


class PaidBackend:
    """Sleeps like a remote model, records the peak in flight, charges per image."""

    name, model, aspect_ratio = "paid", "test/model", "16:9"

    def __init__(self, outcome: dict[str, ShotStatus] | None = None) -> None:
        self.in_flight = self.peak = 0
        self.outcome = outcome or {}
        self.sessions = 0

    def fingerprint_params(self) -> Mapping[str, object]:
        return {}

    @asynccontextmanager
    async def session(self, portrait_jpeg: bytes) -> AsyncIterator["PaidBackend"]:
        self.sessions += 1
        yield self

    async def generate(self, job: ShotJob) -> GeneratedImage:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(0.02)
        self.in_flight -= 1
        status = self.outcome.get(job.shot_id)
        if status:
            raise ShotGenerationError(f"{status.value} by test", status, prediction_id="p-" + job.shot_id,
                                      usage=Usage(predictions_created=1, predictions_failed=1),
                                      request_payload={"prompt": job.prompt})
        return GeneratedImage(jpeg((1392, 752)), 1392, 752, prediction_id="p-" + job.shot_id,
                              usage=Usage(1, 1, 0, 0, 0.04), request_payload={"prompt": job.prompt,
                                                                              "input_image": "data:image/jpeg;base64,AAAA"})


def test_all_shots_in_flight_up_to_the_bound(storage: LocalStorage) -> None:
    backend = PaidBackend()
    outcomes = asyncio.run(generate_shots(batch(jpeg()), backend, storage, max_concurrency=5))
    assert backend.peak == 5 and backend.sessions == 1
    assert all(o.succeeded and not o.reused for o in outcomes)
    assert [o.record.index for o in outcomes] == list(range(1, 18))


def test_failures_are_isolated_and_recorded(storage: LocalStorage) -> None:
    backend = PaidBackend({"woodcut": ShotStatus.CONTENT_FLAGGED, "gouache": ShotStatus.CANCELED})
    outcomes = {o.record.shot_id: o for o in asyncio.run(generate_shots(batch(jpeg()), backend, storage, max_concurrency=17))}
    assert sum(o.succeeded for o in outcomes.values()) == 15
    flagged = load_record(storage, LAYOUT, "woodcut")
    assert flagged and flagged.status is ShotStatus.CONTENT_FLAGGED and flagged.error == "content_flagged by test"
    assert flagged.prediction_id == "p-woodcut" and flagged.image is None
    assert outcomes["gouache"].record.status is ShotStatus.CANCELED


def test_unexpected_exceptions_fail_only_their_shot(storage: LocalStorage) -> None:
    class Buggy(PaidBackend):
        async def generate(self, job: ShotJob) -> GeneratedImage:
            if job.shot_id == "charcoal":
                raise KeyError("boom")
            return await super().generate(job)

    outcomes = asyncio.run(generate_shots(batch(jpeg()), Buggy(), storage, max_concurrency=4))
    failed = [o.record for o in outcomes if not o.succeeded]
    assert [(r.shot_id, r.error) for r in failed] == [("charcoal", "KeyError: 'boom'")]


def test_a_session_that_cannot_start_fails_every_shot_clearly(storage: LocalStorage) -> None:
    class NoSession(PaidBackend):
        @asynccontextmanager
        async def session(self, portrait_jpeg: bytes) -> AsyncIterator["PaidBackend"]:
            raise ConnectionError("upload refused")
            yield self

    outcomes = asyncio.run(generate_shots(batch(jpeg()), NoSession(), storage, max_concurrency=4))
    assert all(not o.succeeded and "upload refused" in (o.record.error or "") for o in outcomes)


def test_ledger_is_cumulative_and_failures_keep_the_last_good_image(storage: LocalStorage) -> None:
    portrait = jpeg()
    asyncio.run(generate_shots(batch(portrait, ["pen_ink"]), PaidBackend(), storage, max_concurrency=2))
    good = load_record(storage, LAYOUT, "pen_ink")
    assert good and good.image and good.usage.cost_usd == 0.04
    failing = PaidBackend({"pen_ink": ShotStatus.FAILED})
    asyncio.run(generate_shots(batch(portrait, ["pen_ink"]), failing, storage, max_concurrency=2, force=True))
    after = load_record(storage, LAYOUT, "pen_ink")
    assert after and after.status is ShotStatus.FAILED and after.image == good.image and after.attempts == 2
    assert after.usage.predictions_created == 2 and after.usage.predictions_failed == 1
    assert storage.get(good.image.key)  # nothing made earlier is lost


def test_reuse_needs_the_same_inputs_and_the_stored_bytes(storage: LocalStorage) -> None:
    portrait = jpeg()
    backend = FlakyBackend()
    asyncio.run(generate_shots(batch(portrait), backend, storage, max_concurrency=8))
    backend.calls.clear()
    again = asyncio.run(generate_shots(batch(portrait), backend, storage, max_concurrency=8))
    assert backend.calls == [] and all(o.reused for o in again)

    record = load_record(storage, LAYOUT, "manga_screentone")
    assert record and record.image
    (storage.root / record.image.key).write_bytes(b"tampered")  # the stored image no longer matches
    asyncio.run(generate_shots(batch(portrait), backend, storage, max_concurrency=8))
    assert backend.calls == ["manga_screentone"]


def test_images_carry_object_metadata(storage: LocalStorage) -> None:
    asyncio.run(generate_shots(batch(jpeg(), ["comic_book"]), PaidBackend(), storage, max_concurrency=1))
    head = storage.head(LAYOUT.image(14))
    prompt = build_prompt_set(CATALOG, "alice", "woman").shot("comic_book")
    assert head and head.metadata == {
        "shot-id": "comic_book",
        "prompt-sha256": hashlib.sha256(prompt.prompt.encode()).hexdigest(),
        "seed": str(prompt.seed),
        "prediction-id": "p-comic_book",
    }


def test_debug_files_hold_images_and_payloads_without_image_data(storage: LocalStorage, tmp_path: Path) -> None:
    debug = DebugWriter(tmp_path / "debug")
    asyncio.run(generate_shots(batch(jpeg(), ["pen_ink", "woodcut"]), PaidBackend(), storage, max_concurrency=2, debug=debug))
    assert (tmp_path / "debug/training_data_output_8.jpg").read_bytes() == storage.get(LAYOUT.image(8))
    payload = (tmp_path / "debug/request_payload_11.json").read_text()
    assert "woodcut" in payload and "AAAA" not in payload and "characters omitted" in payload


@pytest.mark.parametrize("bound", [1, 3])
def test_bound_is_respected(storage: LocalStorage, bound: int) -> None:
    backend = PaidBackend()
    asyncio.run(generate_shots(batch(jpeg()), backend, storage, max_concurrency=bound))
    assert backend.peak == bound

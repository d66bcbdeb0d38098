"""The generation runner, without Dagster: concurrency, reuse, failure isolation, the ledger, and
the shot journal (resume from every step, stop requests, storage outages)."""

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import signal
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from actor_pipeline.catalog.model import load_catalog
from actor_pipeline.catalog.prompts import Wording, build_prompt_set
from actor_pipeline.errors import StorageUnavailable
from actor_pipeline.generation import stopping
from actor_pipeline.generation.debug import DebugWriter
from actor_pipeline.generation.journal import Attempt, ShotJournal, ShotRecord, Step
from actor_pipeline.generation.runner import ActorBatch, RunLimits, generate_shots
from actor_pipeline.generation.types import (
    GeneratedImage,
    Listing,
    ProviderDown,
    Recalled,
    ShotGenerationError,
    ShotJob,
    ShotProgress,
    ShotStatus,
    Usage,
)
from actor_pipeline.quality import SetChecker
from actor_pipeline.quality.model import CheckName, CheckResult, ImageAnalysis, Outcome, SetReport, ShotReport
from actor_pipeline.storage.folder import FolderStorage
from actor_pipeline.storage.layout import ActorLayout
from actor_pipeline_tests.support.backends import FlakyBackend
from actor_pipeline_tests.support.images import jpeg

CATALOG = load_catalog()
LAYOUT = ActorLayout("u1", "alice")
PROMPTS = build_prompt_set(CATALOG, "alice", "woman")


def batch(portrait: bytes, shot_ids: list[str] | None = None) -> ActorBatch:
    return ActorBatch(LAYOUT, PROMPTS, portrait, shot_ids or CATALOG.ids)


def run(storage: FolderStorage, backend: object, shot_ids: list[str] | None = None, **options: object) -> list:
    limits = RunLimits(max_concurrency=options.pop("max_concurrency", None), storage_outage_s=options.pop("outage", 30.0))  # type: ignore[arg-type]
    return asyncio.run(generate_shots(batch(PORTRAIT, shot_ids), backend, storage, limits=limits, **options))  # type: ignore[arg-type]


PORTRAIT = jpeg()


def load(storage: FolderStorage, shot_id: str) -> ShotRecord | None:
    return ShotJournal(storage, LAYOUT).load(PROMPTS.shot(shot_id))


class PaidBackend:
    """Sleeps like a remote model and reports each step as Replicate's backend does; records the
    peak in flight, what it created and what it was asked to resume."""

    name, model, aspect_ratio = "paid", "test/model", "16:9"

    def __init__(
        self,
        outcome: dict[str, ShotStatus] | None = None,
        delay_s: float = 0.02,
        stop_after_creates: int = 0,
        hold_until: int = 0,
    ) -> None:
        self.stop_after_creates = stop_after_creates  # then a SIGTERM arrives, with those in flight
        # Images are held until this many are in flight (or 5 s pass): the peak then does not
        # depend on how fast a loaded machine starts them.
        self.hold_until = hold_until
        self._all_in: asyncio.Event | None = None
        self.in_flight = self.peak = 0
        self.outcome = outcome or {}
        self.delay_s = delay_s
        self.sessions = 0
        self.created: list[str] = []
        self.resumed: dict[str, ShotJob] = {}

    def fingerprint_params(self) -> Mapping[str, object]:
        return {}

    @asynccontextmanager
    async def session(self, portrait_jpeg: bytes) -> AsyncIterator["PaidBackend"]:
        self.sessions += 1
        yield self

    async def generate(self, job: ShotJob, progress: ShotProgress) -> GeneratedImage:
        if job.resume:
            self.resumed[job.shot_id] = job
        if not (job.resume and job.resume.prediction_id):
            await progress.creating()
            self.created.append(job.shot_id)
            progress.usage.predictions_created += 1
            await progress.created("p-" + job.shot_id)
            if len(self.created) == self.stop_after_creates:
                stopping.request(signal.SIGTERM)  # while the others may still be journaling theirs
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self._all_in = self._all_in or asyncio.Event()
        if self.in_flight >= self.hold_until:
            self._all_in.set()
        try:
            # asyncio.timeout, not wait_for, which on Python 3.11 can swallow the cancellation
            # that a stop request sends as the event is set.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await self._all_in.wait()
            await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        status = self.outcome.get(job.shot_id)
        if status:
            progress.usage.predictions_failed += 1
            raise ShotGenerationError(f"{status.value} by test", status, prediction_id="p-" + job.shot_id,
                                      request_payload={"prompt": job.prompt})
        progress.usage.predictions_succeeded += 1
        progress.usage.cost_usd += 0.04
        await progress.output_ready("https://out/" + job.shot_id, datetime.now(UTC) + timedelta(hours=1))
        return GeneratedImage(jpeg((1392, 752)), 1392, 752, prediction_id="p-" + job.shot_id,
                              request_payload={"prompt": job.prompt, "input_image": "data:image/jpeg;base64,AAAA"})


@pytest.fixture(autouse=True)
def _no_stop_requested() -> Iterator[None]:
    stopping.reset()
    yield
    stopping.reset()


def test_every_shot_is_in_flight_by_default(storage: FolderStorage) -> None:
    backend = PaidBackend(hold_until=17)
    outcomes = run(storage, backend)
    assert backend.peak == 17 and backend.sessions == 1
    assert all(o.succeeded and not o.reused for o in outcomes)
    assert [o.record.index for o in outcomes] == list(range(1, 18))


@pytest.mark.parametrize("bound", [1, 3])
def test_bound_is_respected(storage: FolderStorage, bound: int) -> None:
    backend = PaidBackend(hold_until=bound)
    run(storage, backend, max_concurrency=bound)
    assert backend.peak == bound


def test_failures_are_isolated_and_recorded(storage: FolderStorage) -> None:
    backend = PaidBackend({"woodcut": ShotStatus.CONTENT_FLAGGED, "gouache": ShotStatus.CANCELED})
    outcomes = {o.record.shot_id: o for o in run(storage, backend)}
    assert sum(o.succeeded for o in outcomes.values()) == 15
    flagged = load(storage, "woodcut")
    assert flagged and flagged.status is ShotStatus.CONTENT_FLAGGED and flagged.error == "content_flagged by test"
    assert flagged.prediction_id == "p-woodcut" and flagged.image is None and flagged.attempt is None
    assert outcomes["gouache"].record.status is ShotStatus.CANCELED


def test_unexpected_exceptions_fail_only_their_shot(storage: FolderStorage) -> None:
    class Buggy(PaidBackend):
        async def generate(self, job: ShotJob, progress: ShotProgress) -> GeneratedImage:
            if job.shot_id == "charcoal":
                raise KeyError("boom")
            return await super().generate(job, progress)

    outcomes = run(storage, Buggy(), max_concurrency=4)
    failed = [o.record for o in outcomes if not o.succeeded]
    assert [(r.shot_id, r.error) for r in failed] == [("charcoal", "KeyError: 'boom'")]


def test_a_session_that_cannot_start_fails_every_shot_clearly(storage: FolderStorage) -> None:
    class NoSession(PaidBackend):
        @asynccontextmanager
        async def session(self, portrait_jpeg: bytes) -> AsyncIterator["PaidBackend"]:
            raise ConnectionError("upload refused")
            yield self

    outcomes = run(storage, NoSession())
    assert all(not o.succeeded and "upload refused" in (o.record.error or "") for o in outcomes)


def test_ledger_is_cumulative_and_failures_keep_the_last_good_image(storage: FolderStorage) -> None:
    run(storage, PaidBackend(), ["pen_ink"])
    good = load(storage, "pen_ink")
    assert good and good.image and good.usage.cost_usd == 0.04
    run(storage, PaidBackend({"pen_ink": ShotStatus.FAILED}), ["pen_ink"], force=True)
    after = load(storage, "pen_ink")
    assert after and after.status is ShotStatus.FAILED and after.image == good.image and after.attempts == 2
    assert after.usage.predictions_created == 2 and after.usage.predictions_failed == 1
    assert storage.get(good.image.key)  # nothing made earlier is lost


def test_reuse_needs_the_same_inputs_and_the_stored_bytes(storage: FolderStorage) -> None:
    backend = FlakyBackend()
    run(storage, backend, max_concurrency=8)
    backend.calls.clear()
    again = run(storage, backend, max_concurrency=8)
    assert backend.calls == [] and all(o.reused for o in again)

    record = load(storage, "manga_screentone")
    assert record and record.image
    (storage.root / record.image.key).write_bytes(b"tampered")  # the stored image no longer matches
    run(storage, backend, max_concurrency=8)
    assert backend.calls == ["manga_screentone"]


def test_force_or_another_portrait_makes_every_shot_again(storage: FolderStorage) -> None:
    backend = PaidBackend()
    run(storage, backend)
    run(storage, backend, force=True)
    assert len(backend.created) == 2 * 17
    other = jpeg(color=(40, 90, 160))  # another person, as far as the pipeline knows
    asyncio.run(generate_shots(batch(other), backend, storage))
    assert len(backend.created) == 3 * 17


def test_images_carry_what_rebuilds_their_record(storage: FolderStorage) -> None:
    run(storage, PaidBackend(), ["comic_book"])
    head = storage.head(LAYOUT.image(14))
    prompt = PROMPTS.shot("comic_book")
    assert head and {k: head.metadata[k] for k in ("shot-id", "prompt-sha256", "seed", "prediction-id")} == {
        "shot-id": "comic_book",
        "prompt-sha256": hashlib.sha256(prompt.prompt.encode()).hexdigest(),
        "seed": str(prompt.seed),
        "prediction-id": "p-comic_book",
    }
    assert json.loads(head.metadata["usage"])["cost_usd"] == 0.04


def test_debug_files_hold_images_and_payloads_without_image_data(storage: FolderStorage, tmp_path: Path) -> None:
    debug = DebugWriter(tmp_path / "debug")
    run(storage, PaidBackend(), ["pen_ink", "woodcut"], debug=debug)
    assert (tmp_path / "debug/training_data_output_8.jpg").read_bytes() == storage.get(LAYOUT.image(8))
    payload = (tmp_path / "debug/request_payload_11.json").read_text()
    assert "woodcut" in payload and "AAAA" not in payload and "characters omitted" in payload


# --- the journal -------------------------------------------------------------------------------


def journal_step(storage: FolderStorage, shot_id: str, step: Step, **attempt: object) -> None:
    """Leave the journal as a run killed at ``step`` would (its paid usage included)."""
    paid = step in (Step.OUTPUT_READY, Step.SPOOLED)
    usage = Usage(1, int(paid), 0, 0, 0.04 if paid else 0.0) if step is not Step.PLANNED else Usage()
    probe = PaidBackend()  # the fingerprint of the runner's inputs: take it from a real run's record
    run(storage, probe, [shot_id])
    made = load(storage, shot_id)
    assert made is not None
    storage.root.joinpath(LAYOUT.image(made.index)).unlink()
    storage.root.joinpath(LAYOUT.shot_record(shot_id)).unlink()
    record = made.model_copy(
        update={
            "status": ShotStatus.IN_PROGRESS,
            "image": None,
            "usage": usage,
            "attempts": 0 if step is Step.PLANNED else made.attempts,  # an attempt counts once it created something
            "attempt": Attempt(step=step, started_at=datetime.now(UTC), usage=usage, **attempt),  # type: ignore[arg-type]
        }
    )
    ShotJournal(storage, LAYOUT).write(record)


def test_a_created_prediction_is_adopted_not_paid_again(storage: FolderStorage) -> None:
    journal_step(storage, "pen_ink", Step.CREATED, prediction_id="p-pen_ink")
    backend = PaidBackend()
    [outcome] = run(storage, backend, ["pen_ink"])
    assert outcome.succeeded and backend.created == []
    assert backend.resumed["pen_ink"].resume and backend.resumed["pen_ink"].resume.prediction_id == "p-pen_ink"
    record = load(storage, "pen_ink")
    assert record and record.attempts == 1 and record.usage.predictions_created == 1 and record.usage.cost_usd == 0.04
    assert not ShotJournal(storage, LAYOUT).folder.joinpath("pen_ink.json").exists()  # settled in storage


def test_a_create_whose_answer_was_lost_is_resumed_from_its_intent(storage: FolderStorage) -> None:
    journal_step(storage, "woodcut", Step.PLANNED)
    backend = PaidBackend()
    run(storage, backend, ["woodcut"])
    resumed = backend.resumed["woodcut"].resume
    assert resumed and resumed.prediction_id is None  # the backend looks it up before creating
    record = load(storage, "woodcut")
    assert record and record.made and record.attempts == 1


def test_spooled_bytes_are_stored_without_the_backend(storage: FolderStorage) -> None:
    data = jpeg((1392, 752), (10, 20, 30))
    journal_step(storage, "gouache", Step.SPOOLED, prediction_id="p-gouache", spool_sha256=hashlib.sha256(data).hexdigest())
    ShotJournal(storage, LAYOUT).spool("gouache", data)
    backend = PaidBackend()
    [outcome] = run(storage, backend, ["gouache"])
    assert outcome.succeeded and backend.resumed == {} and backend.created == []
    assert storage.get(LAYOUT.image(17)) == data
    assert load(storage, "gouache").usage.cost_usd == 0.04  # type: ignore[union-attr]
    assert not list(ShotJournal(storage, LAYOUT).spool_folder.glob("*"))


def test_a_stop_request_creates_nothing_more_and_leaves_the_journal_resumable(storage: FolderStorage) -> None:
    backend = PaidBackend(delay_s=5.0, stop_after_creates=3, hold_until=3)  # the stop cuts the 5 s short
    outcomes = run(storage, backend, max_concurrency=3)
    assert len(backend.created) == 3 and not any(o.succeeded for o in outcomes)
    in_flight = [s for s in CATALOG.ids if (r := load(storage, s)) and r.status is ShotStatus.IN_PROGRESS]
    assert sorted(in_flight) == sorted(backend.created)
    steps = {s: load(storage, s).attempt.step for s in in_flight}  # type: ignore[union-attr]
    assert set(steps.values()) == {Step.CREATED}, steps

    stopping.reset()
    again = PaidBackend()
    assert all(o.succeeded for o in run(storage, again))
    assert sorted(again.resumed) == sorted(in_flight) and len(again.created) == 14  # 3 adopted, none paid twice


class StopMidWrite(PaidBackend):
    """Its first shot asks to stop while the journal write of its prediction is still under way."""

    async def generate(self, job: ShotJob, progress: ShotProgress) -> GeneratedImage:
        await progress.creating()
        self.created.append(job.shot_id)
        progress.usage.predictions_created += 1
        journaling = asyncio.ensure_future(progress.created("p-" + job.shot_id))
        await asyncio.sleep(0)  # the write is handed to a thread
        stopping.request(signal.SIGTERM)
        await journaling
        raise AssertionError("the stop cancels the shot while its step is being written")


def test_a_stop_waits_for_the_journal_write_under_way(storage: FolderStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    write = ShotJournal.write

    def slow_write(journal: ShotJournal, record: ShotRecord) -> None:
        time.sleep(0.3)
        write(journal, record)

    monkeypatch.setattr(ShotJournal, "write", slow_write)
    backend = StopMidWrite()
    outcomes = {o.record.shot_id: o for o in run(storage, backend, max_concurrency=1)}
    (shot,) = backend.created
    recorded = load(storage, shot)
    assert recorded is not None and recorded.attempt is not None and recorded.attempt.step is Step.CREATED
    interrupted = outcomes[shot].record  # what the run reports: the journal once the write ended
    assert interrupted.attempt is not None and interrupted.attempt.step is Step.CREATED
    assert interrupted.prediction_id == "p-" + shot and "stopped by SIGTERM" in (interrupted.error or "")


class DownStorage(FolderStorage):
    """Local storage whose image writes fail while ``down``."""

    down = False

    def put(self, key: str, data: bytes, content_type: str, metadata: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        if self.down and key.endswith(".jpg"):
            raise StorageUnavailable("emulated outage")
        return super().put(key, data, content_type, metadata)

    def check(self) -> None:
        if self.down:
            raise StorageUnavailable("emulated outage")


def test_a_storage_outage_stops_creates_and_keeps_paid_bytes_for_the_next_run(tmp_path: Path) -> None:
    storage = DownStorage(tmp_path / "store")
    storage.down = True
    backend = PaidBackend()
    outcomes = run(storage, backend, max_concurrency=2, outage=0.3)
    assert len(backend.created) == 2  # the first two paid; then no more while storage is down
    assert not any(o.succeeded for o in outcomes)
    assert ShotJournal(storage, LAYOUT).spooled_count() == 2

    storage.down = False
    again = PaidBackend()
    assert all(o.succeeded for o in run(storage, again))
    assert len(again.created) == 15 and again.resumed == {}  # the two spooled ones were stored at no cost


def test_a_short_outage_is_bridged_within_the_run(tmp_path: Path) -> None:
    storage = DownStorage(tmp_path / "store")
    storage.down = True

    async def recover() -> list:
        async def lift() -> None:
            await asyncio.sleep(0.6)
            storage.down = False

        limits = RunLimits(max_concurrency=4, storage_outage_s=10)
        outcomes, _ = await asyncio.gather(generate_shots(batch(PORTRAIT), PaidBackend(), storage, limits=limits), lift())
        return outcomes

    assert all(o.succeeded for o in asyncio.run(recover()))


def test_a_garbled_record_is_rebuilt_from_the_stored_image(storage: FolderStorage) -> None:
    run(storage, PaidBackend(), ["charcoal"])
    made = load(storage, "charcoal")
    storage.root.joinpath(LAYOUT.shot_record("charcoal")).write_text('{"shot_id": "charc')
    rebuilt = load(storage, "charcoal")
    assert rebuilt and rebuilt.made and rebuilt.fingerprint == made.fingerprint and rebuilt.usage == made.usage  # type: ignore[union-attr]
    backend = PaidBackend()
    [outcome] = run(storage, backend, ["charcoal"])
    assert outcome.reused and backend.created == []


def test_a_garbled_record_without_an_image_names_the_file_and_fails_only_its_shot(storage: FolderStorage) -> None:
    storage.put(LAYOUT.shot_record("graphite_sketch"), b"\x00garbage", "application/json")
    record = load(storage, "graphite_sketch")
    assert record and record.status is ShotStatus.FAILED and "graphite_sketch.json" in (record.error or "")
    assert all(o.succeeded for o in run(storage, PaidBackend()))


# --- rewordings after safety-filter flags ------------------------------------------------------


def test_a_flagged_shot_is_retried_with_its_rewordings_then_left_flagged(storage: FolderStorage) -> None:
    shot = PROMPTS.shot("woodcut")
    reworded = shot.model_copy(update={"rewordings": (Wording(prompt="calm woodcut", seed=7), Wording(prompt="woodcut print", seed=8))})
    prompts = PROMPTS.model_copy(update={"shots": tuple(reworded if s.shot_id == "woodcut" else s for s in PROMPTS.shots)})

    class FlagsWords(PaidBackend):
        """Flags the prompts named in ``refused``."""

        def __init__(self, refused: set[str]) -> None:
            super().__init__()
            self.refused = refused
            self.sent: list[tuple[str, int]] = []

        async def generate(self, job: ShotJob, progress: ShotProgress) -> GeneratedImage:
            self.sent.append((job.prompt, job.seed))
            self.outcome = {job.shot_id: ShotStatus.CONTENT_FLAGGED} if job.prompt in self.refused else {}
            return await super().generate(job, progress)

    def attempt(backend: PaidBackend) -> ShotRecord:
        batch = ActorBatch(LAYOUT, prompts, PORTRAIT, ["woodcut"])
        [outcome] = asyncio.run(generate_shots(batch, backend, storage))
        return outcome.record

    everything = {shot.prompt, "calm woodcut", "woodcut print"}
    first, second, third = FlagsWords(everything), FlagsWords(everything), FlagsWords(everything)
    assert attempt(first).wording == 0 and first.sent == [(shot.prompt, shot.seed)]
    assert attempt(second).wording == 1 and second.sent == [("calm woodcut", 7)]
    flagged = attempt(third)
    assert third.sent == [("woodcut print", 8)] and flagged.status is ShotStatus.CONTENT_FLAGGED
    assert flagged.attempts == 3 and flagged.usage.predictions_created == 3

    exhausted = FlagsWords(everything)
    left = attempt(exhausted)
    assert exhausted.sent == [] and left.status is ShotStatus.CONTENT_FLAGGED  # bounded: nothing paid
    assert "all 2 rewording(s)" in (left.error or "")

    # A rewording that passes is kept: the next run reuses its image rather than going back.
    storage.root.joinpath(LAYOUT.shot_record("woodcut")).unlink()
    assert attempt(FlagsWords({shot.prompt})).status is ShotStatus.CONTENT_FLAGGED
    assert attempt(FlagsWords({shot.prompt})).wording == 1
    again = FlagsWords(set())
    reused = attempt(again)
    assert again.sent == [] and reused.made and reused.prompt == "calm woodcut"


# --- quality-gated regeneration --------------------------------------------------------------


class QualityFailing:
    """A quality check that fails shot ``s`` (a blocking colour leak) its first ``failing[s]``
    times, and records what it saw; it keeps no analysis, so it sees every image every time."""

    def __init__(self, failing: dict[str, int]) -> None:
        self.failing = failing
        self.seen: list[dict[str, bytes | ImageAnalysis]] = []

    def reusable(self, shot: str, image_sha256: str, analysis: ImageAnalysis) -> bool:
        return False

    def check(self, images: Mapping[str, bytes | ImageAnalysis]) -> SetReport:
        self.seen.append(dict(images))
        shots = {}
        for shot_id in images:
            bad = self.failing.get(shot_id, 0) > 0
            self.failing[shot_id] = self.failing.get(shot_id, 0) - 1
            outcome = Outcome.FAILED if bad else Outcome.PASSED
            result = CheckResult(check=CheckName.MONOCHROME, outcome=outcome, reason="colour leak" if bad else "ok", blocking=True)
            shots[shot_id] = ShotReport(shot=shot_id, category=PROMPTS.shot(shot_id).category, results=(result,))
        return SetReport(shots=shots)


def test_a_shot_failing_a_blocking_check_is_regenerated_with_new_inputs_and_its_cost_counted(storage: FolderStorage) -> None:
    backend = PaidBackend()
    check = QualityFailing({"woodcut": 1})
    outcomes = {o.record.shot_id: o.record for o in asyncio.run(
        generate_shots(batch(PORTRAIT), backend, storage, quality=check)
    )}
    assert backend.created.count("woodcut") == 2 and len(backend.created) == 18  # one regeneration, paid once more
    woodcut = load(storage, "woodcut")
    assert woodcut and woodcut.qc == "regenerated" and woodcut.regenerations == 1 and woodcut.attempts == 2
    assert woodcut.usage.cost_usd == pytest.approx(0.08) and woodcut.wording == 1  # the next wording: new prompt and seed
    assert outcomes["woodcut"].made and load(storage, "pen_ink").qc == "passed"  # type: ignore[union-attr]
    assert len(check.seen) == 2 and len(check.seen[1]) == 17  # the whole set is checked again (duplicates)


class Repainting(PaidBackend):
    """Each image a new flat colour, so a remade shot's image differs from its last."""

    async def generate(self, job: ShotJob, progress: ShotProgress) -> GeneratedImage:
        made = await super().generate(job, progress)
        return dataclasses.replace(made, data=jpeg((1392, 752), (len(self.created) * 13 % 256, 90, 60)))


class Recording:
    """A ``SetChecker`` that records what each check was given."""

    def __init__(self, checker: SetChecker) -> None:
        self.checker, self.seen = checker, list[dict[str, bytes | ImageAnalysis]]()

    def reusable(self, shot: str, image_sha256: str, analysis: ImageAnalysis) -> bool:
        return self.checker.reusable(shot, image_sha256, analysis)

    def check(self, images: Mapping[str, bytes | ImageAnalysis]) -> SetReport:
        self.seen.append(dict(images))
        return self.checker.check(images)


def test_a_rerun_measures_only_the_images_it_made_and_its_verdicts_match_a_full_check(storage: FolderStorage) -> None:
    checker = SetChecker(PORTRAIT, {shot.shot_id: shot.category for shot in PROMPTS.shots}, "human", identity=False)
    recording, limits = Recording(checker), RunLimits(qc_attempts=0)
    asyncio.run(generate_shots(batch(PORTRAIT), Repainting(), storage, limits=limits, quality=recording))
    remade = ["pen_ink", "gouache"]
    asyncio.run(generate_shots(batch(PORTRAIT, remade), Repainting(), storage, limits=limits, force=True, quality=recording))

    first, rerun = recording.seen
    assert all(isinstance(image, bytes) for image in first.values()) and len(first) == 17
    assert sorted(s for s, image in rerun.items() if isinstance(image, bytes)) == sorted(remade) and len(rerun) == 17
    records = {shot_id: load(storage, shot_id) for shot_id in CATALOG.ids}
    fresh = checker.check({shot_id: storage.get(r.image.key) for shot_id, r in records.items() if r and r.image})
    assert {shot_id: r.quality for shot_id, r in records.items() if r} == {
        shot_id: list(report.results) for shot_id, report in fresh.shots.items()
    }


def test_regeneration_stops_at_its_bound_and_the_shot_stays_failed_visibly(storage: FolderStorage) -> None:
    backend = PaidBackend()
    limits = RunLimits(qc_attempts=2)
    asyncio.run(generate_shots(batch(PORTRAIT), backend, storage, limits=limits, quality=QualityFailing({"gouache": 99})))
    gouache = load(storage, "gouache")
    assert backend.created.count("gouache") == 3  # the first image and two regenerations, no more
    assert gouache and gouache.qc == "failed" and gouache.regenerations == 2 and gouache.made
    assert [r.reason for r in gouache.quality if r.blocks] == ["colour leak"]

    again = PaidBackend()  # a later run does not spend more on it either
    asyncio.run(generate_shots(batch(PORTRAIT), again, storage, limits=limits, quality=QualityFailing({"gouache": 99})))
    assert again.created == []


# --- the journal reads; the makers repair ---------------------------------------------------------


def test_load_only_reads_and_the_makers_load_repairs(storage: FolderStorage) -> None:
    run(storage, PaidBackend(), ["charcoal"])
    journal = ShotJournal(storage, LAYOUT)
    entry = journal.folder / "charcoal.json"
    entry.write_text('{"shot_id": "charc')
    storage.root.joinpath(LAYOUT.shot_record("charcoal")).write_text('{"shot_id": "charc')
    before = storage.root.joinpath(LAYOUT.shot_record("charcoal")).read_bytes()

    read = journal.load(PROMPTS.shot("charcoal"))
    assert read and read.made  # rebuilt from the stored image, in memory
    assert entry.read_text() == '{"shot_id": "charc' and journal.unreadable_entry("charcoal") == entry
    assert storage.root.joinpath(LAYOUT.shot_record("charcoal")).read_bytes() == before

    journal.load(PROMPTS.shot("charcoal"), repair=True)
    assert not entry.exists() and entry.with_name("charcoal.json.corrupt").exists()
    assert storage.root.joinpath(LAYOUT.shot_record("charcoal")).read_bytes() != before  # the rebuilt record


def test_an_entry_made_stale_by_another_maker_gives_way_to_its_stored_record(storage: FolderStorage) -> None:
    journal_step(storage, "pen_ink", Step.CREATED, prediction_id="p-pen_ink")
    stale = ShotJournal(storage, LAYOUT).folder / "pen_ink.json"
    kept = stale.read_bytes()
    stale.unlink()
    run(storage, PaidBackend(), ["pen_ink"])  # another machine makes the shot meanwhile
    stale.write_bytes(kept)

    assert (record := load(storage, "pen_ink")) and record.made and stale.exists()  # read: nothing dropped
    backend = PaidBackend()
    [outcome] = run(storage, backend, ["pen_ink"])
    assert outcome.reused and backend.resumed == {} and not stale.exists()


# --- the provider's list --------------------------------------------------------------------------


class ListingBackend(PaidBackend):
    """``PaidBackend`` whose provider lists ``listed`` (and counts the list reads)."""

    def __init__(self, listed: list[Recalled], down: bool = False) -> None:
        super().__init__()
        self.listed, self.down, self.reads = listed, down, 0
        self.made_again: dict[tuple[str, int], datetime] = {}
        self.canceled: list[str] = []

    async def cancel(self, prediction_id: str) -> Usage:
        self.canceled.append(prediction_id)
        return Usage(predictions_created=1, predictions_canceled=1, predictions_recovered=1)

    async def recall(self, wordings: set[tuple[str, int]], since: datetime) -> Listing:
        self.reads += 1
        if self.down:
            raise ProviderDown("Replicate did not answer for 3 s; nothing was paid")
        return Listing([p for p in self.listed if (p.prompt, p.seed) in wordings], [])


def listed(shot_id: str, *, adoptable: bool, paid: bool, wording: int = 0) -> Recalled:
    words = PROMPTS.shot(shot_id).wording(wording)
    usage = Usage(1, int(paid), 0, 0, 0.04 if paid else 0.0, 1)
    return Recalled("r-" + shot_id, words.prompt, words.seed, datetime.now(UTC), usage, not paid, adoptable)


def test_a_listed_prediction_the_journal_lost_is_adopted_and_paid_once(storage: FolderStorage) -> None:
    backend = ListingBackend([listed("woodcut", adoptable=True, paid=False)])
    [outcome] = run(storage, backend, ["woodcut"])

    assert outcome.succeeded and backend.created == [] and backend.reads == 1
    assert backend.resumed["woodcut"].resume.prediction_id == "r-woodcut"  # type: ignore[union-attr]
    usage = outcome.record.usage
    assert (usage.predictions_created, usage.predictions_recovered, usage.cost_usd) == (1, 1, 0.04)
    assert outcome.record.predictions == ["r-woodcut"] and outcome.record.attempts == 1


@pytest.mark.parametrize("force", [False, True])
def test_a_listed_prediction_that_cannot_be_adopted_is_counted_and_the_shot_made_again(
    storage: FolderStorage, force: bool
) -> None:
    backend = ListingBackend([listed("woodcut", adoptable=force, paid=True)])  # force never adopts
    [outcome] = run(storage, backend, ["woodcut"], force=force)

    assert outcome.succeeded and backend.created == ["woodcut"]
    usage = outcome.record.usage
    assert (usage.predictions_created, usage.predictions_recovered, usage.cost_usd) == (2, 1, 0.08)
    assert outcome.record.predictions == ["r-woodcut", "p-woodcut"]


class LateTakingBackend(ListingBackend):
    """As Replicate under load: the woodcut's create got no answer and was made again, and the
    provider took two earlier creates late, one already ended (paid) and one still running
    (canceled, as no shot will use it)."""

    def __init__(self) -> None:
        super().__init__([])

    async def generate(self, job: ShotJob, progress: ShotProgress) -> GeneratedImage:
        image = await super().generate(job, progress)
        if job.shot_id == "woodcut":
            self.made_again[(job.prompt, job.seed)] = datetime.now(UTC)
            paid, running = Usage(1, 1, 0, 0, 0.04, 1), Usage(1, 0, 0, 0, 0.0, 1)
            now = datetime.now(UTC)
            self.listed = [
                Recalled("late-paid", job.prompt, job.seed, now, paid, False, False),
                Recalled("late-running", job.prompt, job.seed, now, running, True, False),
                Recalled("p-woodcut", job.prompt, job.seed, now, paid, False, True),  # the one it kept
            ]
        return image


def test_creates_taken_late_are_added_to_the_ledger_at_the_runs_end(
    storage: FolderStorage, caplog: pytest.LogCaptureFixture
) -> None:
    backend = LateTakingBackend()
    woodcut, pen_ink = run(storage, backend, ["woodcut", "pen_ink"])

    assert backend.reads == 2 and backend.made_again == {}  # the run's first read, and one at its end
    assert backend.canceled == ["late-running"]  # no shot will use it: stopped before it is billed
    assert woodcut.record.predictions == ["p-woodcut", "late-paid", "late-running"]
    usage = woodcut.record.usage
    assert (usage.predictions_created, usage.predictions_canceled, usage.cost_usd) == (3, 1, 0.08)
    assert load(storage, "woodcut") == woodcut.record  # journaled
    assert pen_ink.record.predictions == ["p-pen_ink"]
    assert "2 added to the ledger ($0.04, 1 canceled unfinished)" in caplog.text


def test_a_listed_prediction_the_record_already_counts_is_not_counted_twice(storage: FolderStorage) -> None:
    run(storage, PaidBackend(), ["woodcut"])
    record = load(storage, "woodcut")
    assert record is not None
    legacy = record.model_copy(update={"predictions": [], "prediction_id": None, "image": None})
    storage.put(LAYOUT.shot_record("woodcut"), legacy.model_dump_json().encode(), "application/json")
    backend = ListingBackend([listed("woodcut", adoptable=False, paid=True)])
    [outcome] = run(storage, backend, ["woodcut"])
    # A record kept before prediction ids were: its one created prediction is the listed one.
    assert outcome.record.usage.predictions_created == 2 and outcome.record.usage.predictions_recovered == 0


def test_the_provider_down_before_the_first_create_leaves_every_shot_pending_without_a_try(
    storage: FolderStorage, caplog: pytest.LogCaptureFixture
) -> None:
    backend = ListingBackend([], down=True)
    with caplog.at_level(logging.WARNING):
        outcomes = run(storage, backend)

    assert backend.created == [] and all(o.record.status is ShotStatus.PENDING for o in outcomes)
    assert all(o.record.attempts == 0 and "did not answer" in (o.record.error or "") for o in outcomes)
    assert [r.message for r in caplog.records if "did not answer" in r.message] == [
        f"alice: {len(outcomes)} shot(s) not made: Replicate did not answer for 3 s; nothing was paid"
    ]
    assert all((r := load(storage, shot_id)) and r.error and "did not answer" in r.error for shot_id in CATALOG.ids)

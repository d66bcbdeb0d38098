"""Make the shots of one actor concurrently, journaling every step and resuming what an earlier
run left half-way, so no interruption pays twice or loses a paid image.

This is plain asyncio: the Dagster asset is a thin wrapper around ``generate_shots``. One failed
shot never affects the others. Four things close the gate for new predictions while the shots
already paid for go on: a stop signal (``stopping``), a lost lease, storage that stopped
answering (creates wait for it up to ``storage_outage_s``, then give up for this run), and the
provider refusing the token (the run then raises ``CredentialsRefused``).

Before it creates anything, a run reads the provider's list of predictions once
(``RecallsPredictions``): a prediction for one of its shots that the journal does not know (the
state folder lost or garbled, another machine's run) is adopted while it lives, and added to the
shot's ledger otherwise, so that the ledger equals the bill. A run that created a shot again after a
create got no answer (``made_again``) reads the list once more at its end, for a first create
Replicate took late.
"""

import asyncio
import contextlib
import hashlib
import io
import logging
import signal
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

from PIL import Image

from actor_pipeline.catalog.prompts import PlannedShot, PromptSet
from actor_pipeline.errors import CredentialsRefused, StorageUnavailable
from actor_pipeline.generation import stopping
from actor_pipeline.generation.budget import (
    DEFAULT_REGEN_BUDGET_PCT,
    DEFAULT_SYSTEMIC_PCT,
    KEPT_REASONS,
    CapReached,
    RegenBudget,
    Spending,
    load_verdict,
    regen_budget,
    save_verdict,
    systemic_failures,
)
from actor_pipeline.generation.debug import DebugWriter
from actor_pipeline.generation.journal import (
    Attempt,
    ShotJournal,
    ShotRecord,
    Step,
    StoredImage,
    fingerprint,
    image_metadata,
)
from actor_pipeline.generation.types import (
    CreatesClosed,
    Faded,
    ImageBackend,
    ProviderDown,
    Recalled,
    RecallsPredictions,
    Resume,
    ShotGenerationError,
    ShotGenerator,
    ShotJob,
    ShotStatus,
    Usage,
    usd,
)
from actor_pipeline.quality.model import ImageAnalysis, SetReport
from actor_pipeline.storage.base import Storage
from actor_pipeline.storage.layout import ActorLayout
from actor_pipeline.storage.prediction_index import prediction_owners

log = logging.getLogger(__name__)

DEFAULT_SHOT_TIMEOUT_S = 240.0
DEFAULT_STORAGE_OUTAGE_S = 30.0
DEFAULT_QC_ATTEMPTS = 2
_PROBE_INTERVAL_S = 1.0


@dataclass(frozen=True)
class ShotOutcome:
    record: ShotRecord
    reused: bool  # an identical image already existed; nothing was generated or paid for

    @property
    def succeeded(self) -> bool:
        return self.record.made


@dataclass(frozen=True)
class ActorBatch:
    """One actor's inputs for a generation run."""

    layout: ActorLayout
    prompt_set: PromptSet
    portrait_jpeg: bytes
    shot_ids: Sequence[str]
    # No prediction for the actor is older (its first registration): where the provider's list is read from.
    known_since: datetime = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RunLimits:
    """How much of everything a run may take."""

    max_concurrency: int | None = None  # shots of the actor in flight at once; None: all of them
    shot_timeout_s: float = DEFAULT_SHOT_TIMEOUT_S  # create, polling, download and store together
    storage_outage_s: float = DEFAULT_STORAGE_OUTAGE_S  # how long creates wait for storage to answer
    qc_attempts: int = DEFAULT_QC_ATTEMPTS  # regenerations per shot that fails a blocking quality check
    regen_budget_pct: float = DEFAULT_REGEN_BUDGET_PCT  # the set's regenerations, as % of its shots (budget.py)
    systemic_pct: float = DEFAULT_SYSTEMIC_PCT  # a check failing on this % of the set is not regenerated for


# The thumbnail a stored image's record keeps, from its bytes (outputs.thumbnails, via stages).
Thumbnailer = Callable[[PlannedShot, bytes], str]


class Quality(Protocol):
    """Checks one actor's made images: ``actor_pipeline.quality.SetChecker``."""

    def reusable(self, shot: str, image_sha256: str, analysis: ImageAnalysis) -> bool: ...

    def check(self, images_by_shot: Mapping[str, bytes | ImageAnalysis]) -> SetReport: ...


async def generate_shots(
    batch: ActorBatch,
    backend: ImageBackend,
    storage: Storage,
    *,
    limits: RunLimits = RunLimits(),
    force: bool = False,
    debug: DebugWriter | None = None,
    lease_lost: Callable[[], bool] = lambda: False,
    quality: Quality | None = None,
    spending: Spending | None = None,
    thumbnail: Thumbnailer | None = None,
) -> list[ShotOutcome]:
    """Make, resume or reuse every shot in ``batch.shot_ids``; with ``quality``, check the set and
    regenerate shots that fail a blocking check (``limits.qc_attempts`` times at most, over all
    runs, within the set's regeneration budget). ``spending`` caps what the run's creates cost
    (shared by a run's actors). A stop request ends the run early with the journal consistent:
    the caller checks ``stopping.requested()``. ``thumbnail`` makes the thumbnail each stored
    image's record keeps."""
    journal = ShotJournal(storage, batch.layout)
    await asyncio.to_thread(journal.flush)
    planned = [batch.prompt_set.shot(shot_id) for shot_id in batch.shot_ids]
    async with contextlib.AsyncExitStack() as sessions:
        run = _ActorRun(
            batch,
            backend,
            storage,
            journal,
            limits,
            debug,
            _Gate(storage, limits.storage_outage_s, lease_lost, spending),
            sessions,
            portrait_sha=hashlib.sha256(batch.portrait_jpeg).hexdigest(),
            params=backend.fingerprint_params(),
            thumbnail=thumbnail,
        )
        for shot in planned:
            run.plan(shot, await asyncio.to_thread(journal.load, shot, repair=True))
        outcomes = await run.make_set(planned, force, quality)
    if run.gate.refused is not None:
        raise run.gate.refused
    return [outcomes[shot_id] for shot_id in batch.shot_ids if shot_id in outcomes]


def _wording(record: ShotRecord | None) -> int:
    """Which wording the shot's next attempt uses: the next one after a safety-filter flag (the
    same words would be refused again), else the last one tried."""
    if record is None:
        return 0
    return record.wording + 1 if record.status is ShotStatus.CONTENT_FLAGGED else record.wording


def _refused_every_wording(shot: PlannedShot, record: ShotRecord | None) -> bool:
    return record is not None and record.status is ShotStatus.CONTENT_FLAGGED and record.wording >= len(shot.rewordings)


def _still_valid(storage: Storage, record: ShotRecord, expected_fingerprint: str) -> bool:
    if not record.made or record.fingerprint != expected_fingerprint or not record.image:
        return False
    stored = storage.head(record.image.key)
    return stored is not None and stored.sha256 == record.image.sha256


@dataclass
class _Gate:
    """Whether a new prediction may be created now."""

    storage: Storage
    outage_s: float
    lease_lost: Callable[[], bool]
    spending: Spending | None = None
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    refused: CredentialsRefused | None = None  # the provider refused the token: nothing more is created
    down_since: float | None = None
    _probe: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def admit(self) -> None:
        while True:
            if self.stopped.is_set():
                raise CreatesClosed(f"not started: the run was stopped ({_signal_name()})")
            if self.lease_lost():
                raise CreatesClosed("not started: another maker took over the actor's lease")
            if self.refused is not None:
                raise CreatesClosed(f"not started: {self.refused}")
            if self.down_since is None:
                return
            if time.monotonic() - self.down_since > self.outage_s:
                raise CreatesClosed("not started: storage is unreachable, so no prediction was created")
            async with self._probe:
                if self.down_since is not None:
                    try:
                        await asyncio.to_thread(self.storage.check)
                        self.storage_up()
                    except StorageUnavailable:
                        await asyncio.sleep(_PROBE_INTERVAL_S)

    def charge(self) -> None:
        """Charge one prediction to the run's spending cap (``CapReached`` past it)."""
        if self.spending is not None:
            self.spending.charge()

    def affords(self, predictions: int) -> bool:
        return self.spending is None or self.spending.affords(predictions)

    def storage_down(self) -> None:
        if self.down_since is None:
            log.warning("storage stopped answering: no new predictions until it answers again")
            self.down_since = time.monotonic()

    def storage_up(self) -> None:
        if self.down_since is not None:
            log.info("storage answers again")
            self.down_since = None


def _signal_name() -> str:
    signum = stopping.requested()
    return signal.Signals(signum).name if signum else "stop requested"


@dataclass
class _ActorRun:
    """What every shot of one ``generate_shots`` call shares."""

    batch: ActorBatch
    backend: ImageBackend
    storage: Storage
    journal: ShotJournal
    limits: RunLimits
    debug: DebugWriter | None
    gate: _Gate
    sessions: contextlib.AsyncExitStack  # the backend session, entered once per run
    portrait_sha: str
    params: Mapping[str, object]  # the backend's settings that shape an image
    wordings: dict[str, int] = field(default_factory=dict)  # shot id -> the wording its next attempt uses
    prints: dict[str, str] = field(default_factory=dict)  # shot id -> fingerprint of its next attempt's inputs
    previous: dict[str, ShotRecord | None] = field(default_factory=dict)  # shot id -> its journal now
    generator: ShotGenerator | None = None
    recalled: bool = False  # the provider's list was read this run
    unstarted: dict[str, CreatesClosed] = field(default_factory=dict)  # shot id -> why it was not let start
    writes: set[asyncio.Future[None]] = field(default_factory=set)  # journal writes under way
    thumbnail: Thumbnailer | None = None

    def plan(self, shot: PlannedShot, record: ShotRecord | None) -> None:
        """What the shot's next attempt sends, given its journal."""
        self.previous[shot.shot_id] = record
        self.wordings[shot.shot_id] = _wording(record)
        words = shot.wording(self.wordings[shot.shot_id])
        b = self.backend
        self.prints[shot.shot_id] = fingerprint(self.portrait_sha, words.prompt, words.seed, b.name, b.model, self.params)

    async def make_set(self, planned: list[PlannedShot], force: bool, quality: Quality | None) -> dict[str, ShotOutcome]:
        """Reuse what is made, make the rest, then check the set's quality."""
        outcomes: dict[str, ShotOutcome] = {}
        todo: list[PlannedShot] = []
        for shot in planned:
            record = self.previous[shot.shot_id]
            if _refused_every_wording(shot, record):
                outcomes[shot.shot_id] = self.refused_every_wording(shot)
            elif not force and record and await asyncio.to_thread(_still_valid, self.storage, record, self.prints[shot.shot_id]):
                outcomes[shot.shot_id] = ShotOutcome(record, reused=True)
            else:
                todo.append(shot)
        if outcomes:
            log.info("%s: %d shot(s) already made with the same inputs, reused", self.batch.layout.actor_id, len(outcomes))
        if todo:
            outcomes.update((o.record.shot_id, o) for o in await self.make_all(todo, force))
        if quality is not None and self.gate.refused is None:
            await self.gate_on_quality(planned, outcomes, quality)
        return outcomes

    async def gate_on_quality(self, planned: list[PlannedShot], outcomes: dict[str, ShotOutcome], quality: Quality) -> None:
        """Check the made set; regenerate (next wording, new seed) what fails a blocking check, as
        far as ``RegenBudget`` allows; record every result on its shot, and the decisions in the
        set's ``QualityVerdict``."""
        actor_id = self.batch.layout.actor_id
        by_id = {shot.shot_id: shot for shot in planned}
        # Shots outside this run count too: a near-duplicate may pair with any shot of the set,
        # and the regeneration budget is the set's.
        others = [s for s in self.batch.prompt_set.shots if s.shot_id not in by_id]
        journals = {s.shot_id: r for s in others if (r := await asyncio.to_thread(self.journal.load, s))}
        elsewhere = {sid: r for sid, r in journals.items() if r.made}
        set_size = len(self.batch.prompt_set.shots)
        earlier = await asyncio.to_thread(load_verdict, self.storage, self.batch.layout)
        budget = RegenBudget(
            regen_budget(set_size, self.limits.regen_budget_pct),
            spent=sum(r.regenerations for r in [*journals.values(), *(o.record for o in outcomes.values())]),
            qc_attempts=self.limits.qc_attempts,
            kept=dict(earlier.kept) if earlier else {},
        )
        first_check = True
        while True:
            records = {**elsewhere, **{sid: o.record for sid, o in outcomes.items() if o.succeeded}}
            made = {s.shot_id: records[s.shot_id] for s in self.batch.prompt_set.shots if s.shot_id in records}
            if not any(sid in by_id for sid in made):
                return
            images = {
                sid: await self._image_to_check(sid, r.image, r.analysis, quality) for sid, r in made.items() if r.image
            }
            if measured := sum(not isinstance(image, ImageAnalysis) for image in images.values()):
                # Seconds of CPU (faces most of it): the terminal says why it is quiet meanwhile.
                log.info("%s: checking the quality of %d image(s)", actor_id, measured)
            report = await asyncio.to_thread(quality.check, images)
            if first_check:  # what the first pass shows; regenerated shots do not make a check systemic
                budget.systemic = systemic_failures(report, set_size, self.limits.systemic_pct)
                for found in budget.systemic:
                    log.warning("%s: %s", actor_id, found.message)
                first_check = False
            again: list[PlannedShot] = []
            for sid, shot_report in report.shots.items():
                record = made[sid]
                record.quality = list(shot_report.results)
                record.analysis = report.analyses.get(sid)
                if shot_report.passed:
                    budget.passed(sid)
                elif sid in by_id and not self.gate.stopped.is_set():
                    failed = {r.check for r in shot_report.results if r.blocks}
                    names = ", ".join(sorted(c.value for c in failed))
                    kept = budget.decide(sid, failed, record.regenerations, self.gate.affords(len(again) + 1))
                    if kept is None:
                        log.warning("%s: shot %s failed quality (%s): regenerating", actor_id, sid, names)
                        record.regenerations += 1
                        record.wording += 1
                        again.append(by_id[sid])
                    elif kept != "systemic":  # that one is said once, for the whole set
                        reason = KEPT_REASONS[kept]
                        log.warning("%s: shot %s failed quality (%s): kept, as %s", actor_id, sid, names, reason)
                await self._try(self._settle, record)
            try:
                await asyncio.to_thread(save_verdict, self.storage, self.batch.layout, budget.verdict())
            except (OSError, StorageUnavailable) as exc:  # the next quality pass writes it again
                log.error("%s: could not store the quality verdict: %s", actor_id, exc)
            if not again:
                return
            for shot in again:
                self.plan(shot, outcomes[shot.shot_id].record)
            outcomes.update((o.record.shot_id, o) for o in await self.make_all(again, force=False))

    async def _image_to_check(
        self, shot_id: str, image: StoredImage, analysis: ImageAnalysis | None, quality: Quality
    ) -> bytes | ImageAnalysis:
        """The image's kept analysis while it holds (no download, no measuring), else its bytes."""
        if analysis is not None and quality.reusable(shot_id, image.sha256, analysis):
            return analysis
        return await asyncio.to_thread(self.storage.get, image.key)

    async def make_all(self, todo: list[PlannedShot], force: bool) -> list[ShotOutcome]:
        semaphore = asyncio.Semaphore(self.limits.max_concurrency or len(todo))
        loop = asyncio.get_running_loop()

        async def one(generator: ShotGenerator, shot: PlannedShot) -> ShotOutcome:
            async with semaphore:
                return await self.make(shot, generator, force)

        with stopping.handle_signals(), stopping.listening(lambda: loop.call_soon_threadsafe(self.gate.stopped.set)):
            try:
                generator = await self._session()
                if isinstance(generator, RecallsPredictions) and not self.recalled:
                    await self._recall(generator, todo, force)
            except CredentialsRefused:
                raise
            except CreatesClosed as exc:  # the provider is down: nothing is started
                outcomes = [self._unmade(shot, exc) for shot in todo]
                await self._summarize_unstarted(outcomes)
                return outcomes
            except Exception as exc:  # e.g. the portrait upload failed: every shot fails, clearly
                failure = ShotGenerationError(f"could not start a {self.backend.name} session: {exc}")
                return [self._unmade(shot, failure) for shot in todo]
            tasks = [asyncio.create_task(one(generator, shot)) for shot in todo]
            finished = asyncio.gather(*tasks, return_exceptions=True)
            stopper = asyncio.ensure_future(self.gate.stopped.wait())
            await asyncio.wait([finished, stopper], return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            # On a stop, shots under way end here: each has journaled its last step, and a
            # created prediction is left to finish at Replicate, for the next run to adopt.
            for task in tasks:
                task.cancel()
            results = await finished
            # A cancelled shot's last step may still be queued for a thread: the interrupted
            # outcomes read the journal, and the loop's end would cancel a write not yet started.
            await asyncio.gather(*self.writes, return_exceptions=True)
        outcomes = [
            result if isinstance(result, ShotOutcome) else self._interrupted(shot)
            for shot, result in zip(todo, results, strict=True)
        ]
        if isinstance(generator, RecallsPredictions) and generator.made_again:
            await self._count_late_creates(generator, outcomes)
        await self._summarize_unstarted(outcomes)
        return outcomes

    async def _count_late_creates(self, generator: RecallsPredictions, outcomes: list[ShotOutcome]) -> None:
        """Add to the shots' ledgers the predictions that creates which got no answer made after
        all (Replicate took them after the shot had created again), so that the ledger equals the
        bill at the run's end. One still running is canceled first, as no shot will use it; one
        that cannot be is left to ``actor-pipeline ledger``."""
        wordings, generator.made_again = generator.made_again, {}
        actor = self.batch.layout.actor_id
        try:
            listed = (await generator.recall(set(wordings), min(wordings.values()))).matched
        except Exception as exc:  # the ledger command reads the same list later
            log.warning("%s: Replicate's list could not be read for creates taken late (%s): "
                        "`actor-pipeline ledger --actor-id %s` compares it", actor, exc, actor)  # fmt: skip
            return
        for outcome in outcomes:
            record = outcome.record
            known = {*record.predictions, record.prediction_id}
            late = [p for p in listed if (p.prompt, p.seed) == (record.prompt, record.seed) and p.prediction_id not in known]
            counted: list[Usage] = []
            for prediction in late:
                usage = await self._ended_usage(generator, record.shot_id, prediction)
                if usage is not None:
                    record.predictions.append(prediction.prediction_id)
                    record.usage += usage
                    counted.append(usage)
            if late:
                log.warning(
                    "%s: shot %s: Replicate took %d create(s) that got no answer after all: %d added to the ledger "
                    "($%.2f, %d canceled unfinished)%s", actor, record.shot_id, len(late), len(counted),
                    sum(u.cost_usd for u in counted), sum(u.predictions_canceled for u in counted),
                    f"; `actor-pipeline ledger --actor-id {actor} --reconcile` adds the rest" if len(counted) < len(late) else "",
                )  # fmt: skip
            if counted:
                await self._journal_as_is(record)

    async def _ended_usage(self, generator: RecallsPredictions, shot_id: str, prediction: Recalled) -> Usage | None:
        """What a prediction taken late costs once it has ended: one still running is canceled
        first, as no shot will use it; ``None`` if it could not be (the ledger command counts it later)."""
        if not prediction.running:
            return prediction.usage
        try:
            return await generator.cancel(prediction.prediction_id)
        except Exception as exc:
            log.warning("%s: shot %s: could not cancel prediction %s, taken late (%s)",
                        self.batch.layout.actor_id, shot_id, prediction.prediction_id, exc)  # fmt: skip
            return None

    async def _session(self) -> ShotGenerator:
        if self.generator is None:
            self.generator = await self.sessions.enter_async_context(self.backend.session(self.batch.portrait_jpeg))
        return self.generator

    async def _recall(self, generator: RecallsPredictions, todo: list[PlannedShot], force: bool) -> None:
        """Read the provider's list once; adopt or count what it has for ``todo`` that the
        journal does not know."""
        owner: dict[tuple[str, int], str] = {}
        for shot in todo:
            for words in shot.possible_wordings(self.limits.qc_attempts, self.wordings[shot.shot_id]):
                owner[(words.prompt, words.seed)] = shot.shot_id
        started = [r.attempt.started_at for r in self.previous.values() if r and r.attempt]
        since = min([self.batch.known_since, *started])
        listing = await generator.recall(set(owner), since)
        self.recalled = True
        by_shot: dict[str, list[Recalled]] = defaultdict(list)
        for prediction in listing.matched:
            by_shot[owner[(prediction.prompt, prediction.seed)]].append(prediction)
        unknown = adopted = 0
        paid = 0.0
        for shot in todo:
            if by_shot[shot.shot_id]:
                found_here, adopted_here, paid_here = self._reconcile(shot, by_shot[shot.shot_id], force)
                unknown, adopted, paid = unknown + found_here, adopted + adopted_here, paid + paid_here
        if unknown:
            log.warning(
                "%s: Replicate lists %d prediction(s) of this run's shots that our journal did not have: %d adopted, "
                "%d added to the ledger ($%.2f)", self.batch.layout.actor_id, unknown, adopted, unknown - adopted, paid,
            )  # fmt: skip
        if listing.faded and any(self.previous[shot.shot_id] is None for shot in todo):
            await self._warn_untied(listing.faded)

    async def _warn_untied(self, faded: list[Faded]) -> None:
        """Shots our state never saw, and predictions older than an hour that no record here names:
        where the actor's state folder was lost, some of these paid for its shots, which are made
        (and paid) again now; past their hour no list can tell which. Storage that does not
        answer skips the warning, not the shots."""
        try:
            owners = await asyncio.to_thread(prediction_owners, self.storage, [p.prediction_id for p in faded])
        except Exception as exc:  # a warning never fails the shots
            log.warning("%s: the prediction index could not be read (%s)", self.batch.layout.actor_id, exc)
            return
        if untied := [prediction for prediction in faded if prediction.prediction_id not in owners]:
            actor = self.batch.layout.actor_id
            log.warning(
                "%s: Replicate lists %d prediction(s) (%s) made over an hour ago, whose inputs it has removed, that no "
                "record here names: if this actor's state folder was lost, some paid for shots made again now; "
                "`actor-pipeline ledger --actor-id %s` counts them", actor, len(untied),
                usd(sum((prediction.usage for prediction in untied), Usage()).cost_usd), actor,
            )  # fmt: skip

    def _reconcile(self, shot: PlannedShot, listed: list[Recalled], force: bool) -> tuple[int, int, float]:
        """Add the listed predictions the shot's journal does not know to its ledger; adopt the
        newest that can still give this attempt its image, unless the journal has one under way.
        Returns how many it did not know, adopted (0 or 1), and the dollars added."""
        before = self.previous[shot.shot_id]
        known = set(before.predictions) | {before.prediction_id} if before else set()
        unknown = [p for p in listed if p.prediction_id not in known]
        if before is not None:
            # A record from before prediction ids were kept counts some it cannot name: the oldest.
            named = len(known - {None})
            unknown = unknown[: max(0, len(unknown) - max(0, before.usage.predictions_created - named))]
        if not unknown:
            return 0, 0, 0.0
        words = shot.wording(self.wordings[shot.shot_id])
        under_way = before is not None and before.attempt is not None and before.attempt.prediction_id is not None
        adopt = None
        if not force and not under_way:
            adopt = next((p for p in unknown if p.adoptable and (p.prompt, p.seed) == (words.prompt, words.seed)), None)
        fp = self.prints[shot.shot_id]
        record = before.model_copy(deep=True) if before else _working_record(None, shot, 0, fp, self.backend, None)
        for prediction in unknown:
            record.predictions.append(prediction.prediction_id)
            record.attempts += 1
            if prediction is not adopt:
                record.usage += prediction.usage
        if adopt is not None:
            adopted = Usage(predictions_created=1, predictions_recovered=1)
            record.usage += adopted
            record.prediction_id = adopt.prediction_id
            record.status, record.fingerprint = ShotStatus.IN_PROGRESS, fp
            record.attempt = Attempt(
                step=Step.CREATED, started_at=adopt.created_at, prediction_id=adopt.prediction_id, usage=adopted
            )
        paid = sum(p.usage.cost_usd for p in unknown if p is not adopt)
        log.debug("%s: shot %s: %d listed prediction(s) unknown to the journal; adopted %s",
                  self.batch.layout.actor_id, shot.shot_id, len(unknown), adopt.prediction_id if adopt else None)
        self.previous[shot.shot_id] = record
        return len(unknown), int(adopt is not None), paid

    async def _summarize_unstarted(self, outcomes: list[ShotOutcome]) -> None:
        """One line per reason the gate gave for shots it did not let start, not one per shot. A
        provider outage or the spending cap is also journaled on them, so that the manifest and
        status say why."""
        reasons: dict[str, int] = defaultdict(int)
        for outcome in outcomes:
            reason = self.unstarted.pop(outcome.record.shot_id, None)
            if reason is None:
                continue
            reasons[str(reason)] += 1
            # A made image refused a redo by the cap stays as it was.
            if isinstance(reason, ProviderDown) or isinstance(reason, CapReached) and not outcome.record.made:
                await self._journal_as_is(outcome.record)
        for reason_text, count in reasons.items():
            log.warning("%s: %d shot(s) not made: %s", self.batch.layout.actor_id, count, reason_text)

    async def make(self, shot: PlannedShot, generator: ShotGenerator, force: bool) -> ShotOutcome:
        before = self.previous[shot.shot_id]
        fp = self.prints[shot.shot_id]
        resumable = not force and before is not None and before.attempt is not None and before.fingerprint == fp
        attempt = before.attempt if resumable and before else None
        record = _working_record(before, shot, self.wordings[shot.shot_id], fp, self.backend, attempt)
        usage = attempt.usage if attempt else Usage()
        base = record.usage - usage
        started = time.monotonic()
        deadline = started + self.limits.shot_timeout_s
        try:
            async with asyncio.timeout(self.limits.shot_timeout_s) as timer:
                data = self.journal.spooled(shot.shot_id, attempt.spool_sha256) if attempt and attempt.spool_sha256 else None
                if data is None:
                    progress = _Progress(self, record, base, usage, timer, deadline)
                    job = ShotJob(
                        self.batch.layout.actor_id,
                        shot.shot_id,
                        shot.index,
                        record.prompt,
                        record.seed,
                        deadline,
                        _resume(attempt, before, self.recalled),
                    )
                    image = await generator.generate(job, progress)
                    record.prediction_id = image.prediction_id or record.prediction_id
                    if self.debug:
                        self.debug.write_request(shot.index, image.request_payload)
                        self.debug.write_image(shot.index, image.data)
                    data = image.data
                    if record.attempt is None:  # a backend that creates nothing (the preview)
                        record.attempts += 1
                        record.attempt = Attempt(step=Step.SPOOLED, started_at=datetime.now(UTC))
                    record.attempt.spool_sha256 = await asyncio.to_thread(self.journal.spool, shot.shot_id, data)
                    await self._journal(record, Step.SPOOLED, base, usage)
                record.image = await self._store(shot, record, data)
                record.status, record.attempt, record.error = ShotStatus.SUCCEEDED, None, None
                record.duration_s = round(time.monotonic() - started, 3)
                record.usage = base + usage
                await asyncio.to_thread(self._settle, record)
        except CredentialsRefused as exc:
            self.gate.refused = self.gate.refused or exc
            return self._unmade(shot, exc)
        except CreatesClosed as exc:
            return self._unmade(shot, exc)
        except ShotGenerationError as exc:
            if self.debug:
                self.debug.write_request(shot.index, exc.request_payload)
            record.error = str(exc)
            record.prediction_id = exc.prediction_id or record.prediction_id
            record.usage = base + usage
            if exc.status is ShotStatus.IN_PROGRESS and record.attempt is not None:
                record.attempt.error = str(exc)
                record.attempt.usage = usage
                await self._try(self.journal.write, record)
            else:
                if record.attempt is None or record.attempt.prediction_id is None:
                    record.attempts += 1  # refused before anything was created (not an outage): still a try
                record.status, record.attempt = exc.status, None
                await self._try(self._settle, record)
        except TimeoutError:
            message = f"not finished within {self.limits.shot_timeout_s:g} s; a rerun continues it"
            record.error, record.usage = message, base + usage
            if record.attempt is not None:
                record.attempt.error, record.attempt.usage = message, usage
                await self._try(self.journal.write, record)
        except StorageUnavailable as exc:
            self.gate.storage_down()
            record.error, record.usage = str(exc), base + usage
            if record.attempt is not None:
                record.attempt.error, record.attempt.usage = str(exc), usage
                await self._try(self.journal.write, record)
        except Exception as exc:  # a bug or an unexpected backend error must not take other shots down
            log.exception("%s: shot %s: unexpected error", self.batch.layout.actor_id, shot.shot_id)
            record.error, record.usage = f"{type(exc).__name__}: {exc}", base + usage
            if record.attempt is not None:
                record.attempt.error, record.attempt.usage = record.error, usage
                await self._try(self.journal.write, record)
        self._log(shot, record)
        return ShotOutcome(record, reused=False)

    async def _journal(self, record: ShotRecord, step: Step, base: Usage, usage: Usage) -> None:
        """Write the attempt's ``step`` before the next costly one; a journal that cannot be
        written stops the attempt (as an outage) rather than spend unrecorded money."""
        assert record.attempt is not None
        record.attempt.step = step
        record.attempt.usage = Usage(**usage.__dict__)
        record.usage = base + usage
        record.status = ShotStatus.IN_PROGRESS
        # Shielded and kept: a stop that cancels the shot must not drop a step whose write is
        # still queued for a thread (the prediction would exist with the journal a step behind).
        write = asyncio.ensure_future(asyncio.to_thread(self.journal.write, record))
        self.writes.add(write)
        write.add_done_callback(self.writes.discard)
        try:
            await asyncio.shield(write)
        except OSError as exc:
            raise StorageUnavailable(f"cannot write the shot journal under {self.journal.folder}: {exc.strerror}") from exc

    async def _store(self, shot: PlannedShot, record: ShotRecord, data: bytes) -> StoredImage:
        """Put the image, retrying while storage is down (within the shot's deadline and the
        outage allowance); the bytes stay spooled until it works."""
        with Image.open(io.BytesIO(data)) as decoded:
            width, height = decoded.size  # trust the bytes, not the backend's claim
        key = self.batch.layout.image(shot.index)
        record.image = None
        attempt = 0
        while True:
            try:
                stored = await asyncio.to_thread(self.storage.put, key, data, "image/jpeg", image_metadata(record))
            except StorageUnavailable:
                self.gate.storage_down()
                assert self.gate.down_since is not None
                if time.monotonic() - self.gate.down_since > self.gate.outage_s:
                    raise
                attempt += 1
                await asyncio.sleep(min(8.0, 0.5 * 2 ** (attempt - 1)))
                continue
            self.gate.storage_up()
            thumbnail = await asyncio.to_thread(self.thumbnail, shot, data) if self.thumbnail else None
            return StoredImage(
                key=stored.key, sha256=stored.sha256, width=width, height=height, bytes=stored.size, thumbnail=thumbnail
            )

    def _settle(self, record: ShotRecord) -> None:
        try:
            self.journal.settle(record)
        except OSError as exc:  # the local entry could not be written: publish straight away
            log.warning("%s: journal entry of %s not written (%s)", self.batch.layout.actor_id, record.shot_id, exc)
            self.storage.put(self.batch.layout.shot_record(record.shot_id), record.model_dump_json(indent=2).encode(), "application/json")

    async def _journal_as_is(self, record: ShotRecord) -> None:
        """Journal a record changed after its shot ended: settled if it has no attempt under way."""
        await self._try(self._settle if record.attempt is None else self.journal.write, record)

    async def _try(self, write: Callable[[ShotRecord], None], record: ShotRecord) -> None:
        """Journal an ending that is already safe to lose (a rerun redoes at most free work)."""
        try:
            await asyncio.to_thread(write, record)
        except (OSError, StorageUnavailable) as exc:
            self.gate.storage_down()
            log.error("%s: could not journal shot %s: %s", self.batch.layout.actor_id, record.shot_id, exc)

    def refused_every_wording(self, shot: PlannedShot) -> ShotOutcome:
        """A shot the safety filter refused in every wording: not tried again, visibly."""
        record = self.previous[shot.shot_id]
        assert record is not None
        record = record.model_copy(deep=True)
        record.error = (
            f"flagged by the safety filter with its prompt and all {len(shot.rewordings)} rewording(s); not tried "
            f"again: add a rewording to shot {shot.shot_id!r} in the catalog, or check the portrait. Last: {record.error}"
        )
        self._log(shot, record)
        return ShotOutcome(record, reused=False)

    def _unmade(self, shot: PlannedShot, reason: Exception) -> ShotOutcome:
        """A shot this run did not start: its journal is left as it was. Shots the gate held
        back are told in one line by ``_summarize_unstarted``."""
        before = self.previous[shot.shot_id]
        record = (before.model_copy(deep=True) if before else None) or _working_record(
            None, shot, 0, self.prints[shot.shot_id], self.backend, None
        )
        if before is None:
            record.status = ShotStatus.PENDING
        record.error = str(reason)
        if isinstance(reason, CreatesClosed):
            self.unstarted[shot.shot_id] = reason
        else:
            self._log(shot, record)
        return ShotOutcome(record, reused=False)

    def _interrupted(self, shot: PlannedShot) -> ShotOutcome:
        """A shot cut short by a stop: what its journal says now."""
        record = self.journal.load(shot) or _working_record(None, shot, 0, self.prints[shot.shot_id], self.backend, None)
        if record.status is ShotStatus.IN_PROGRESS or record.attempt is None and not record.made:
            record.error = f"stopped by {_signal_name()} before it finished; a rerun continues it"
        return ShotOutcome(record, reused=False)

    def _log(self, shot: PlannedShot, record: ShotRecord) -> None:
        actor_id = self.batch.layout.actor_id
        outcome = f": {record.error}" if record.error else f" in {record.duration_s or 0:.2f}s"
        level = logging.INFO if record.made else logging.WARNING
        log.log(level, "%s: shot %02d %s %s%s", actor_id, shot.index, shot.shot_id, record.status.value, outcome)


@dataclass
class _Progress:
    """Journals each step a backend reports, before the backend goes on."""

    run: _ActorRun
    record: ShotRecord
    base: Usage
    usage: Usage
    timer: asyncio.Timeout  # the shot's timeout, counted again from each create request
    deadline: float
    charged: bool = False  # to the run's spending cap

    async def creating(self) -> datetime:
        await self.run.gate.admit()
        if not self.charged:  # creates retried within one attempt make one prediction at most
            self.run.gate.charge()
            self.charged = True
        timeout_s = self.run.limits.shot_timeout_s
        self.deadline = time.monotonic() + timeout_s
        self.timer.reschedule(asyncio.get_running_loop().time() + timeout_s)
        if self.record.attempt is None:
            self.record.attempt = Attempt(step=Step.PLANNED, started_at=datetime.now(UTC))
        # A create retried within the attempt keeps the first start: the lookup must cover it.
        await self._write(Step.PLANNED)
        return self.record.attempt.started_at

    async def created(self, prediction_id: str) -> None:
        """A prediction exists: the attempt counts (one that paid nothing does not)."""
        assert self.record.attempt is not None
        self.record.attempt.prediction_id = self.record.prediction_id = prediction_id
        self.record.predictions.append(prediction_id)
        self.record.attempts += 1
        await self._write(Step.CREATED)

    async def output_ready(self, url: str, expires_at: datetime) -> None:
        assert self.record.attempt is not None
        self.record.attempt.output_url, self.record.attempt.output_expires_at = url, expires_at
        await self._write(Step.OUTPUT_READY)

    async def _write(self, step: Step) -> None:
        await self.run._journal(self.record, step, self.base, self.usage)


def _working_record(
    before: ShotRecord | None, shot: PlannedShot, wording: int, fp: str, backend: ImageBackend, attempt: Attempt | None
) -> ShotRecord:
    """The record this run updates: the earlier one continued (same attempt) or a new attempt."""
    words = shot.wording(wording)
    record = ShotRecord(
        shot_id=shot.shot_id,
        index=shot.index,
        status=ShotStatus.IN_PROGRESS if attempt else ShotStatus.PENDING,
        fingerprint=fp,
        prompt=words.prompt,
        seed=words.seed,
        wording=wording,
        backend=backend.name,
        model=backend.model,
        image=before.image if before else None,  # a failure keeps the last good image
        predictions=list(before.predictions) if before else [],
        analysis=before.analysis if before else None,
        attempt=attempt.model_copy(deep=True) if attempt else None,
        prediction_id=before.prediction_id if before else None,
        attempts=before.attempts if before else 0,
        usage=before.usage if before else Usage(),
        regenerations=before.regenerations if before else 0,
    )
    if attempt is None and before is not None and before.attempt is not None:
        # An unfinished attempt with other inputs is abandoned: its cost stays in the ledger.
        record.attempt = None
    return record


def _resume(attempt: Attempt | None, before: ShotRecord | None, searched: bool) -> Resume | None:
    if attempt is None:
        return None
    return Resume(
        started_at=attempt.started_at,
        prediction_id=attempt.prediction_id,
        output_url=attempt.output_url,
        output_expires_at=attempt.output_expires_at,
        # Before this attempt created anything, the record's prediction is an earlier attempt's.
        earlier_prediction=before.prediction_id if before and attempt.prediction_id is None else None,
        searched=searched,
    )


def first_step(
    shot: PlannedShot,
    record: ShotRecord | None,
    storage: Storage,
    portrait_sha256: str,
    backend: ImageBackend,
    *,
    force: bool = False,
) -> Literal["refused", "reused", "resumed", "create"]:
    """What ``generate_shots`` does first with ``shot``, given its journal ``record``, for an
    estimate that creates nothing: ``refused`` (flagged in every wording: not tried again),
    ``reused`` (made with the same inputs), ``resumed`` (an earlier run's prediction is adopted,
    paid for there) or ``create``."""
    if _refused_every_wording(shot, record):
        return "refused"
    words = shot.wording(_wording(record))
    b = backend
    fp = fingerprint(portrait_sha256, words.prompt, words.seed, b.name, b.model, b.fingerprint_params())
    if record is None or force:
        return "create"
    if _still_valid(storage, record, fp):
        return "reused"
    attempt = record.attempt
    if attempt is not None and record.fingerprint == fp and (attempt.prediction_id or attempt.spool_sha256):
        return "resumed"
    return "create"

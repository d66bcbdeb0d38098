"""Train an actor's LoRA from its bundle: never twice, never lost.

Holding the actor's lease, ``train_lora`` first finishes a training an earlier run left under
way (by its id, or, when the create's answer was lost, found in Replicate's trainings list by its
upload), then reuses a succeeded training of the same bundle and config unless asked to retrain,
and only then pays for a new one: checks first (bundle minimum, token, destination), then the
intent, the upload, the create, each journaled before the next. A training is followed to its
end, its step progress reported, and canceled at its deadline; it ends recorded with its cost.
A stop request leaves a created training running: the next run adopts it.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.errors import ConfigurationError, InputError, Interrupted, NotMadeYet, TrainingFailed, Unavailable
from actor_pipeline.generation import stopping
from actor_pipeline.generation.replicate.outage import refuse_credentials
from actor_pipeline.generation.replicate.problems import describe
from actor_pipeline.generation.replicate.retry import http_status
from actor_pipeline.generation.types import usd
from actor_pipeline.outputs.manifest import BundleInfo
from actor_pipeline.storage.lease import hold_actor
from actor_pipeline.training.record import TrainingJournal, TrainingRecord, TrainingStatus
from actor_pipeline.training.types import TERMINAL, Trainer, TrainerSession, TrainingState

log = logging.getLogger(__name__)

Report = Callable[[str], None]


@dataclass(frozen=True)
class Maker:
    """Who trains or validates: named for a second maker's ``ActorBusy``, waiting up to
    ``lease_wait_s`` for the actor's lease, its progress lines also sent to ``report`` (a Dagster
    run's log; they always go to the package's log, the CLI's stderr)."""

    name: str
    lease_wait_s: float = 0.0
    report: Report | None = None

    def say(self, line: str) -> None:
        log.info(line)
        if self.report is not None:
            self.report(line)


@dataclass(frozen=True)
class TrainedLora:
    record: TrainingRecord
    reused: bool  # an earlier training of the same bundle and config: nothing paid now


def load_bundle(actor: ActorContext) -> BundleInfo:
    actor_id = actor.actor_id
    try:
        return BundleInfo.model_validate_json(actor.storage.get(actor.layout.bundle_report))
    except FileNotFoundError:
        raise NotMadeYet(
            f"actor {actor_id!r} has no LoRA bundle yet: make its set first (`actor-pipeline generate ... "
            f"--actor-id {actor_id}`)"
        ) from None


async def train_lora(
    actor: ActorContext,
    trainer: Trainer,
    maker: Maker,
    *,
    retrain: bool = False,
) -> TrainedLora:
    """The actor's trained LoRA for its current bundle and ``trainer.settings``: reused if one was
    trained (unless ``retrain``), else trained now.
    Raises ``InputError`` before paying for a refused bundle, token or destination,
    ``TrainingFailed`` (recorded, cost counted) for a training that ended without a model, and
    ``Interrupted`` on a stop request (a created training keeps running for the next run)."""
    settings = trainer.settings
    say = maker.say
    storage, actor_id = actor.storage, actor.actor_id
    bundle = load_bundle(actor)
    images = len(bundle.report.images)
    if images < settings.min_images:
        raise InputError(
            f"the LoRA bundle of {actor_id!r} holds {images} image(s), fewer than the trainer's minimum of "
            f"{settings.min_images}: make more usable images (`actor-pipeline retry-failed --actor-id {actor_id}`) "
            "or lower training.min_images (--min-train-images); nothing was paid"
        )
    trigger = bundle.report.trigger
    fingerprint = settings.fingerprint(bundle.sha256, trigger)
    journal = TrainingJournal(storage, actor.layout)
    with hold_actor(storage, actor_id, maker.name, wait_s=maker.lease_wait_s):
        async with trainer.session() as session:
            follow = _Follower(session, journal, trainer, say, actor_id)
            under_way = journal.current(repair=True)
            if under_way is not None:
                adopted = await follow.resume(under_way)
                if adopted is not None and adopted.fingerprint == fingerprint:
                    return TrainedLora(follow.outcome(adopted), reused=False)
            if not retrain and (done := journal.history().succeeded(fingerprint)) is not None:
                say(f"{actor_id}: reusing training {done.training_id} of this bundle and config ({done.model_version}): nothing paid")
                return TrainedLora(done, reused=True)
            account = await session.account()
            try:
                destination = settings.destination(actor_id, account)
            except ValueError as exc:
                raise ConfigurationError(f"{exc}: set training.model_name to a name of lowercase letters, digits and -_.") from None
            await session.ensure_destination(destination)
            record = TrainingRecord(
                fingerprint=fingerprint,
                bundle_sha256=bundle.sha256,
                bundle_images=images,
                trainer=settings.trainer,
                trainer_version=settings.trainer_version,
                destination=destination,
                trigger=trigger,
                config=settings.trainer_input(trigger),
                status=TrainingStatus.INTENT,
                started_at=datetime.now(UTC),
            )
            # A training our records lost (a lost state folder, another machine's run): Replicate's
            # list says it was paid for. A retrain adopts only one still running.
            listed = await session.find_bundle(record.config, bundle.sha256, actor.registration.known_since)
            if listed is not None and (not retrain or listed.status not in TERMINAL):
                record.input_images = listed.input_images
                follow.adopted(record, listed, recovered=True)
                return TrainedLora(follow.outcome(await follow.until_ended(record, await session.get(listed.id))), reused=False)
            refuse_over_cap(trainer, "a new training and its validation", settings.validation_images, training=True)
            journal.write(record)
            data = storage.get(bundle.key)
            record.input_images = await session.upload(data, f"actor_{actor_id}_lora.zip")
            journal.write(record)
            state = await follow.create(record)
            return TrainedLora(follow.outcome(await follow.until_ended(record, state)), reused=False)


def refuse_over_cap(trainer: Trainer, what: str, images: int, *, training: bool) -> None:
    """Raise ``ConfigurationError``, before anything is paid, when the most ``what`` can be billed
    (a training cut off at its deadline, if ``training``, and ``images`` validation images) is over
    ``training.max_cost_usd``."""
    s = trainer.settings
    per_s, per_image = trainer.price_per_second_usd(), trainer.price_per_image_usd()
    worst = round((s.deadline_s * per_s if training else 0.0) + images * per_image, 6)
    if s.max_cost_usd is None or worst <= s.max_cost_usd + 1e-9:
        return
    parts = [f"{s.deadline_s:g} s of training at ${per_s:g}/s"] if training else []
    parts.append(f"{images} validation image(s) at ${per_image:g}")
    room_s = (s.max_cost_usd - images * per_image) / per_s if training and per_s else 0.0
    shorter = f", or lower training.deadline_s to at most {room_s:.0f} s (--train-deadline)" if room_s >= 1 else ""
    raise ConfigurationError(
        f"{what} may cost up to ${worst:.2f} ({' and '.join(parts)}), more than the ${s.max_cost_usd:.2f} the "
        f"cap leaves for it (training.max_cost_usd, --max-cost-usd): raise the cap by ${worst - s.max_cost_usd:.2f}"
        f"{shorter}; it was not started, and nothing was paid for it"
    )


class _Follower:
    """Creates, adopts and follows one actor's trainings, journaling each step."""

    def __init__(self, session: TrainerSession, journal: TrainingJournal, trainer: Trainer, report: Report, actor_id: str) -> None:
        self._session = session
        self._journal = journal
        self._trainer = trainer
        self._report = report
        self._actor_id = actor_id

    async def resume(self, record: TrainingRecord) -> TrainingRecord | None:
        """Finish what an earlier run left: ``None`` if it had created nothing."""
        if record.ended:
            self._journal.settle(record)  # its history write had failed
            return record
        if record.training_id is None:
            found = await self._session.find(record.input_images, record.started_at) if record.input_images else None
            if found is None:
                self._journal.drop()  # the intent never reached Replicate
                return None
            self.adopted(record, found, recovered=True)
        assert record.training_id is not None
        self._report(f"{self._actor_id}: adopting training {record.training_id}, left running by an earlier run")
        return await self.until_ended(record, await self._session.get(record.training_id))

    async def create(self, record: TrainingRecord) -> TrainingState:
        """The one paid call: never repeated; a failure that may have created the training is
        answered by the trainings list."""
        settings = self._trainer.settings
        assert record.input_images is not None
        try:
            state = await self._session.create({"input_images": record.input_images, **record.config}, record.destination)
        except Exception as exc:
            status = http_status(exc)
            if status is not None and 400 <= status < 500 and status != 429:
                self._journal.drop()  # refused: nothing was created
                refuse_credentials(exc, settings.trainer)
                raise ConfigurationError(
                    f"Replicate refused the training ({describe(exc)}): check training.trainer, trainer_version "
                    f"and the destination {record.destination}; nothing was paid"
                ) from exc
            log.warning("%s: the training's create failed (%s): looking for it in the trainings list", self._actor_id, describe(exc))
            found = await self._session.find(record.input_images, record.started_at)
            if found is None:
                self._journal.drop()
                raise Unavailable(
                    f"Replicate did not answer the training's create ({describe(exc)}) and lists no training of this "
                    "upload: nothing was paid; rerun once Replicate answers"
                ) from exc
            self.adopted(record, found, recovered=True)
            # Read again: a listed training lacks what it was billed for, and may have ended.
            return await self._session.get(found.id)
        self.adopted(record, state, recovered=False)
        self._report(f"{self._actor_id}: training {state.id} created on {settings.trainer} -> {record.destination}")
        return state

    def adopted(self, record: TrainingRecord, state: TrainingState, *, recovered: bool) -> None:
        record.training_id = state.id
        record.created_at = state.created_at or datetime.now(UTC)
        record.status = TrainingStatus.CREATED
        record.recovered = recovered
        self._journal.write(record)
        if recovered:
            self._report(f"{self._actor_id}: adopting training {state.id}, found in Replicate's list: our record of its create was lost")

    async def until_ended(self, record: TrainingRecord, state: TrainingState) -> TrainingRecord:
        """Poll until the training ends (cancel it at its deadline), then record it."""
        settings = self._trainer.settings
        assert record.training_id is not None and record.created_at is not None
        deadline = record.created_at + timedelta(seconds=settings.deadline_s)
        timed_out = False
        woken = asyncio.Event()
        loop = asyncio.get_running_loop()
        with stopping.listening(lambda: loop.call_soon_threadsafe(woken.set)):
            while state.status not in TERMINAL:
                if (signum := stopping.requested()) is not None:
                    self._report(f"{self._actor_id}: training {record.training_id} left running: the next run adopts it")
                    raise Interrupted(signum)
                if datetime.now(UTC) >= deadline:
                    self._report(f"{self._actor_id}: training {record.training_id} ran past {settings.deadline_s:g} s: canceling it")
                    timed_out = True
                    state = await self._session.cancel(record.training_id)
                    if state.status in TERMINAL:
                        break
                remaining = (deadline - datetime.now(UTC)).total_seconds()
                try:
                    await asyncio.wait_for(woken.wait(), max(0.0, min(settings.poll_interval_s, remaining)))
                except TimeoutError:
                    pass
                state = await self._session.get(record.training_id)
                if (progress := state.progress()) and progress != record.progress:
                    record.progress = progress
                    self._report(f"{self._actor_id}: training {record.training_id}: step {progress}")
        return self._ended(record, state, timed_out)

    def _ended(self, record: TrainingRecord, state: TrainingState, timed_out: bool) -> TrainingRecord:
        settings = self._trainer.settings
        record.ended_at = datetime.now(UTC)
        record.progress = state.progress() or record.progress
        record.predict_time_s = state.predict_time_s
        record.cost_usd = state.cost_usd(self._trainer.price_per_second_usd())
        output = state.output or {}
        if state.status == "succeeded" and output.get("weights"):
            record.status = TrainingStatus.SUCCEEDED
            record.model_version = str(output.get("version") or "")
            record.weights_url = str(output["weights"])
        elif state.status == "canceled":
            record.status = TrainingStatus.TIMED_OUT if timed_out else TrainingStatus.CANCELED
            record.error = (
                f"canceled after running past the deadline of {settings.deadline_s:g} s (training.deadline_s)"
                if timed_out
                else "canceled outside this pipeline (e.g. on replicate.com)"
            )
        else:
            record.status = TrainingStatus.FAILED
            record.error = (state.error or "no model in its output").strip()
        self._journal.settle(record)
        self._report(
            f"{self._actor_id}: training {record.training_id} {record.status.value} in {record.duration_s or 0:.0f} s, "
            f"{usd(record.cost_usd)}"
        )
        return record

    def outcome(self, record: TrainingRecord) -> TrainingRecord:
        """``record`` if it holds a model, else ``TrainingFailed`` naming what it cost."""
        if record.status is TrainingStatus.SUCCEEDED:
            return record
        raise TrainingFailed(
            f"training {record.training_id} of {self._actor_id!r} {record.status.value.replace('_', ' ')}: {record.error}; "
            f"it cost {usd(record.cost_usd)} (in the ledger); asking again starts a new training"
        )

"""The LoRA's part of an actor's ledger: its trainings and validation images (our training
history) against what Replicate lists, and, when asked, the history made equal to the list.

A listed training is the actor's when our records name it (its id or its upload), or when its
upload is one of the actor's bundles by the Files API's checksum (while the Files API keeps the
upload: a day). Its destination model proves nothing: another user's actor of the same id, or
another deployment on the token, may train into it. A validation prediction is the actor's when
it ran one of the actor's LoRAs (while Replicate keeps the prediction's input).
"""

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.errors import NotMadeYet
from actor_pipeline.generation.types import usd
from actor_pipeline.outputs.manifest import BundleInfo
from actor_pipeline.storage.prediction_index import prediction_owners
from actor_pipeline.training.record import TrainingJournal, TrainingRecord, TrainingStatus
from actor_pipeline.training.replicate import ReplicateTrainer
from actor_pipeline.training.train import load_bundle
from actor_pipeline.training.types import TERMINAL, Painting, TrainingState
from actor_pipeline.training.validation import load_likeness

log = logging.getLogger(__name__)

_ENDED_AS = {"succeeded": TrainingStatus.SUCCEEDED, "failed": TrainingStatus.FAILED, "canceled": TrainingStatus.CANCELED}


@dataclass
class BillPart:
    """One kind of paid work: what our records hold against what Replicate lists."""

    what: str
    ours: int
    ours_usd: float
    provider: int
    provider_usd: float
    unrecorded: list[str] = field(default_factory=list)  # listed as the actor's, not in our records
    running: list[str] = field(default_factory=list)  # of those, trainings still running: `train` adopts them
    # Listed without their inputs and named by no record: another actor's, or this one's lost with its state.
    untied: list[str] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        return bool(self.unrecorded)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ledger": {"count": self.ours, "cost_usd": self.ours_usd},
            "provider": {"count": self.provider, "cost_usd": self.provider_usd},
            "unrecorded": self.unrecorded,
            "running": self.running,
            "untied": self.untied,
        }

    def line(self) -> str:
        line = f"  {self.what}: ledger {self.ours} ({usd(self.ours_usd)}), Replicate {self.provider} ({usd(self.provider_usd)})"
        if self.unrecorded:
            line += f"; not in the ledger: {', '.join(self.unrecorded)}"
        if self.running:
            line += f" ({', '.join(self.running)} still running: `actor-pipeline train` adopts it, reconcile does not)"
        if self.untied:
            line += f"; untied: {len(self.untied)} listed without their inputs, named by no record"
        return line


async def lora_ledger(actor: ActorContext, trainer: ReplicateTrainer, since: datetime, reconcile: bool) -> list[BillPart]:
    """The trainings and validation images part of the ledger, listed since ``since``; with
    ``reconcile`` (the caller holds the actor's lease), ended trainings and billed validation
    images that only the list knows are added to the training history. A training still
    running is left to ``actor-pipeline train``, which adopts it."""
    journal = TrainingJournal(actor.storage, actor.layout)
    history = journal.history()
    records = list(history.trainings)
    if (under_way := journal.current()) is not None and under_way.training_id:
        records.append(under_way)
    known = {record.training_id for record in records}
    async with trainer.session() as session:
        listed = await session.listed(since)
        if not listed and not records:
            return []  # never trained: no part to show
        current = _current_bundle(actor)
        bundles = {r.bundle_sha256 for r in records if r.bundle_sha256} | ({current.sha256} if current else set())
        uploads = {r.input_images for r in records if r.input_images}
        mine: list[TrainingState] = []
        checksums: dict[str, str] = {}  # of the uploads of trainings our records lack
        for state in listed:
            if state.id in known or state.input_images in uploads:
                mine.append(state)
            elif state.input_images and (checksum := await session.upload_sha256(state.input_images)) in bundles:
                mine.append(state)
                checksums[state.id] = str(checksum)
        billed = [await session.get(state.id) for state in mine]
        unrecorded = [state for state in billed if state.id not in known]
        weights = {r.weights_url for r in records if r.weights_url} | {w for s in billed if (w := _weights(s))}
        listed_paintings = [p for p in await session.paintings(weights, since) if p.billed]
    price_s, price_image = trainer.price_per_second_usd(), trainer.price_per_image_usd()
    trainings = BillPart(
        "trainings",
        len(records),
        history.cost_usd,
        len(billed),
        round(sum(s.cost_usd(price_s) for s in billed), 6),
        [s.id for s in unrecorded],
        [s.id for s in unrecorded if s.status not in TERMINAL],
    )
    recorded = {p for record in records for p in record.validation_predictions}
    counted = set(recorded)
    likeness = load_likeness(actor)
    if likeness is not None and likeness.training_id in known:  # kept before records counted them
        counted |= {image.prediction_id for image in likeness.images if image.key and image.prediction_id}
    # An input removed: the actor's if its records say so, or the prediction index (which names
    # the training, and so the LoRA, it validated).
    faded = [p for p in listed_paintings if not p.weights_url and p.id not in counted]
    owners = prediction_owners(actor.storage, [p.id for p in faded])
    lora_of = {r.training_id: r.weights_url for r in records if r.weights_url} | {s.id: _weights(s) for s in billed}
    owned = {i: lora for i, o in owners.items() if o.of(actor.layout) and (lora := lora_of.get(o.validated_training or ""))}
    paintings = [p for p in listed_paintings if p not in faded] + [replace(p, weights_url=owned[p.id]) for p in faded if p.id in owned]
    # Priced as the manifest prices them: at what each training's record says its images cost,
    # the current price only where no record tells.
    price_of = {r.weights_url: r.validation_price for r in records if r.weights_url}
    validation = BillPart(
        "validation images",
        len(counted),
        round(sum(r.validation_cost_usd for r in records) + len(counted - recorded) * price_image, 6),
        len(paintings),
        round(sum(price_of.get(p.weights_url, price_image) for p in paintings), 6),
        [p.id for p in paintings if p.id not in counted],
        untied=[p.id for p in faded if p.id not in owners],
    )
    if reconcile:
        ended = [_record(s, checksums[s.id], current, trainer) for s in unrecorded if s.status in TERMINAL]
        _reconcile(journal, actor.actor_id, ended, paintings, counted, price_image)
    return [trainings, validation]


def _current_bundle(actor: ActorContext) -> BundleInfo | None:
    try:
        return load_bundle(actor)
    except NotMadeYet:
        return None


def _weights(state: TrainingState) -> str:
    return str((state.output or {}).get("weights") or "")


def _reconcile(
    journal: TrainingJournal,
    actor_id: str,
    ended: list[TrainingRecord],
    paintings: list[Painting],
    counted: set[str],
    price_image: float,
) -> None:
    if ended:
        journal.add_ended(ended)
        log.warning("%s: %d training(s) from Replicate's list added to the training history", actor_id, len(ended))
    by_weights: dict[str, list[str]] = {}
    for painting in paintings:
        if painting.id not in counted:
            by_weights.setdefault(painting.weights_url, []).append(painting.id)
    for weights_url, ids in by_weights.items():
        journal.add_validation(weights_url, ids, price_image)
        log.warning("%s: %d validation prediction(s) from Replicate's list added to the ledger", actor_id, len(ids))


def _record(state: TrainingState, checksum: str, current: BundleInfo | None, trainer: ReplicateTrainer) -> TrainingRecord:
    """A history entry for a training only the list knows: what it was sent, made and billed. Of
    the current bundle and training config, it gets their fingerprint, so ``train`` reuses it."""
    settings = trainer.settings
    sent = dict(state.input or {})
    config = {k: v for k, v in sent.items() if k != "input_images"}
    trigger = str(sent.get("trigger_word") or "")
    same = current is not None and checksum == current.sha256
    output = state.output or {}
    succeeded = state.status == "succeeded" and bool(output.get("weights"))
    version = str(output.get("version") or "")
    return TrainingRecord(
        fingerprint=settings.fingerprint(checksum, trigger) if same and config == settings.trainer_input(trigger) else "",
        bundle_sha256=checksum,
        bundle_images=len(current.report.images) if current is not None and same else 0,
        trainer=settings.trainer,
        trainer_version=state.version or "",
        destination=version.split(":")[0],
        trigger=trigger,
        config=config,
        status=TrainingStatus.SUCCEEDED if succeeded else _ENDED_AS.get(state.status, TrainingStatus.FAILED),
        started_at=state.created_at or datetime.now(UTC),
        input_images=state.input_images,
        training_id=state.id,
        created_at=state.created_at,
        ended_at=state.completed_at or datetime.now(UTC),
        model_version=version or None,
        weights_url=str(output["weights"]) if succeeded else None,
        predict_time_s=state.predict_time_s,
        cost_usd=state.cost_usd(trainer.price_per_second_usd()),
        error=None if succeeded else state.error or "ended without a model",
        recovered=True,
        validation_predictions=[],
    )

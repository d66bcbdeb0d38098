"""The LoRA's part of an actor's ledger: its trainings and validation images (our training
history) against what Replicate lists, and, when asked, the history made equal to the list.

A listed training is the actor's when our records name it (its id or its upload), when it made
a version of the actor's destination model, or when its upload is one of the actor's bundles (by
the Files API's checksum): a training whose records were lost and that failed leaves no other
trace. A validation prediction is the actor's when it ran one of the actor's LoRAs.
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.errors import NotMadeYet
from actor_pipeline.training.record import TrainingJournal, TrainingRecord, TrainingStatus
from actor_pipeline.training.replicate import ReplicateTrainer, ReplicateTrainingSession
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

    @property
    def differs(self) -> bool:
        return bool(self.unrecorded)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ledger": {"count": self.ours, "cost_usd": self.ours_usd},
            "provider": {"count": self.provider, "cost_usd": self.provider_usd},
            "unrecorded": self.unrecorded,
        }

    def line(self) -> str:
        line = (
            f"  {self.what}: ledger {self.ours} (${self.ours_usd:.2f}), "
            f"Replicate {self.provider} (${self.provider_usd:.2f})"
        )
        return line + (f"; not in the ledger: {', '.join(self.unrecorded)}" if self.unrecorded else "")


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
        destination = trainer.settings.destination(actor.actor_id, await session.account())
        bundles = {r.bundle_sha256 for r in records} | {_bundle_sha256(actor)}
        mine = [state for state in listed if await _is_actors(state, records, {destination}, bundles, session)]
        billed = [await session.get(state.id) for state in mine]
        unrecorded = [state for state in billed if state.id not in known]
        weights = {r.weights_url for r in records if r.weights_url} | {_weights(s) for s in billed if _weights(s)}
        paintings = [p for p in await session.paintings(weights, since) if p.billed]
    price_s, price_image = trainer.price_per_second_usd(), trainer.price_per_image_usd()
    trainings = BillPart(
        "trainings",
        len(records),
        history.cost_usd,
        len(billed),
        round(sum((s.predict_time_s or 0.0) * price_s for s in billed), 6),
        [s.id for s in unrecorded],
    )
    counted = {p for record in records for p in record.validation_predictions}
    likeness = load_likeness(actor)
    if likeness is not None and likeness.training_id in known:  # kept before records counted them
        counted |= {image.prediction_id for image in likeness.images if image.key and image.prediction_id}
    validation = BillPart(
        "validation images",
        len(counted),
        round(len(counted) * price_image, 6),
        len(paintings),
        round(len(paintings) * price_image, 6),
        [p.id for p in paintings if p.id not in counted],
    )
    if reconcile:
        _reconcile(journal, actor, trainer, [s for s in unrecorded if s.status in TERMINAL], paintings, counted)
    return [trainings, validation]


async def _is_actors(
    state: TrainingState,
    records: list[TrainingRecord],
    destinations: set[str],
    bundles: set[str],
    session: ReplicateTrainingSession,
) -> bool:
    if state.id in {r.training_id for r in records} or state.input_images in {r.input_images for r in records}:
        return True
    made = str((state.output or {}).get("version") or "").split(":")[0]
    if made and made in destinations | {r.destination for r in records}:
        return True
    return bool(state.input_images) and await session.upload_sha256(state.input_images) in bundles - {""}


def _bundle_sha256(actor: ActorContext) -> str:
    try:
        return load_bundle(actor).sha256
    except NotMadeYet:
        return ""


def _weights(state: TrainingState) -> str:
    return str((state.output or {}).get("weights") or "")


def _reconcile(
    journal: TrainingJournal,
    actor: ActorContext,
    trainer: ReplicateTrainer,
    ended: list[TrainingState],
    paintings: list[Painting],
    counted: set[str],
) -> None:
    if ended:
        journal.add_ended(_record(state, actor, trainer) for state in ended)
        log.warning("%s: %d training(s) from Replicate's list added to the training history", actor.actor_id, len(ended))
    by_weights: dict[str, list[str]] = {}
    for painting in paintings:
        if painting.id not in counted:
            by_weights.setdefault(painting.weights_url, []).append(painting.id)
    for weights_url, ids in by_weights.items():
        journal.add_validation(weights_url, ids)
        log.warning("%s: %d validation prediction(s) from Replicate's list added to the ledger", actor.actor_id, len(ids))


def _record(state: TrainingState, actor: ActorContext, trainer: ReplicateTrainer) -> TrainingRecord:
    """A history entry for a training only the list knows: what it was sent, made and billed.
    Its fingerprint is unknown ("" matches no ask): ``train`` finds it again by its bundle."""
    sent = dict(state.input or {})
    output = state.output or {}
    succeeded = state.status == "succeeded" and bool(output.get("weights"))
    version = str(output.get("version") or "")
    return TrainingRecord(
        fingerprint="",
        bundle_sha256="",
        bundle_images=0,
        trainer=trainer.settings.trainer,
        trainer_version=state.version or "",
        destination=version.split(":")[0],
        trigger=str(sent.get("trigger_word") or ""),
        config={k: v for k, v in sent.items() if k != "input_images"},
        status=TrainingStatus.SUCCEEDED if succeeded else _ENDED_AS.get(state.status, TrainingStatus.FAILED),
        started_at=state.created_at or datetime.now(UTC),
        input_images=state.input_images,
        training_id=state.id,
        created_at=state.created_at,
        ended_at=datetime.now(UTC),
        model_version=version or None,
        weights_url=str(output["weights"]) if succeeded else None,
        predict_time_s=state.predict_time_s,
        cost_usd=round((state.predict_time_s or 0.0) * trainer.price_per_second_usd(), 6),
        error=None if succeeded else state.error or "ended without a model",
        recovered=True,
        validation_predictions=[],
    )

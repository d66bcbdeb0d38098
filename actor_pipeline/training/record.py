"""The training journal: an actor's LoRA trainings, each written at every step before the next
costly one, as the shot journal does for shots, so that no interruption pays for a training twice
or loses one that was paid.

A training goes ``intent`` (bundle and config fixed; the bundle is uploaded, then the create is
sent) -> ``created`` (Replicate's training id) -> ``succeeded`` (model version and weights URL),
or ends ``failed``, ``canceled`` or ``timed_out``, with its error and cost. While it is under way
its entry lives on local disk beside the shot journal's, replaced atomically and fsynced; once it
ends it is appended to the actor's training history in storage and the entry is removed.
"""

import logging
import os
from collections.abc import Iterable
from datetime import datetime
from enum import Enum

from pydantic import BaseModel, Field, ValidationError

from actor_pipeline.errors import StateError
from actor_pipeline.storage.base import Storage, atomic_write
from actor_pipeline.storage.layout import ActorLayout

VALIDATION_PRICE_USD = 0.032  # flux-dev-lora per image: TrainingSettings' default
log = logging.getLogger(__name__)


class TrainingStatus(str, Enum):
    INTENT = "intent"
    CREATED = "created"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    TIMED_OUT = "timed_out"


ENDED = frozenset({TrainingStatus.SUCCEEDED, TrainingStatus.FAILED, TrainingStatus.CANCELED, TrainingStatus.TIMED_OUT})


class TrainingRecord(BaseModel):
    fingerprint: str = Field(description="of the bundle and the training config: equal means the same LoRA")
    bundle_sha256: str
    bundle_images: int
    trainer: str
    trainer_version: str
    destination: str
    trigger: str
    config: dict[str, object] = Field(description="the trainer's inputs besides the images")
    status: TrainingStatus
    started_at: datetime = Field(description="when the intent was written: the trainings list is searched from here")
    input_images: str | None = Field(None, description="the uploaded bundle's URL, sent as input_images")
    training_id: str | None = None
    created_at: datetime | None = None
    ended_at: datetime | None = None
    progress: str | None = Field(None, description="the last step progress the trainer logged, e.g. '400/1000'")
    model_version: str | None = Field(None, description="owner/name:version of the destination's new version")
    weights_url: str | None = None
    predict_time_s: float | None = Field(None, description="what Replicate billed the training for (metrics.predict_time)")
    cost_usd: float = 0.0
    error: str | None = None
    recovered: bool = Field(False, description="found in Replicate's trainings list: the create's answer was lost")
    validation_predictions: list[str] = Field(
        default_factory=list, description="the billed predictions that made validation images with this training's LoRA"
    )
    validation_price_usd: float | None = Field(
        None, description="what each of those cost; None in records kept before prices were: the default price"
    )

    @property
    def validation_price(self) -> float:
        """What each validation image with this training's LoRA cost."""
        return VALIDATION_PRICE_USD if self.validation_price_usd is None else self.validation_price_usd

    @property
    def validation_cost_usd(self) -> float:
        return round(len(self.validation_predictions) * self.validation_price, 6)

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @property
    def duration_s(self) -> float | None:
        if self.created_at is None or self.ended_at is None:
            return None
        return round((self.ended_at - self.created_at).total_seconds(), 3)


class TrainingHistory(BaseModel):
    """Every training of the actor that ended, oldest first (what the ledger adds up)."""

    trainings: list[TrainingRecord] = Field(default_factory=list)

    def succeeded(self, fingerprint: str) -> TrainingRecord | None:
        """The newest succeeded training of these inputs."""
        return next(
            (t for t in reversed(self.trainings) if t.status is TrainingStatus.SUCCEEDED and t.fingerprint == fingerprint),
            None,
        )

    def latest_success(self) -> TrainingRecord | None:
        return next((t for t in reversed(self.trainings) if t.status is TrainingStatus.SUCCEEDED), None)

    @property
    def cost_usd(self) -> float:
        return round(sum(t.cost_usd for t in self.trainings), 6)

    @property
    def validation_images(self) -> int:
        return sum(len(t.validation_predictions) for t in self.trainings)

    @property
    def validation_cost_usd(self) -> float:
        return round(sum(t.validation_cost_usd for t in self.trainings), 6)


class TrainingJournal:
    """The actor's training under way (a local entry) and its finished trainings (in storage)."""

    def __init__(self, storage: Storage, layout: ActorLayout) -> None:
        self.storage = storage
        self.layout = layout
        # Beside the shot journal's entries, in a folder of its own (that journal reads *.json as shots).
        self.entry_path = storage.state_dir / layout.user_id / layout.actor_id / "training" / "current.json"

    def current(self, *, repair: bool = False) -> TrainingRecord | None:
        """The training under way, if any. A garbled entry reads as none; with ``repair`` it is
        moved aside (Replicate's trainings list still shows what it was)."""
        try:
            return TrainingRecord.model_validate_json(self.entry_path.read_bytes())
        except FileNotFoundError:
            return None
        except (ValidationError, ValueError, OSError) as exc:
            if repair:
                kept = self.entry_path.with_name("current.json.corrupt")
                os.replace(self.entry_path, kept)
                log.warning("%s: the training journal entry is unreadable (%s): moved aside as %s", self.layout.actor_id, exc, kept)
            return None

    def write(self, record: TrainingRecord) -> None:
        """Journal a step, durably, before the next costly one."""
        atomic_write(self.entry_path, record.model_dump_json(indent=2).encode(), durable=True)

    def drop(self) -> None:
        """Forget an intent that created nothing."""
        self.entry_path.unlink(missing_ok=True)

    def settle(self, record: TrainingRecord) -> None:
        """Record an ended training: locally first (storage may be down), then in the history in
        storage, then drop the local entry."""
        self.write(record)
        self.add_ended([record])
        self.drop()

    def add_ended(self, records: Iterable[TrainingRecord]) -> None:
        """Put ended trainings in the history, replacing any entry of the same training."""
        added = {record.training_id: record for record in records}
        history = self.history()
        for replaced in (t for t in history.trainings if t.training_id in added):
            # An adopted training is recorded afresh: what its validation was billed stays with it.
            record = added[replaced.training_id]
            record.validation_predictions = list(dict.fromkeys(replaced.validation_predictions + record.validation_predictions))
            if record.validation_price_usd is None:
                record.validation_price_usd = replaced.validation_price_usd
        kept = [t for t in history.trainings if t.training_id not in added] + list(added.values())
        # Oldest first: one found in the list later may have been created before others.
        history.trainings = sorted(kept, key=lambda t: t.created_at or t.started_at)
        self._store(history)

    def add_validation(self, weights_url: str, prediction_ids: Iterable[str], price_usd: float) -> None:
        """Count billed validation predictions, at ``price_usd`` each, against the training whose
        LoRA made them."""
        history = self.history()
        record = next((t for t in history.trainings if t.weights_url == weights_url), None)
        if record is None:
            return
        if new := [p for p in dict.fromkeys(prediction_ids) if p not in record.validation_predictions]:
            record.validation_predictions += new
            record.validation_price_usd = price_usd
            self._store(history)

    def _store(self, history: TrainingHistory) -> None:
        self.storage.put(self.layout.training_history, history.model_dump_json(indent=2).encode(), "application/json")

    def history(self) -> TrainingHistory:
        try:
            raw = self.storage.get(self.layout.training_history)
        except FileNotFoundError:
            return TrainingHistory()
        try:
            return TrainingHistory.model_validate_json(raw)
        except (ValidationError, ValueError) as exc:
            raise StateError(
                f"the training history {self.storage.url(self.layout.training_history)} is unreadable ({exc}); "
                "restore it from a backup, or delete it to forget past trainings (Replicate keeps them)"
            ) from None

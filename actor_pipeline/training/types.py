"""The contract between the training code and a trainer (Replicate's, or the preview's $0 stand-in)."""

import re
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from actor_pipeline.errors import PipelineError
from actor_pipeline.training.settings import TrainingSettings

TERMINAL = frozenset({"succeeded", "failed", "canceled"})
# ai-toolkit's tqdm line: "flux_train_replicate:  40%|####      | 400/1000 [02:10<02:39, ...]".
_STEP = re.compile(r"(\d+)/(\d+) \[")


@dataclass(frozen=True)
class TrainingState:
    """A training as the trainer shows it now."""

    id: str
    status: str  # starting, processing, succeeded, failed, canceled
    created_at: datetime | None = None
    completed_at: datetime | None = None
    input_images: str | None = None
    input: Mapping[str, Any] | None = None  # what the create sent, input_images included
    version: str | None = None  # the trainer's version id
    logs: str = ""
    output: Mapping[str, Any] | None = None
    error: str | None = None
    predict_time_s: float | None = None

    def cost_usd(self, price_per_second_usd: float) -> float:
        """What it was billed so far: its ``metrics.predict_time`` at the trainer's price."""
        return round((self.predict_time_s or 0.0) * price_per_second_usd, 6)

    def progress(self) -> str | None:
        """The last step progress in the logs, as ``step/total``."""
        found = _STEP.findall(self.logs)
        return f"{found[-1][0]}/{found[-1][1]}" if found else None


class PaintFailed(PipelineError):
    """A validation image was not made (its prediction failed, or could not be followed)."""


@dataclass(frozen=True)
class Painted:
    """One image made with the trained LoRA."""

    data: bytes
    prediction_id: str | None
    adopted: bool = False  # made and paid for by an earlier run, found in the provider's list


@dataclass(frozen=True)
class Painting:
    """A validation prediction as the provider lists it."""

    id: str
    status: str
    weights_url: str  # the LoRA it was made with: which training it validated

    @property
    def billed(self) -> bool:
        """Billed, or running and to be: failed and canceled predictions are not billed."""
        return self.status not in ("failed", "canceled")


class TrainerSession(Protocol):
    """One actor's use of a trainer: every call is safe to repeat except ``create`` and ``paint``,
    the two that are paid."""

    async def account(self) -> str:
        """The token's account (its username); refuses a token that cannot train
        (``CredentialsRefused``)."""
        ...

    async def ensure_destination(self, destination: str) -> None:
        """Create the destination model (private) if it is missing; ``ConfigurationError`` if it
        may not be written to."""
        ...

    async def upload(self, data: bytes, filename: str) -> str:
        """Upload the bundle; returns the URL to send as ``input_images``."""
        ...

    async def create(self, input_: Mapping[str, Any], destination: str) -> TrainingState: ...

    async def find(self, input_images: str, since: datetime) -> TrainingState | None:
        """The account's training created since ``since`` on this upload, if any: the training
        a create whose answer was lost may have made."""
        ...

    async def find_bundle(self, input_: Mapping[str, Any], bundle_sha256: str, since: datetime) -> TrainingState | None:
        """A training created since ``since`` and not failed or canceled, sent ``input_`` with an
        upload of the bundle whose checksum is ``bundle_sha256``: one whose records were lost."""
        ...

    async def get(self, training_id: str) -> TrainingState: ...

    async def cancel(self, training_id: str) -> TrainingState: ...

    async def paint(self, prompt: str, seed: int, weights_url: str, since: datetime) -> Painted:
        """Make one image with the trained LoRA (paid per image), or take the one an earlier run
        made since ``since`` (the training's end) and did not store."""
        ...


class Trainer(Protocol):
    name: str
    settings: TrainingSettings

    def session(self) -> AbstractAsyncContextManager[TrainerSession]: ...

    def price_per_second_usd(self) -> float: ...

    def price_per_image_usd(self) -> float: ...

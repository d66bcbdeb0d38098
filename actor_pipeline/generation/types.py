"""The contract between the generation runner and an image backend (preview, Replicate, ...)."""

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol


class ShotStatus(str, Enum):
    """Outcome of one shot in one run."""

    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"  # an identical image (same portrait, prompt, seed, model) already exists
    FAILED = "failed"  # the backend reported a failure or an unexpected error happened
    CONTENT_FLAGGED = "content_flagged"  # rejected by the provider's safety filter (E005)
    CANCELED = "canceled"
    TIMED_OUT = "timed_out"


@dataclass
class Usage:
    """Paid work done for a shot: what a cost ledger adds up."""

    predictions_created: int = 0
    predictions_succeeded: int = 0
    predictions_failed: int = 0
    predictions_canceled: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            self.predictions_created + other.predictions_created,
            self.predictions_succeeded + other.predictions_succeeded,
            self.predictions_failed + other.predictions_failed,
            self.predictions_canceled + other.predictions_canceled,
            round(self.cost_usd + other.cost_usd, 6),
        )


@dataclass(frozen=True)
class ShotJob:
    """Everything a backend needs to make one image."""

    actor_id: str
    shot_id: str
    index: int  # 1-based position in the catalog
    prompt: str
    seed: int


@dataclass
class GeneratedImage:
    """A finished image: encoded bytes (JPEG) plus what it cost."""

    data: bytes
    width: int
    height: int
    prediction_id: str | None = None
    usage: Usage = field(default_factory=Usage)
    # The request as sent, without image data or secrets (for the debug dir).
    request_payload: Mapping[str, object] = field(default_factory=dict)


class ShotGenerationError(Exception):
    """A backend could not make one shot. Other shots are unaffected."""

    def __init__(
        self,
        message: str,
        status: ShotStatus = ShotStatus.FAILED,
        *,
        prediction_id: str | None = None,
        usage: Usage | None = None,
        request_payload: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.prediction_id = prediction_id
        self.usage = usage or Usage()
        self.request_payload = request_payload or {}


class ShotGenerator(Protocol):
    """Makes images for one actor; obtained from ``ImageBackend.session``."""

    async def generate(self, job: ShotJob) -> GeneratedImage:
        """Make one image, or raise ``ShotGenerationError``."""
        ...


class ImageBackend(Protocol):
    """An image generator. ``session`` is entered once per actor and run so that a backend can
    prepare per-actor state once (e.g. upload the portrait a single time) and share it across all
    concurrently generated shots."""

    name: str  # "preview", "replicate"
    model: str  # e.g. "black-forest-labs/flux-kontext-pro"
    aspect_ratio: str  # e.g. "16:9"

    def fingerprint_params(self) -> Mapping[str, object]:
        """Settings that change the image (beyond portrait, prompt and seed); part of the
        fingerprint that decides whether an existing image can be reused."""
        ...

    def session(self, portrait_jpeg: bytes) -> AbstractAsyncContextManager[ShotGenerator]:
        """Open a per-actor session for the normalized portrait (JPEG bytes)."""
        ...

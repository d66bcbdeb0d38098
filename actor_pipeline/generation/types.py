"""The contract between the generation runner and an image backend (preview, Replicate, ...)."""

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Protocol, runtime_checkable

from actor_pipeline.errors import PipelineError


class ShotStatus(str, Enum):
    """A shot's state in the journal."""

    SUCCEEDED = "succeeded"
    IN_PROGRESS = "in_progress"  # an attempt is under way, or stopped half-way: a rerun resumes it
    PENDING = "pending"  # not attempted yet (e.g. no prediction could be created this run)
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
    # Of those created: found in the provider's list of predictions rather than in our journal
    # (our state was lost or garbled, or a create's answer never arrived).
    predictions_recovered: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            self.predictions_created + other.predictions_created,
            self.predictions_succeeded + other.predictions_succeeded,
            self.predictions_failed + other.predictions_failed,
            self.predictions_canceled + other.predictions_canceled,
            round(self.cost_usd + other.cost_usd, 6),
            self.predictions_recovered + other.predictions_recovered,
        )

    def __sub__(self, other: "Usage") -> "Usage":
        return self + Usage(
            -other.predictions_created,
            -other.predictions_succeeded,
            -other.predictions_failed,
            -other.predictions_canceled,
            -other.cost_usd,
            -other.predictions_recovered,
        )


@dataclass(frozen=True)
class Recalled:
    """A prediction the provider lists for one of a shot's wordings: what it cost so far, and
    whether this run can take it over instead of paying again."""

    prediction_id: str
    prompt: str
    seed: int
    created_at: datetime
    usage: Usage  # as it stands now; a prediction still running counts as created only
    running: bool  # starting or processing
    # Made from this portrait and still running, or succeeded with its output still downloadable.
    adoptable: bool


def usd(amount: float) -> str:
    """Dollars to the cent, or to the hundredth of a cent below one (a short training)."""
    return f"${amount:.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.4f}"


@dataclass(frozen=True)
class Faded:
    """A prediction of the model that the provider lists without its input: Replicate removes
    the inputs, outputs and logs of API predictions an hour after they end. Only its id can tie
    it to a shot (a record or the prediction index that names it); otherwise it may be anyone's."""

    prediction_id: str
    created_at: datetime
    usage: Usage


@dataclass(frozen=True)
class Listing:
    """The provider's list, read for a set of wordings: the predictions made with one of them,
    and those whose input was removed."""

    matched: list[Recalled]
    faded: list[Faded]


@dataclass(frozen=True)
class Resume:
    """Where an earlier attempt at a shot stopped, for the backend to continue from."""

    started_at: datetime  # its create was about to be sent then
    prediction_id: str | None = None  # created: adopt it by id
    output_url: str | None = None  # finished: its output, downloadable until output_expires_at
    output_expires_at: datetime | None = None
    earlier_prediction: str | None = None  # the shot's previous prediction, never this attempt's
    # The provider's list was searched this run and holds no prediction of this attempt: a
    # planned attempt without a prediction id creates one without looking again.
    searched: bool = False


@dataclass(frozen=True)
class ShotJob:
    """Everything a backend needs to make one image."""

    actor_id: str
    shot_id: str
    index: int  # 1-based position in the catalog
    prompt: str
    seed: int
    deadline: float = float("inf")  # time.monotonic() by which the shot must be stored, at first
    resume: Resume | None = None


@dataclass
class GeneratedImage:
    """A finished image: encoded bytes (JPEG)."""

    data: bytes
    width: int
    height: int
    prediction_id: str | None = None
    usage: Usage = field(default_factory=Usage)  # what the attempt cost (``ShotProgress.usage``)
    # The request as sent, without image data or secrets (for the debug dir).
    request_payload: Mapping[str, object] = field(default_factory=dict)


class ShotGenerationError(PipelineError):
    """A backend could not make one shot. Other shots are unaffected. ``IN_PROGRESS`` means the
    attempt can be continued by a rerun (e.g. its paid output could not be downloaded yet)."""

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
        self.usage = usage or Usage()  # what the attempt cost (``ShotProgress.usage``)
        self.request_payload = request_payload or {}


class CreatesClosed(PipelineError):
    """No prediction may be created now (a stop signal, a storage or provider outage, a lost
    lease, a spending cap). The shot is left as it was, and no attempt is counted."""


class ProviderDown(CreatesClosed):
    """The provider did not answer (5xx, 429, refused or dropped connections) for longer than a
    run waits out an outage: nothing more is created this run, and nothing unpaid counts as a try."""


class ShotProgress(Protocol):
    """How a backend reports each step of an attempt; the runner journals it before the backend
    goes on, and ``usage`` is the attempt's running cost, which the backend adds to."""

    usage: Usage

    @property
    def deadline(self) -> float:
        """``time.monotonic()`` by which the shot must be stored: the shot's timeout counts from
        its last create request (waiting out an outage before it has a bound of its own)."""
        ...

    async def creating(self) -> datetime:
        """Called right before a create request: journals the intent and returns its time.
        Raises ``CreatesClosed`` when no prediction may be created now."""
        ...

    async def created(self, prediction_id: str) -> None: ...

    async def output_ready(self, url: str, expires_at: datetime) -> None: ...


class ShotGenerator(Protocol):
    """Makes images for one actor; obtained from ``ImageBackend.session``."""

    async def generate(self, job: ShotJob, progress: ShotProgress) -> GeneratedImage:
        """Make one image (continuing ``job.resume`` if set), or raise ``ShotGenerationError``."""
        ...


@runtime_checkable
class RecallsPredictions(Protocol):
    """A ``ShotGenerator`` whose provider keeps a list of the account's predictions (Replicate):
    the record of what was paid that survives our own state."""

    # (prompt, seed) of shots created again after a create that got no answer, by when their
    # attempt began: the first may have been taken late, and paid.
    made_again: dict[tuple[str, int], datetime]

    async def recall(self, wordings: set[tuple[str, int]], since: datetime) -> Listing:
        """Every prediction of this model created since ``since`` (give or take clock skew) whose
        (prompt, seed) is in ``wordings``, newest first, and those listed without their input:
        one paginated pass over the list."""
        ...

    async def cancel(self, prediction_id: str) -> Usage:
        """Cancel a prediction no shot will use; return what it cost as it ended."""
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

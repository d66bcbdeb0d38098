"""Settings of the Replicate backend, validated when constructed."""

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from actor_pipeline.errors import ConfigurationError

# The aspect ratios flux-kontext-pro accepts (its input schema's enum).
ASPECT_RATIOS: tuple[str, ...] = (
    "match_input_image",
    "1:1",
    "16:9",
    "9:16",
    "4:3",
    "3:4",
    "3:2",
    "2:3",
    "4:5",
    "5:4",
    "21:9",
    "9:21",
    "2:1",
    "1:2",
)
# "2 is currently the maximum allowed when input images are used" (model schema; without one it
# is 6); this backend always sends the portrait as input image.
MAX_SAFETY_TOLERANCE_WITH_IMAGE = 2

MODEL_PATTERN = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


class SettingsRefused(ConfigurationError):
    """Settings refused a value: the message names each field and the fix; ``errors`` are
    pydantic's, for a caller that names the fields as its user knows them (a CLI flag)."""

    def __init__(self, errors: list[ErrorDetails]) -> None:
        super().__init__("; ".join(_describe(error) for error in errors))
        self.errors = errors


class CheckedSettings(BaseModel):
    """Settings that refuse an unusable value, whatever caught it, with one
    ``SettingsRefused`` naming the field and the fix (the CLI and the API turn it into one
    line)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsRefused(exc.errors()) from None


class ReplicateSettings(CheckedSettings):
    """How the Replicate backend calls ``flux-kontext-pro``.

    The API token is given to the backend on its own (it must never reach a log or Dagster's
    storage with these); the base URL is the ``replicate`` client's ``REPLICATE_BASE_URL``.
    Constructing it with a value the backend cannot use raises ``ConfigurationError``, naming the
    field and the fix.
    """

    model: str = Field("black-forest-labs/flux-kontext-pro", description="the Replicate model, as 'owner/name'")
    aspect_ratio: str = Field("16:9", description=f"the images' aspect ratio: one of {', '.join(ASPECT_RATIOS)}")
    # Strict: True and 2.0 are not tolerances.
    safety_tolerance: int = Field(
        2,
        ge=0,
        strict=True,
        description="the model's safety filter, from 0 (strict) to 2: the most Replicate allows when an input "
        "image is sent, as every shot sends the portrait",
    )
    output_format: str = Field("jpg", description="JPEG only: the generator contract hands JPEG bytes to storage")
    prompt_upsampling: bool = Field(False, description="let the model rewrite each prompt")
    creates_per_minute: float = Field(
        600.0,
        gt=0,
        description="prediction creates per minute: Replicate allows 600 per account, and the pacer is per "
        "process, so with N processes creating at the same time give each 600/N",
    )
    create_burst: int = Field(
        20,
        ge=1,
        description="creates that may go at once before that rate applies (Replicate tolerates short bursts): "
        "one actor's set starts together",
    )
    create_wait_s: int = Field(
        1,
        ge=1,
        le=60,
        description="seconds the create request is held (Prefer: wait, 1 to 60) for a quick image; the "
        "prediction id comes back within it, so it is journaled while the image is made and a killed run "
        "adopts the prediction rather than paying again",
    )
    create_settle_s: float = Field(
        30.0,
        ge=0,
        description="after a create that got no answer (a timeout, a dropped connection, a 504), seconds from "
        "sending it during which the prediction list (or the trainings list) may still show it, so it is "
        "searched again before creating another: a request held in a queue under load is taken after the "
        "client gave up on it",
    )
    poll_interval_s: float = Field(
        1.0,
        gt=0,
        description="seconds between polls of a prediction in flight, at the least: the polls are spaced "
        "further as the account's reads run low (reads_per_minute)",
    )
    reads_per_minute: int = Field(
        3000,
        ge=10,
        description="the account's limit on reads (polls, lists, cancels): Replicate allows 3000 per "
        "account; polls are spaced by what each answer says is left, keeping a tenth of this spare",
    )
    price_per_image_usd: float = Field(0.04, ge=0, description="dollars per succeeded prediction, for the cost ledger")
    inline_limit_bytes: int = Field(
        256_000,
        ge=1,
        description="largest portrait sent inline as a data URI (the HTTP API takes data URLs up to 256 KB, "
        "read as 256,000 bytes); a larger one is uploaded once through the Files API",
    )
    upload_timeout_s: float = Field(
        60.0, gt=0, description="seconds allowed for a Files API upload (the client sets no timeout on it)"
    )
    create_attempts: int = Field(
        5,
        ge=1,
        description="attempts of a read, cancel or upload that fails transiently (creates are bounded by "
        "outage_wait_s instead)",
    )
    outage_wait_s: float = Field(
        180.0,
        gt=0,
        description="seconds a run waits out Replicate not answering (5xx, 429, refused or dropped connections) "
        "before it stops creating: the shots not started are left pending, paid nothing and count no attempt",
    )
    history_lookback_h: float = Field(
        24.0,
        gt=0,
        description="hours of Replicate's prediction list a run reads (at most, and never before the actor's "
        "first registration) to find what was already paid for its shots when our state does not know",
    )
    download_attempts: int = Field(4, ge=1, description="attempts to download a finished image")
    retry_base_delay_s: float = Field(
        1.0, gt=0, description="seconds before the first retry; doubled at each next one, plus jitter"
    )
    retry_max_delay_s: float = Field(
        60.0, gt=0, description="cap on the wait between retries, also on the wait a server's Retry-After asks for"
    )

    @field_validator("model")
    @classmethod
    def _owner_and_name(cls, model: str) -> str:
        if not MODEL_PATTERN.fullmatch(model):
            raise ValueError(
                f"model {model!r} is not an 'owner/name' model reference: use e.g. 'black-forest-labs/flux-kontext-pro'"
            )
        return model

    @field_validator("aspect_ratio")
    @classmethod
    def _accepted_ratio(cls, ratio: str) -> str:
        if ratio not in ASPECT_RATIOS:
            raise ValueError(
                f"aspect_ratio {ratio!r} is not accepted by flux-kontext-pro: use one of {', '.join(ASPECT_RATIOS)}"
            )
        return ratio

    @field_validator("safety_tolerance")
    @classmethod
    def _tolerance_with_an_image(cls, tolerance: int) -> int:
        if tolerance > MAX_SAFETY_TOLERANCE_WITH_IMAGE:
            raise ValueError(
                f"safety_tolerance {tolerance} is refused: Replicate allows at most "
                f"{MAX_SAFETY_TOLERANCE_WITH_IMAGE} when an input image is sent, and every shot "
                "sends the portrait; set safety_tolerance to 0, 1 or 2"
            )
        return tolerance

    @field_validator("output_format")
    @classmethod
    def _jpeg(cls, output_format: str) -> str:
        if output_format != "jpg":
            raise ValueError(
                f"output_format {output_format!r} is not supported: the pipeline stores JPEG images, set "
                "output_format to 'jpg'"
            )
        return output_format


def _describe(error: ErrorDetails) -> str:
    """One of pydantic's errors as a sentence that names the field."""
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])  # the validators' own messages name the field and the fix
    field = ".".join(str(part) for part in error["loc"])
    message = error["msg"]
    return f"{field} {error['input']!r} is refused: {message[:1].lower()}{message[1:]}"

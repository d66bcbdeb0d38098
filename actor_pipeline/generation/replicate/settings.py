"""Settings of the Replicate backend, validated when constructed."""

import re
from dataclasses import dataclass, fields

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
SAFETY_TOLERANCE_RANGE = range(0, 7)
# "2 is currently the maximum allowed when input images are used" (model schema); this backend
# always sends the portrait as input image.
MAX_SAFETY_TOLERANCE_WITH_IMAGE = 2

_MODEL_PATTERN = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class ReplicateSettings:
    """How the Replicate backend calls ``flux-kontext-pro``.

    The API token is given to the backend on its own (it must never reach a log or Dagster's
    storage with these); the base URL is the ``replicate`` client's ``REPLICATE_BASE_URL``.
    """

    model: str = "black-forest-labs/flux-kontext-pro"
    aspect_ratio: str = "16:9"
    safety_tolerance: int = 2
    # JPEG only: the generator contract hands JPEG bytes to storage.
    output_format: str = "jpg"
    prompt_upsampling: bool = False
    # Replicate allows 600 creates/min per account. The pacer is per process: with N processes
    # creating predictions at the same time, give each 600/N.
    creates_per_minute: float = 600.0
    # Creates that may go at once before that rate applies ("short bursts tolerated"): one
    # actor's set starts together instead of over 1.6 s.
    create_burst: int = 20
    # The create request is held this long (``Prefer: wait=N``) for a quick image; it answers
    # with the prediction id after at most this, so the id reaches the shot journal while the
    # image is still being made (a kill then adopts it rather than paying again).
    create_wait_s: int = 1
    # Reads are limited to 3000/min per account; each prediction in flight polls 60/min at 1 s,
    # so about 50 predictions (three actors) in flight at once stay within the budget.
    poll_interval_s: float = 1.0
    price_per_image_usd: float = 0.04
    # Largest portrait sent inline as a data URI: the HTTP API reference says data URLs are for
    # files "<= 256kb" (read as 256,000 bytes, the stricter reading); larger ones are uploaded.
    inline_limit_bytes: int = 256_000
    # The Files API upload has no client-side timeout at all, so it gets one here.
    upload_timeout_s: float = 60.0
    # Attempts per shot to create its prediction (429s and ambiguous failures both count).
    create_attempts: int = 5
    download_attempts: int = 4
    # Exponential backoff with jitter between retries, capped; also caps a server's Retry-After.
    retry_base_delay_s: float = 1.0
    retry_max_delay_s: float = 60.0

    def __post_init__(self) -> None:
        if not _MODEL_PATTERN.fullmatch(self.model):
            raise ConfigurationError(
                f"model {self.model!r} is not an 'owner/name' model reference: use e.g. "
                "'black-forest-labs/flux-kontext-pro'"
            )
        if self.aspect_ratio not in ASPECT_RATIOS:
            raise ConfigurationError(
                f"aspect_ratio {self.aspect_ratio!r} is not accepted by flux-kontext-pro: "
                f"use one of {', '.join(ASPECT_RATIOS)}"
            )
        if (
            isinstance(self.safety_tolerance, bool)
            or not isinstance(self.safety_tolerance, int)
            or self.safety_tolerance not in SAFETY_TOLERANCE_RANGE
        ):
            raise ConfigurationError(
                f"safety_tolerance {self.safety_tolerance!r} is outside the model's range: "
                "use an integer from 0 (strict) to 2"
            )
        if self.safety_tolerance > MAX_SAFETY_TOLERANCE_WITH_IMAGE:
            raise ConfigurationError(
                f"safety_tolerance {self.safety_tolerance} is refused: Replicate allows at most "
                f"{MAX_SAFETY_TOLERANCE_WITH_IMAGE} when an input image is sent, and every shot "
                f"sends the portrait; set safety_tolerance to 0, 1 or 2"
            )
        if self.output_format != "jpg":
            raise ConfigurationError(
                f"output_format {self.output_format!r} is not supported: the pipeline stores "
                "JPEG images, set output_format to 'jpg'"
            )
        if not 1 <= self.create_wait_s <= 60:
            raise ConfigurationError(f"create_wait_s must be 1 to 60 (the API's Prefer: wait range), got {self.create_wait_s!r}")
        for name in ("create_attempts", "create_burst", "download_attempts", "inline_limit_bytes"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        positive = {f.name for f in fields(self) if f.name.endswith("_s")} | {"creates_per_minute"}
        for name in sorted(positive):
            if not getattr(self, name) > 0:
                raise ConfigurationError(f"{name} must be greater than 0, got {getattr(self, name)!r}")
        if self.price_per_image_usd < 0:
            raise ConfigurationError(f"price_per_image_usd must not be negative, got {self.price_per_image_usd!r}")

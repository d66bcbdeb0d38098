"""What the quality checks return: one ``CheckResult`` per check and shot, gathered per actor, and
the ``ImageAnalysis`` of each image, kept with its shot so an unchanged image is not measured twice."""

import base64
from enum import Enum

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, computed_field

from actor_pipeline.catalog.model import Category


class Outcome(str, Enum):
    PASSED = "passed"
    FAILED = "failed"
    # The check could not say: no face on a creature, the faces extra not installed, an
    # undecodable image. Never a failure, so it never triggers a regeneration.
    NOT_MEASURED = "not_measured"


class CheckName(str, Enum):
    SIZE = "size"
    BLANK = "blank"
    SHARPNESS = "sharpness"
    MONOCHROME = "monochrome"  # black-and-white shots only
    COLOR = "color"  # photoreal and colour-stylized shots only
    NEAR_DUPLICATE = "near_duplicate"
    FACE = "face"
    IDENTITY = "identity"


class CheckResult(BaseModel):
    """One check on one image. ``measured`` and ``threshold`` name their numbers, so the manifest
    and the UI can show them without knowing each check."""

    model_config = ConfigDict(frozen=True)

    check: CheckName
    outcome: Outcome
    measured: dict[str, float] = {}
    threshold: dict[str, float] = {}
    reason: str
    blocking: bool = False  # a failure of this check on this shot should trigger a regeneration

    @computed_field  # type: ignore[prop-decorator]
    @property
    def blocks(self) -> bool:
        return self.blocking and self.outcome is Outcome.FAILED


class ShotReport(BaseModel):
    """All checks run on one shot's image."""

    model_config = ConfigDict(frozen=True)

    shot: str
    category: Category
    results: tuple[CheckResult, ...]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        """No blocking failure (non-blocking failures are shown, not acted on)."""
        return not any(result.blocks for result in self.results)

    def result(self, check: CheckName) -> CheckResult | None:
        return next((result for result in self.results if result.check is check), None)


def pack(values: np.ndarray, dtype: str) -> str:
    """``values`` as base64 text (JSON-friendly, a fraction of the size of a list of numbers)."""
    return base64.b64encode(np.ascontiguousarray(values, dtype=dtype).tobytes()).decode()


def unpack(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype)


class Fingerprint(BaseModel):
    """What near-duplicate detection compares: perceptual hashes and a tiny colour thumbnail."""

    model_config = ConfigDict(frozen=True)

    phash: str  # 64 bits, hex
    dhash: str  # 64 bits, hex
    thumbnail: str  # the 32x18 RGB thumbnail's bytes (packed uint8)


class Face(BaseModel):
    """The largest frontal face found on an image."""

    model_config = ConfigDict(frozen=True)

    box: tuple[int, int, int, int]  # left, top, right, bottom in pixels
    descriptor: str  # dlib's 128-float face descriptor (packed float32)

    @property
    def vector(self) -> np.ndarray:
        return unpack(self.descriptor, "<f4")

    def distance(self, other: "Face") -> float:
        """Euclidean distance of the descriptors (dlib: under 0.6 is the same person)."""
        return float(np.linalg.norm(self.vector - other.vector))


class ImageAnalysis(BaseModel):
    """Everything measured on one image alone; duplicates and identity combine these per set.
    ``key`` names what the measurements depend on (the image's bytes, its shot's category, the
    thresholds, whether faces were searched): an analysis with the same key can be used again."""

    model_config = ConfigDict(frozen=True)

    key: str
    results: tuple[CheckResult, ...]  # size, blank, sharpness and colour or monochrome
    fingerprint: Fingerprint | None = None  # None: the image is not readable
    face: Face | None = None  # None: no face found, or faces not searched (see ``key``)


class DuplicatePair(BaseModel):
    """Two shots of one actor that look alike: ``second`` (later in the set's order) is the one
    that fails, so regenerating it alone resolves the pair."""

    model_config = ConfigDict(frozen=True)

    first: str
    second: str
    hash_distance: int  # pHash + dHash Hamming distance, of 128 bits
    color_difference: float  # mean CIE76 delta E between 32x18 thumbnails


class SetReport(BaseModel):
    """The checks of one actor's set, shots in the order they were given."""

    model_config = ConfigDict(frozen=True)

    shots: dict[str, ShotReport]
    duplicate_pairs: tuple[DuplicatePair, ...] = ()
    # Shot id -> its image's analysis, for the caller to keep with the shot (see ``SetChecker``).
    analyses: dict[str, ImageAnalysis] = Field(default_factory=dict)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def to_regenerate(self) -> tuple[str, ...]:
        """Shots with a blocking failure."""
        return tuple(shot for shot, report in self.shots.items() if not report.passed)

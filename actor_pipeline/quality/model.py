"""What the quality checks return: one ``CheckResult`` per check and shot, gathered per actor."""

from enum import Enum

from pydantic import BaseModel, ConfigDict, computed_field

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

    @computed_field  # type: ignore[prop-decorator]
    @property
    def to_regenerate(self) -> tuple[str, ...]:
        """Shots with a blocking failure."""
        return tuple(shot for shot, report in self.shots.items() if not report.passed)

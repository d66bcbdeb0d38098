"""What a set may spend on quality, and what one run may spend at all (issue 19).

- **Regeneration budget**: quality regenerations of a set cost at most ``regen_budget_pct`` of its
  first-pass predictions (one per shot), over all runs, as ``qc_attempts`` is per shot.
- **Systemic failures**: a blocking check failing on ``systemic_pct`` or more of the set's shots
  at the run's first check says the model, the portrait or the catalog is wrong; regenerating
  cannot fix that, so shots failing it are not regenerated, and one line says what to look at.
- **Spending cap** (``Spending``): no prediction is created once a run's spending would pass it.

``RegenBudget`` decides shot by shot; the runner asks it. ``QualityVerdict`` is what the set's last
quality pass decided, kept beside the set for the manifest, the bundle and the UI.
"""

import logging
import math
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from actor_pipeline.generation.types import CreatesClosed
from actor_pipeline.quality.model import CheckName, SetReport
from actor_pipeline.storage.base import Storage
from actor_pipeline.storage.layout import ActorLayout

log = logging.getLogger(__name__)

DEFAULT_REGEN_BUDGET_PCT = 25.0
DEFAULT_SYSTEMIC_PCT = 50.0

# Why an image that fails a blocking check was kept rather than regenerated.
KeptReason = Literal["attempts", "budget", "systemic", "cap"]
KEPT_REASONS: dict[str, str] = {
    "attempts": "the shot's qc_attempts are spent",
    "budget": "the set's regeneration budget is spent",
    "systemic": "its check failed on most of the set (systemic)",
    "cap": "the run's spending cap is reached",
}

# What a check failing on most of a set points at.
_LOOK_AT: dict[CheckName, str] = {
    CheckName.SIZE: "the model returns another size than asked for: check the model and its aspect_ratio",
    CheckName.BLANK: "the model returns blank or flat frames: check the model, then the portrait",
    CheckName.SHARPNESS: "the images are soft: check the portrait's focus and resolution, then the model",
    CheckName.MONOCHROME: "black-and-white shots come back in colour: check the model, then the catalog's wording",
    CheckName.COLOR: "colour shots come back grey: check the portrait (a black-and-white photo?), then the model",
    CheckName.NEAR_DUPLICATE: "the model returns nearly the same picture for every prompt (an editing model "
    "handing its input back): check the model, then the portrait",
    CheckName.FACE: "no face is found: check the portrait (one clear, frontal face), then the catalog",
    CheckName.IDENTITY: "the faces do not match the portrait: check the portrait (one clear, frontal face), "
    "then the model",
}


def regen_budget(shots: int, pct: float) -> int:
    """Regenerations a set of ``shots`` may pay for: ``pct`` % of its first-pass predictions,
    rounded down (25 % of 17 is 4), but at least one unless ``pct`` is 0, so a small set can
    still fix its odd bad shot."""
    if pct <= 0 or shots <= 0:
        return 0
    return max(1, math.floor(shots * pct / 100 + 1e-9))  # 1e-9: 29 % of 100 is 29, not 28.999...


class Systemic(BaseModel):
    """A blocking check that failed on a large share of the set: not worth paying to regenerate."""

    check: CheckName
    failed: int = Field(description="shots whose image failed the check")
    shots: int = Field(description="shots in the set")
    message: str = Field(description="one line: the check, how many failed it, and what to look at")


def systemic(check: CheckName, failed: int, shots: int) -> Systemic:
    message = (
        f"quality: {check.value} failed on {failed} of {shots} shots, so no shot is regenerated for it; "
        f"{_LOOK_AT[check]}"
    )
    return Systemic(check=check, failed=failed, shots=shots, message=message)


def systemic_failures(report: SetReport, shots: int, pct: float) -> list[Systemic]:
    """The blocking checks failing on ``pct`` % or more of a set of ``shots``."""
    failed: dict[CheckName, int] = {}
    for shot in report.shots.values():
        for result in shot.results:
            if result.blocks:
                failed[result.check] = failed.get(result.check, 0) + 1
    return [systemic(check, n, shots) for check, n in failed.items() if n >= shots * pct / 100 - 1e-9]


class QualityVerdict(BaseModel):
    """What the set's last quality pass decided (``ActorLayout.quality_verdict``)."""

    regen_budget: int = Field(description="regenerations the set may pay for, over all runs")
    systemic: list[Systemic] = Field(default_factory=list)
    kept: dict[str, KeptReason] = Field(
        default_factory=dict, description="shot id -> why its failed image was kept rather than regenerated"
    )


def load_verdict(storage: Storage, layout: ActorLayout) -> QualityVerdict | None:
    """The set's last verdict; ``None`` before any quality pass (or when it is unreadable: the
    next pass writes it again)."""
    try:
        return QualityVerdict.model_validate_json(storage.get(layout.quality_verdict))
    except FileNotFoundError:
        return None
    except (ValidationError, ValueError) as exc:
        log.warning("%s: quality verdict unreadable, ignored: %s", layout.actor_id, exc)
        return None


def save_verdict(storage: Storage, layout: ActorLayout, verdict: QualityVerdict) -> None:
    storage.put(layout.quality_verdict, verdict.model_dump_json(indent=2).encode(), "application/json")


@dataclass
class RegenBudget:
    """Which shots failing a blocking check one run regenerates: not those failing a systemic
    check, nor past their ``qc_attempts``, the set's budget or the run's spending cap."""

    budget: int  # regen_budget() of the set
    spent: int  # regenerations of the set so far, over all runs
    qc_attempts: int
    kept: dict[str, KeptReason] = field(default_factory=dict)  # the last verdict's, then this run's
    systemic: list[Systemic] = field(default_factory=list)

    def decide(self, shot_id: str, failed: set[CheckName], regenerations: int, affordable: bool) -> KeptReason | None:
        """``None``: regenerate the shot (spending the budget on it); else why it is kept as it is
        (also recorded in ``kept``). ``affordable``: the run's spending cap allows one more."""
        reason: KeptReason | None = None
        if failed & {s.check for s in self.systemic}:
            reason = "systemic"
        elif regenerations >= self.qc_attempts:
            reason = "attempts"
        elif self.spent >= self.budget:
            reason = "budget"
        elif not affordable:
            reason = "cap"
        if reason is None:
            self.spent += 1
            self.kept.pop(shot_id, None)
        else:
            self.kept[shot_id] = reason
        return reason

    def passed(self, shot_id: str) -> None:
        self.kept.pop(shot_id, None)

    def verdict(self) -> QualityVerdict:
        return QualityVerdict(regen_budget=self.budget, systemic=self.systemic, kept=self.kept)


class CapReached(CreatesClosed):
    """A create the run's spending cap refuses."""


@dataclass
class Spending:
    """One run's spending cap. Each prediction the run creates is charged at the price per image
    before it is created (Replicate bills only the ones that succeed: the bill is at most this);
    predictions adopted from earlier runs were paid for there."""

    cap_usd: float | None
    price_usd: float
    spent_usd: float = 0.0

    def allows(self, predictions: int) -> int:
        """How many of ``predictions`` more the cap lets the run create."""
        if self.cap_usd is None or self.price_usd <= 0:
            return predictions
        room = math.floor((self.cap_usd - self.spent_usd) / self.price_usd + 1e-9)  # 1e-9: 0.28 / 0.04 is 7
        return max(0, min(predictions, room))

    def affords(self, predictions: int) -> bool:
        return self.allows(predictions) == predictions

    def charge(self) -> None:
        """Charge one prediction, or raise ``CapReached`` when it would pass the cap."""
        if not self.affords(1):
            raise CapReached(
                f"not started: the run's spending cap of ${self.cap_usd:.2f} is reached (${self.spent_usd:.2f} "
                "spent): rerun with a higher max_cost_usd (--max-cost-usd); what was made is not paid again"
            )
        self.spent_usd = round(self.spent_usd + self.price_usd, 6)

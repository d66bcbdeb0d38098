"""The training-set manifest: a versioned JSON document describing one actor's set.

``manifest.schema.json`` beside this file is its JSON Schema (equal to ``Manifest``'s, a test checks); bump ``SCHEMA_VERSION`` on any
incompatible change.
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from actor_pipeline.catalog.prompts import PlannedShot, PromptSet
from actor_pipeline.generation.budget import KeptReason, QualityVerdict, Systemic
from actor_pipeline.generation.journal import ShotRecord
from actor_pipeline.generation.types import Usage
from actor_pipeline.outputs.bundle import BundleReport
from actor_pipeline.quality.model import CheckResult
from actor_pipeline.registry import ActorFields, Registration
from actor_pipeline.storage.base import Storage

SCHEMA_VERSION = 1
# The manifest's JSON Schema, for the sets' consumers (package data; kept equal to ``Manifest``).
SCHEMA_FILE = Path(__file__).with_name("manifest.schema.json")


class PortraitInfo(BaseModel):
    source: str
    key: str
    url: str
    sha256: str
    bytes: int
    width: int
    height: int


class ImageEntry(BaseModel):
    shot_id: str
    index: int
    category: str
    label: str
    prompt: str = Field(description="the prompt of the last attempt (a rewording after safety-filter flags)")
    seed: int
    wording: int = Field(0, description="0: the shot's own prompt; n: its n-th rewording")
    status: Literal[
        "succeeded", "in_progress", "pending", "failed", "content_flagged", "canceled", "timed_out", "missing"
    ]
    key: str | None = Field(None, description="storage key of the last good image, if any")
    url: str | None = None
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    prediction_id: str | None = None
    cost_usd: float = Field(0.0, description="cumulative across every attempt at this shot")
    duration_s: float | None = None
    attempts: int = 0
    error: str | None = None
    qc: Literal["not_checked", "passed", "regenerated", "failed"] = Field(
        "not_checked", description="the image's quality checks: passed, passed after regenerating, or failed"
    )
    regenerations: int = Field(0, description="attempts made because an image failed a blocking quality check")
    qc_reason: KeptReason | None = Field(
        None,
        description="with qc failed: why the image was kept rather than regenerated (attempts: the shot's "
        "qc_attempts are spent; budget: the set's regeneration budget is spent; systemic: its check failed on "
        "most of the set; cap: the run's spending cap was reached)",
    )
    quality: list[CheckResult] = Field(default_factory=list, description="every check on the image")


class FailedShot(BaseModel):
    shot_id: str
    index: int
    status: str
    error: str


class Totals(BaseModel):
    target: int
    generated: int
    failed: int
    cost_usd: float
    usable: int = Field(0, description="images in the LoRA bundle: made and not failed by the quality checks")
    cost_per_usable_image_usd: float | None = Field(None, description="cost_usd / usable; None without a usable image")


class QualitySummary(BaseModel):
    """The set's quality checks: what passed, what regeneration spent, what failed systemically."""

    passed: int = Field(0, description="images that passed every blocking check, regenerated or not")
    failed: int = Field(0, description="images kept with qc failed, left out of the LoRA bundle")
    regenerations: int = Field(0, description="quality regenerations paid for, over all runs")
    regen_budget: int | None = Field(None, description="regenerations the set may pay for; None before any check")
    systemic: list[Systemic] = Field(
        default_factory=list, description="blocking checks that failed on most of the set, not regenerated for"
    )


class GridInfo(BaseModel):
    key: str
    url: str


class BundleInfo(BaseModel):
    """The LoRA bundle: where it is, and what went in and was left out (``BundleReport``)."""

    key: str
    url: str
    sha256: str
    report: BundleReport


class LikenessSummary(BaseModel):
    """How like the portrait the trained LoRA's validation images are (identity distances)."""

    images: int = Field(description="validation images made from held-out prompts")
    measured: int = Field(description="images whose face was found and compared with the portrait")
    passed: int = Field(description="measured images within max_distance of the portrait")
    median_distance: float | None = Field(None, description="median identity distance (dlib: under 0.6 is the same person)")
    max_distance: float
    sheet_url: str | None = Field(None, description="the validation images' contact sheet")
    cost_usd: float = Field(description="the validation predictions, over all runs")


class LoraSection(BaseModel):
    """The actor's trained LoRA (its latest training) and what every training cost."""

    status: Literal["succeeded", "failed", "canceled", "timed_out"]
    trainer: str
    trainer_version: str
    training_id: str | None
    model_version: str | None = Field(None, description="owner/name:version of the destination model")
    weights_url: str | None = None
    trigger: str
    bundle_sha256: str
    cost_usd: float = Field(description="this training: metrics.predict_time x the trainer's price per second")
    duration_s: float | None = None
    error: str | None = None
    trainings: int = Field(description="trainings paid for, over all runs, failed ones included")
    trainings_cost_usd: float = Field(description="what every training cost")
    validation_images: int = Field(0, description="validation images paid for, over every training")
    validation_cost_usd: float = Field(0.0, description="what every validation image cost")
    likeness: LikenessSummary | None = None


class Manifest(BaseModel):
    schema_version: Literal[1] = SCHEMA_VERSION
    generated_at: datetime
    actor_id: str
    user_id: str
    actor_type: str
    actor_sex: str | None
    descriptor: str
    catalog: str
    backend: str
    model: str
    portrait: PortraitInfo
    grid: GridInfo
    bundle: BundleInfo | None = Field(None, description="the LoRA bundle, once the finish stage has made it")
    images: list[ImageEntry]
    failed: list[FailedShot]
    ledger: Usage  # every attempt at the set's shots, ever
    totals: Totals
    quality: QualitySummary = Field(default_factory=QualitySummary)
    lora: LoraSection | None = Field(None, description="the trained LoRA, once one was asked for (actor-pipeline train)")
    total_cost_usd: float = Field(0.0, description="what the actor cost in all: its images, trainings and validation images")

    @property
    def training_image_urls(self) -> list[str]:
        return [image.url for image in self.images if image.status == "succeeded" and image.url]


def build_manifest(
    registration: Registration,
    prompt_set: PromptSet,
    portrait: PortraitInfo,
    grid: GridInfo,
    records: Mapping[str, ShotRecord | None],
    storage: Storage,
    default_backend: tuple[str, str],
    bundle: BundleInfo | None = None,
    verdict: QualityVerdict | None = None,
    lora: LoraSection | None = None,
) -> Manifest:
    """Describe the set from the shot records and the last quality ``verdict``; shots never
    attempted are listed as missing."""
    kept = verdict.kept if verdict else {}
    images = [_entry(p, records.get(p.shot_id), storage, kept.get(p.shot_id)) for p in prompt_set.shots]
    attempted = [r for r in records.values() if r is not None]
    ledger = sum((r.usage for r in attempted), Usage())
    newest = max(attempted, key=lambda r: r.updated_at, default=None)
    backend, model = (newest.backend, newest.model) if newest else default_backend
    failed = [
        FailedShot(shot_id=i.shot_id, index=i.index, status=i.status, error=i.error or "not generated yet")
        for i in images
        if i.status != "succeeded"
    ]
    usable = len(bundle.report.images) if bundle else 0
    return Manifest(
        generated_at=datetime.now(UTC),
        **registration.fields_of(ActorFields),
        descriptor=prompt_set.descriptor,
        catalog=prompt_set.catalog,
        backend=backend,
        model=model,
        portrait=portrait,
        grid=grid,
        bundle=bundle,
        images=images,
        failed=failed,
        ledger=ledger,
        totals=Totals(
            target=len(images),
            generated=len(images) - len(failed),
            failed=len(failed),
            cost_usd=ledger.cost_usd,
            usable=usable,
            cost_per_usable_image_usd=round(ledger.cost_usd / usable, 4) if usable else None,
        ),
        quality=QualitySummary(
            passed=sum(i.qc in ("passed", "regenerated") for i in images),
            failed=sum(i.qc == "failed" for i in images),
            regenerations=sum(r.regenerations for r in attempted),
            regen_budget=verdict.regen_budget if verdict else None,
            systemic=verdict.systemic if verdict else [],
        ),
        lora=lora,
        total_cost_usd=round(ledger.cost_usd + (lora.trainings_cost_usd + lora.validation_cost_usd if lora else 0.0), 6),
    )


def _entry(planned: PlannedShot, record: ShotRecord | None, storage: Storage, kept: KeptReason | None) -> ImageEntry:
    entry = ImageEntry(
        shot_id=planned.shot_id,
        index=planned.index,
        category=planned.category.value,
        label=planned.label,
        prompt=planned.prompt,
        seed=planned.seed,
        status="missing",
    )
    if record is None:
        return entry
    image = record.image
    return entry.model_copy(
        update={
            "prompt": record.prompt,
            "seed": record.seed,
            "wording": record.wording,
            "status": record.status.value,
            "prediction_id": record.prediction_id,
            "cost_usd": record.usage.cost_usd,
            "duration_s": record.duration_s,
            "attempts": record.attempts,
            "error": record.error,
            "qc": record.qc,
            "regenerations": record.regenerations,
            "qc_reason": kept if record.qc == "failed" else None,
            "quality": record.quality,
            **(image.model_dump(exclude={"thumbnail"}) | {"url": storage.url(image.key)} if image else {}),
        }
    )


def write_manifest(storage: Storage, key: str, manifest: Manifest) -> str:
    """One PUT, after every image and the grid, so a reader never sees a dangling entry."""
    storage.put(key, manifest.model_dump_json(indent=2).encode(), "application/json")
    return storage.url(key)

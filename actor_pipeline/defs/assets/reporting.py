"""What the UI shows about a set: links a browser opens, thumbnails, the state of each shot that
did not succeed, and what a run made, failed and cost. Built from the shot journal; the assets
only attach it to their events."""

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import dagster as dg

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.errors import StorageUnavailable
from actor_pipeline.generation.budget import load_verdict
from actor_pipeline.generation.journal import ShotRecord, StoredImage
from actor_pipeline.generation.runner import ShotOutcome
from actor_pipeline.generation.types import ShotStatus, Usage
from actor_pipeline.outputs.manifest import Manifest
from actor_pipeline.outputs.thumbnails import inline_markdown
from actor_pipeline.storage.base import Storage
from actor_pipeline.unfinished import INTERRUPTED

log = logging.getLogger(__name__)

MADE_TAG = "actor_pipeline/made"
FAILED_TAG = "actor_pipeline/failed"
COST_TAG = "actor_pipeline/cost_usd"
LEDGER_TAG = "actor_pipeline/ledger_usd"
# What the finished sets hold (their manifests'): as the CLI's and the API's result says it.
QC_PASSED_TAG = "actor_pipeline/qc_passed"
QC_FAILED_TAG = "actor_pipeline/qc_failed"
USABLE_TAG = "actor_pipeline/bundle_images"
COST_PER_USABLE_TAG = "actor_pipeline/cost_per_usable_image_usd"
SYSTEMIC_TAG = "actor_pipeline/systemic"  # the checks that failed on most of a set
# An asset event's metadata: Dagster takes plain values and ``MetadataValue``s alike.
Metadata = dict[str, Any]


def link(url: str) -> dict[str, dg.MetadataValue]:
    """``{"url": ...}``, or for a local file ``{"path": ...}``: browsers refuse to open
    ``file://`` links from a web page, while the UI shows a path with a button to copy it."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return {"path": dg.MetadataValue.path(url2pathname(parts.path))}
    return {"url": dg.MetadataValue.url(url)}


def preview(
    storage: Storage, key: str, alt: str, render: Callable[[bytes, str], str] = inline_markdown
) -> dict[str, dg.MetadataValue]:
    """``{"thumbnail": ...}`` of the stored image ``key``, or nothing when it cannot be read
    now: a missing thumbnail is not worth failing a materialization for."""
    try:
        markdown = render(storage.get(key), alt)
    except (OSError, StorageUnavailable) as exc:
        log.warning("no thumbnail of %s: %s", key, exc)
        return {}
    return {"thumbnail": dg.MetadataValue.md(markdown)}


def shot_preview(storage: Storage, image: StoredImage, alt: str) -> dict[str, dg.MetadataValue]:
    """The thumbnail the shot's record kept (no download), else one made from the stored image."""
    return {"thumbnail": dg.MetadataValue.md(image.thumbnail)} if image.thumbnail else preview(storage, image.key, alt)


def unfinished_shot(asset_key: dg.AssetKey, partition: str, record: ShotRecord) -> dg.AssetObservation:
    """The journal's state of a shot that did not succeed, on its own partition: a failed
    partition otherwise shows only the run's failure."""
    # In progress after the run has ended means stopped half-way: a rerun resumes that attempt.
    status = INTERRUPTED if record.status is ShotStatus.IN_PROGRESS else record.status.value
    return dg.AssetObservation(
        asset_key=asset_key,
        partition=partition,
        metadata={
            "status": status,
            "error": record.error or "",
            "attempts": record.attempts,
            "prediction_id": record.prediction_id or "",
            "cost_usd": record.usage.cost_usd,  # every attempt at this shot so far
        },
    )


def quality_table(record: ShotRecord) -> str:
    """The image's quality checks as a markdown table: check, outcome, measured, threshold."""
    if not record.quality:
        return "not checked"
    rows = ["| check | outcome | measured | threshold | reason |", "|---|---|---|---|---|"]
    for result in record.quality:
        outcome = f"**{result.outcome.value}**" if result.blocks else result.outcome.value
        measured = ", ".join(f"{k} {v:g}" for k, v in result.measured.items())
        threshold = ", ".join(f"{k} {v:g}" for k, v in result.threshold.items())
        rows.append(f"| {result.check.value} | {outcome} | {measured} | {threshold} | {result.reason.replace('|', '/')} |")
    return "\n".join(rows)


@dataclass
class RunTally:
    """What one ``training_image`` run did, over its actors, as run tags."""

    actors: int = 0
    made: int = 0  # shots of the run that have their image, reused ones included
    failed: int = 0
    spent: Usage = field(default_factory=Usage)  # this run's attempts
    ledger: Usage = field(default_factory=Usage)  # every attempt at these actors' shots, ever
    finished: list[Manifest] = field(default_factory=list)  # of the actors whose set the run finished

    def add(self, before: Mapping[str, ShotRecord], outcomes: Sequence[ShotOutcome]) -> None:
        """Count one actor's ``outcomes``, given its journal ``before`` the run."""
        after = {**before, **{o.record.shot_id: o.record for o in outcomes}}
        self.actors += 1
        self.made += sum(o.succeeded for o in outcomes)
        self.failed += sum(not o.succeeded for o in outcomes)
        for outcome in outcomes:
            earlier = before.get(outcome.record.shot_id)
            self.spent += outcome.record.usage - (earlier.usage if earlier else Usage())
        self.ledger += sum((record.usage for record in after.values()), Usage())

    def tags(self) -> dict[str, str]:
        return {
            MADE_TAG: str(self.made),
            FAILED_TAG: str(self.failed),
            COST_TAG: str(round(self.spent.cost_usd, 4)),
            LEDGER_TAG: str(round(self.ledger.cost_usd, 4)),
            **(usable_tags(self.finished) if self.finished else {}),
        }


def usable_tags(manifests: Sequence[Manifest]) -> dict[str, str]:
    """What the finished sets hold, over their actors: images that passed and failed the quality
    checks, images in the LoRA bundles, what each cost, and the checks that failed systemically."""
    usable = sum(m.totals.usable for m in manifests)
    cost = sum(m.ledger.cost_usd for m in manifests)
    systemic = sorted({found.check.value for m in manifests for found in m.quality.systemic})
    return {
        QC_PASSED_TAG: str(sum(m.quality.passed for m in manifests)),
        QC_FAILED_TAG: str(sum(m.quality.failed for m in manifests)),
        USABLE_TAG: str(usable),
        COST_PER_USABLE_TAG: str(round(cost / usable, 4)) if usable else "none",
        **({SYSTEMIC_TAG: ",".join(systemic)} if systemic else {}),
    }


def systemic_lines(actor: ActorContext) -> list[str]:
    """The lines of the actor's last quality pass naming checks that failed on most of its set."""
    verdict = load_verdict(actor.storage, actor.layout)
    return [found.message for found in verdict.systemic] if verdict else []

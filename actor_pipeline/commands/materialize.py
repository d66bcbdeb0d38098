"""Materialize an actor's assets in-process: its whole set in one run of ``training_image`` (which
reports the per-actor assets too, as the inbox's runs do), shots again by range, or the finishing
assets (grid, bundle, manifest) alone."""

import logging
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dagster as dg

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.defs.assets import ALL_ASSETS, debug_grid, lora_bundle, training_image, training_manifest
from actor_pipeline.defs.assets.images import image_run_config
from actor_pipeline.defs.assets.reporting import COST_TAG
from actor_pipeline.defs.failures import FAILED_SHOTS_KEY
from actor_pipeline.defs.liveness import process_tags
from actor_pipeline.defs.partitions import actor_image_range, actors_partitions
from actor_pipeline.defs.runs import actor_tags
from actor_pipeline.errors import Interrupted, StorageUnavailable
from actor_pipeline.generation import stopping
from actor_pipeline.generation.journal import ShotJournal
from actor_pipeline.outputs.manifest import Manifest
from actor_pipeline.storage.base import Storage
from actor_pipeline.storage.layout import ActorLayout

log = logging.getLogger(__name__)

# Dagster's own console output (a step's failure with its stack, for one) would bury our progress
# lines; errors surface as exceptions, which the CLI turns into one line each.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass(frozen=True)
class ActorResult:
    manifest: Manifest
    manifest_url: str
    # Dollars this run added to the ledger (its ``actor_pipeline/cost_usd`` tag): its own
    # predictions, and any an earlier run paid that it found in Replicate's list (the
    # manifest's ``cost_usd`` is the set's, ever).
    cost_this_run_usd: float

    def as_dict(self) -> dict[str, Any]:
        """The seed's result keys plus ``manifest_url``, ``grid_url``, ``failed``, the set's and
        this run's cost, and what is usable:
        ``qc_passed``, ``qc_failed`` (each with its checks and why it was not regenerated),
        ``bundle_images`` (the LoRA bundle's), ``cost_per_usable_image_usd`` and ``systemic``."""
        urls = self.manifest.training_image_urls
        totals = self.manifest.totals
        return {
            "training_image_urls": urls,
            "total_training_images": len(urls),
            "target_training_images": self.manifest.totals.target,
            "manifest_url": self.manifest_url,
            "grid_url": self.manifest.grid.url,
            "bundle_url": self.manifest.bundle.url if self.manifest.bundle else None,
            "failed": [f.model_dump() for f in self.manifest.failed],
            "cost_usd": self.manifest.ledger.cost_usd,
            "cost_this_run_usd": self.cost_this_run_usd,
            "backend": self.manifest.backend,
            "qc_passed": self.manifest.quality.passed,
            "qc_failed": [
                {
                    "shot_id": image.shot_id,
                    "checks": [r.check.value for r in image.quality if r.blocks],
                    "reason": "; ".join(r.reason for r in image.quality if r.blocks),
                    "not_regenerated": image.qc_reason,
                }
                for image in self.manifest.images
                if image.qc == "failed"
            ],
            "bundle_images": totals.usable,
            "bundle_minimum": self.manifest.bundle.report.minimum if self.manifest.bundle else None,
            "cost_per_usable_image_usd": totals.cost_per_usable_image_usd,
            "systemic": [found.message for found in self.manifest.quality.systemic],
        }

    def shortfall(self) -> str | None:
        """One line when the LoRA bundle holds fewer images than its minimum, else ``None``."""
        bundle, quality = self.manifest.bundle, self.manifest.quality
        if bundle is not None and not bundle.report.below_minimum:
            return None
        held = (
            f"the LoRA bundle holds {len(bundle.report.images)} image(s), below its minimum of {bundle.report.minimum}"
            if bundle
            else "there is no LoRA bundle: no image is usable"
        )
        not_made = self.manifest.totals.failed
        why = f"{quality.failed} image(s) failed the quality checks" + (f", {not_made} shot(s) not made" if not_made else "")
        return f"{held}: {why} (see qc_failed, systemic and failed in the result)"


def _process_tags(actor_id: str) -> dict[str, str]:
    return {**actor_tags(actor_id), **process_tags()}


def materialize_actor(
    actor: ActorContext,
    *,
    instance: dg.DagsterInstance,
    resources: Mapping[str, Any],
    force: bool = False,
    bundle: Mapping[str, Any] | None = None,
) -> ActorResult:
    """Materialize all five assets for a registered actor in one run, as the inbox does: the
    portrait and prompts, every shot, then grid, bundle (``bundle``: a ``LoraBundleConfig``) and
    manifest. Failed shots do not raise: they are FAILED partitions, listed in the manifest and
    the result."""
    actor_id, storage, key = actor.actor_id, actor.storage, actor.layout.manifest
    ensure_actor_partition(instance, actor_id)
    log.info("%s: making the set (portrait, prompts, shots, contact sheet, bundle, manifest)", actor_id)
    run_config = image_run_config(start={}, finish=bundle or {}, force=force)
    spent = materialize_shots(
        actor_id, actor_image_range(actor_id), instance=instance, resources=resources, run_config=run_config
    )
    return ActorResult(Manifest.model_validate_json(storage.get(key)), storage.url(key), spent)


def ensure_actor_partition(instance: dg.DagsterInstance, actor_id: str) -> None:
    if not instance.has_dynamic_partition(actors_partitions.name, actor_id):
        instance.add_dynamic_partitions(actors_partitions.name, [actor_id])


def materialize_shots(
    actor_id: str,
    range_tags: Mapping[str, str],
    *,
    instance: dg.DagsterInstance,
    resources: Mapping[str, Any],
    run_config: Mapping[str, Any] | None = None,
) -> float:
    """Make the shots in ``range_tags`` in one run (``run_config``: what else the run does, e.g.
    ``image_run_config``); returns the dollars it added to their ledgers. Failed shots do not
    raise (they end as FAILED partitions); any other failure of the run raises what the asset
    raised (e.g. ``StorageUnavailable``, ``ActorBusy``, ``Interrupted``)."""
    tags = {**range_tags, **_process_tags(actor_id)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=dg.BetaWarning)
        try:
            dg.materialize(
                ALL_ASSETS,
                selection=[training_image],
                instance=instance,
                resources=dict(resources),
                tags=tags,
                run_config={**QUIET_RUN_CONFIG, **(run_config or {})},
            )
        except dg.Failure as failure:
            if FAILED_SHOTS_KEY not in failure.metadata:
                raise
    (run,) = instance.get_runs(dg.RunsFilter(tags=tags), limit=1)  # this one: the newest
    return float(run.tags.get(COST_TAG, 0.0))


def finish_actor(
    actor_id: str,
    *,
    instance: dg.DagsterInstance,
    resources: Mapping[str, Any],
    bundle: Mapping[str, Any] | None = None,
) -> None:
    """Draw the grid, zip the LoRA bundle (``bundle``: a ``LoraBundleConfig``) and write the
    manifest (last) from what storage holds now."""
    log.info("%s: drawing the grid, zipping the LoRA bundle and writing the manifest", actor_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=dg.BetaWarning)
        dg.materialize(
            ALL_ASSETS,
            selection=[debug_grid, lora_bundle, training_manifest],
            partition_key=actor_id,
            instance=instance,
            resources=dict(resources),
            run_config={**QUIET_RUN_CONFIG, "ops": {lora_bundle.op.name: {"config": dict(bundle or {})}}},
            tags=_process_tags(actor_id),
        )


def stop_if_requested() -> None:
    if (signum := stopping.requested()) is not None:
        raise Interrupted(signum)


@contextmanager
def spool_reported(storage: Storage, layout: ActorLayout) -> Iterator[None]:
    """Say, when storage fails, how many paid images wait in the spool for the next run."""
    try:
        yield
    except StorageUnavailable as exc:
        spooled = ShotJournal(storage, layout).spooled_count()
        raise StorageUnavailable(
            f"{exc}. {spooled} paid image(s) wait in the spool under {storage.state_dir}; rerun the same command "
            "once storage answers: they are stored at no cost, and no prediction is made twice"
        ) from exc

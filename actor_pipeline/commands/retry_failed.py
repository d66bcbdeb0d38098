"""The in-process rerun behind ``actor-pipeline retry-failed`` (its plan: ``defs.retries``).

Only failed shots are run again (as ranges of consecutive shots), so only they are paid for;
then the actor's grid and manifest are redrawn.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.commands.instance import open_instance
from actor_pipeline.commands.materialize import (
    ensure_actor_partition,
    finish_actor,
    materialize_shots,
    spool_reported,
    stop_if_requested,
)
from actor_pipeline.defs.assets.images import image_run_config
from actor_pipeline.defs.partitions import CATALOG
from actor_pipeline.defs.retries import retry_plan
from actor_pipeline.defs.runs import shot_range_tags
from actor_pipeline.defs.settings import PipelineSettings
from actor_pipeline.errors import ActorBusy
from actor_pipeline.outputs.manifest import Manifest
from actor_pipeline.storage.lease import hold_actor
from actor_pipeline.unfinished import UnfinishedShot, shot_ranges

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActorRetry:
    actor_id: str
    retried: list[str]
    exhausted: list[UnfinishedShot]
    manifest: Manifest | None  # after the rerun; None if the actor has none yet
    manifest_url: str | None

    @property
    def still_failed(self) -> list[str]:
        return [f.shot_id for f in self.manifest.failed] if self.manifest else [s.shot_id for s in self.exhausted]

    def as_dict(self) -> dict[str, Any]:
        return {
            "actor_id": self.actor_id,
            "retried": self.retried,
            "exhausted": [{"shot_id": s.shot_id, "attempts": s.attempts, "error": s.error} for s in self.exhausted],
            "still_failed": self.still_failed,
            "total_training_images": self.manifest.totals.generated if self.manifest else None,
            "manifest_url": self.manifest_url,
        }


def retry_failed(
    settings: PipelineSettings,
    actor_ids: Sequence[str] | None,
    max_attempts: int,
    instance: dg.DagsterInstance | None = None,
) -> list[ActorRetry]:
    """Rerun the failed shots of ``actor_ids`` (or all actors) in-process, then redraw each
    retried actor's grid and manifest."""
    resources = settings.resources()
    storage = resources["storage"].create_storage()
    settings.generator.create_backend(CATALOG)  # fail fast on a backend that cannot work
    instance = instance or open_instance(settings.resolved_instance_dir)
    plan = retry_plan(instance, storage, actor_ids, max_attempts)
    retried = plan.shots_by_actor()
    exhausted: dict[str, list[UnfinishedShot]] = {}
    for shot in plan.exhausted:
        exhausted.setdefault(shot.actor_id, []).append(shot)
        log.warning("%s: shot %s reached %d attempt(s); not retried", shot.actor_id, shot.shot_id, shot.attempts)
    results = []
    # An actor named explicitly is finished even with nothing to rerun: a run that died after
    # its last shot left no manifest.
    for actor_id in sorted(set(actor_ids or ()) | retried.keys() | exhausted.keys()):
        actor = ActorContext.load(storage, actor_id)
        try:
            with hold_actor(storage, actor_id, "actor-pipeline retry-failed"), spool_reported(storage, actor.layout):
                _rerun(actor_id, retried.get(actor_id, []), instance, resources, settings.bundle_config())
        except ActorBusy as exc:
            if actor_ids is not None:
                raise
            log.warning("retry: skipping %s: %s", actor_id, exc)
            continue
        results.append(_outcome(actor, retried.get(actor_id, []), exhausted.get(actor_id, [])))
    return results


def _rerun(
    actor_id: str,
    shot_ids: list[str],
    instance: dg.DagsterInstance,
    resources: Mapping[str, Any],
    bundle: Mapping[str, Any],
) -> None:
    """One run per range of consecutive shots; the last one also finishes the set."""
    ensure_actor_partition(instance, actor_id)
    ranges = shot_ranges(shot_ids, CATALOG.ids)
    if not ranges:
        finish_actor(actor_id, instance=instance, resources=resources, bundle=bundle)
    for number, (first, last) in enumerate(ranges, 1):
        log.info("%s: retrying %s..%s", actor_id, first, last)
        finish = bundle if number == len(ranges) else None
        run_config = image_run_config(finish=finish)
        materialize_shots(
            actor_id, shot_range_tags(actor_id, first, last), instance=instance, resources=resources, run_config=run_config
        )
        stop_if_requested()


def _outcome(actor: ActorContext, retried: list[str], exhausted: list[UnfinishedShot]) -> ActorRetry:
    storage, key = actor.storage, actor.layout.manifest
    try:
        manifest = Manifest.model_validate_json(storage.get(key))
    except FileNotFoundError:
        return ActorRetry(actor.actor_id, retried, exhausted, None, None)
    return ActorRetry(actor.actor_id, retried, exhausted, manifest, storage.url(key))

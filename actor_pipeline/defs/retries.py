"""Which failed shots to rerun, from Dagster's partition status and the shot journals, and the run
requests that rerun them: the nightly schedule's and ``actor-pipeline retry-failed``'s plan."""

import logging
from collections.abc import Sequence

import dagster as dg

from actor_pipeline.defs.assets import training_image
from actor_pipeline.defs.partitions import CATALOG, actors_partitions, image_key, image_partitions
from actor_pipeline.defs.runs import shot_range_tags
from actor_pipeline.errors import InputError, StateError
from actor_pipeline.storage.base import Storage
from actor_pipeline.unfinished import RetryPlan, UnfinishedShot, find_failed_shots, plan_retries, shot_ranges

log = logging.getLogger(__name__)


def retry_plan(
    instance: dg.DagsterInstance, storage: Storage, actor_ids: Sequence[str] | None, max_attempts: int
) -> RetryPlan:
    """The plan for ``actor_ids`` (their journals decide, even for actors this instance has not
    run), or for every actor whose ``training_image`` partitions this instance shows FAILED or
    unfinished: one status query for all of them, then journals only for those, so a nightly run
    over thousands of actors stays quick. An actor another process is making is left out."""
    candidates = actor_ids if actor_ids is not None else _unfinished_actors(instance)
    failed: list[UnfinishedShot] = []
    for actor_id in candidates:
        try:
            failed += find_failed_shots(storage, actor_id, CATALOG.ids)
        except (InputError, StateError) as exc:
            if actor_ids is not None:
                raise
            log.warning("retry: skipping %s: %s", actor_id, exc)  # e.g. its storage has moved
    return plan_retries(failed, max_attempts)


def _unfinished_actors(instance: dg.DagsterInstance) -> list[str]:
    """Actors with a shot that Dagster shows FAILED or IN_PROGRESS (an in-process run whose
    process died stays so until a command notices)."""
    actors = instance.get_dynamic_partitions(actors_partitions.name)
    keys = {str(image_key(a, s)): a for a in actors for s in CATALOG.ids}
    found = (instance.get_status_by_partition(training_image.key, list(keys), image_partitions) or {}) if keys else {}
    unfinished = {dg.AssetPartitionStatus.FAILED, dg.AssetPartitionStatus.IN_PROGRESS}
    return sorted({keys[key] for key, status in found.items() if status in unfinished})


def retry_requests(plan: RetryPlan) -> list[dg.RunRequest]:
    """One run request per range of consecutive failed shots of an actor."""
    return [
        dg.RunRequest(tags=shot_range_tags(actor_id, first, last))
        for actor_id, shot_ids in plan.shots_by_actor().items()
        for first, last in shot_ranges(shot_ids, CATALOG.ids)
    ]

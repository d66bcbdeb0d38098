"""The runs that make an actor's set, and what a finished run set out to materialize.

The chain is: ``prepare_actor`` (portrait + prompts) -> ``make_training_images`` (all shots of
the actor in one run) -> ``finish_training_set`` (grid + manifest). A run-status sensor requests
each next stage from the asset partitions a run planned, however it was launched, so a run
started from the UI (e.g. rerunning failed ``training_image`` partitions) also refreshes the
actor's grid and manifest.

For a portrait from the inbox, when the instance runs one run per actor at a time in submission
order (``deploy/dagster.yaml``), all three stages are queued at once instead: each starts within
the queue's 1 s dequeue interval after the previous one ends, rather than at the sensor daemon's
next 5 s wake-up, which keeps drop-to-manifest within 25 s (``benchmarks/bench_inbox_latency.py``).
"""

from collections.abc import Mapping

import dagster as dg
from dagster._core.events import AssetMaterializationPlannedData
from dagster._core.storage.tags import PARENT_RUN_ID_TAG

from actor_pipeline.defs.assets import normalized_portrait, prompt_set, training_image
from actor_pipeline.defs.jobs import finish_training_set, make_training_images, prepare_actor
from actor_pipeline.defs.partitions import actor_image_range, shot_range, shots_by_actor

ACTOR_TAG = "actor_pipeline/actor"
# On the runs of a chain queued at once: their next stages are already queued.
QUEUED_TAG = "actor_pipeline/stages"
QUEUED_AHEAD = "queued-together"
Plan = dict[dg.AssetKey, set[str]]


def actor_tags(actor_id: str) -> dict[str, str]:
    """Tags every chain run carries; ``deploy/dagster.yaml`` runs one such run per actor at a time,
    so two runs never pay for the same shot at once."""
    return {ACTOR_TAG: actor_id}


def shot_range_tags(actor_id: str, first_shot: str, last_shot: str) -> dict[str, str]:
    """Run tags selecting the shots ``first_shot``..``last_shot`` (catalog order) of one actor."""
    return {**shot_range(actor_id, first_shot, last_shot), **actor_tags(actor_id)}


def serializes_actor_runs(instance: dg.DagsterInstance) -> bool:
    """Whether the instance launches queued runs in submission order, one per ``ACTOR_TAG``
    value at a time (``deploy/dagster.yaml`` does), so an actor's stages can be queued at once."""
    if not isinstance(instance.run_coordinator, dg.QueuedRunCoordinator):
        return False
    queue = instance.get_concurrency_config().run_queue_config
    limits = (queue.tag_concurrency_limits if queue else None) or []
    return any(
        limit.get("key") == ACTOR_TAG
        and limit.get("limit") == 1
        and limit.get("value") == {"applyLimitPerUniqueValue": True}
        for limit in limits
    )


def new_set_requests(actor_id: str, run_key: str, tags: Mapping[str, str], *, all_stages: bool) -> list[dg.RunRequest]:
    """The runs that make a newly registered actor's set: all three stages queued together
    (``all_stages``, see ``serializes_actor_runs``) or the first one only, the run-status sensors
    requesting the others."""
    tags = {**tags, **actor_tags(actor_id), **({QUEUED_TAG: QUEUED_AHEAD} if all_stages else {})}
    prepare = dg.RunRequest(job_name=prepare_actor.name, run_key=run_key, partition_key=actor_id, tags=tags)
    if not all_stages:
        return [prepare]
    return [
        prepare,
        dg.RunRequest(
            job_name=make_training_images.name,
            run_key=f"{run_key}:images",
            tags={**tags, **actor_image_range(actor_id)},
        ),
        dg.RunRequest(
            job_name=finish_training_set.name, run_key=f"{run_key}:finish", partition_key=actor_id, tags=tags
        ),
    ]


def next_stage_queued(run: dg.DagsterRun) -> bool:
    """The run's next stage was queued with it. Not so for a retry or re-execution of it, which
    runs after the queued stages and so must request the next stage again."""
    return run.tags.get(QUEUED_TAG) == QUEUED_AHEAD and PARENT_RUN_ID_TAG not in run.tags


def planned_partitions(instance: dg.DagsterInstance, run_id: str) -> Plan:
    """The partitions of each asset the run planned to materialize (whether or not it did)."""
    plan: Plan = {}
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED).records
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.event_specific_data if event else None
        if not isinstance(data, AssetMaterializationPlannedData):
            continue
        keys = plan.setdefault(data.asset_key, set())
        if data.partition:
            keys.add(data.partition)
        elif data.partitions_subset:  # a ranged run
            keys.update(data.partitions_subset.get_partition_keys())
    return plan


def covered_shots(plan: Plan) -> dict[str, list[str]]:
    """The actors a run covered with, for a ``training_image`` run, their shots in catalog order
    (an empty list for a per-actor run)."""
    if training_image.key in plan:
        return shots_by_actor(sorted(plan[training_image.key]))
    return {actor: [] for keys in plan.values() for actor in sorted(keys)}


def next_stage_requests(run_id: str, plan: Plan) -> list[dg.RunRequest]:
    """The runs that continue a finished run's actors: images after the portrait and prompts,
    grid and manifest after images. ``run_key`` makes a repeated evaluation harmless."""
    prepared = plan.get(normalized_portrait.key, set()) | plan.get(prompt_set.key, set())
    if prepared:
        return [
            dg.RunRequest(
                job_name=make_training_images.name,
                run_key=f"{run_id}:images:{actor}",
                tags={**actor_image_range(actor), **actor_tags(actor)},
            )
            for actor in sorted(prepared)
        ]
    if training_image.key in plan:
        return [
            dg.RunRequest(
                job_name=finish_training_set.name,
                run_key=f"{run_id}:finish:{actor}",
                partition_key=actor,
                tags=actor_tags(actor),
            )
            for actor in covered_shots(plan)
        ]
    return []

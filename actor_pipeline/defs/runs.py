"""The runs that make an actor's set, and what a finished run set out to materialize.

A portrait from the inbox starts one run of ``make_training_images`` over the actor's shots that
also starts the actor and finishes its set (``TrainingImageConfig.start`` and ``finish``), and
trains its LoRA when the sidecar asks (``train``): one run launch, where each costs about 3-4 s on
2 cores (a fresh interpreter importing Dagster and the code location), so drop to manifest stays
within L + 15 s, L being one prediction's latency (``benchmarks/bench_inbox_latency.py``).

Runs started otherwise are chained by a run-status sensor from the asset partitions a run planned,
however it was launched: after ``prepare_actor`` (portrait + prompts, e.g. from the Launchpad)
comes one ``make_training_images`` run that also finishes the set (and names itself on the
prepare run, ``follow_up``); after any other image run (e.g.
rerunning failed ``training_image`` partitions from the UI), ``finish_training_set`` (grid,
bundle, manifest) refreshes the actor's set.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from actor_pipeline.defs.assets import normalized_portrait, prompt_set, training_image
from actor_pipeline.defs.assets.images import image_run_config
from actor_pipeline.defs.follow_up import images_run_key
from actor_pipeline.defs.jobs import finish_training_set, make_training_images
from actor_pipeline.defs.partitions import (
    ACTOR_DIMENSION,
    CATALOG,
    SHOT_DIMENSION,
    actor_image_range,
    actors_partitions,
    image_key,
    image_partitions,
    shot_range,
    shots_by_actor,
)

ACTOR_TAG = "actor_pipeline/actor"
Plan = dict[dg.AssetKey, set[str]]
# Dagster's run tags (documented, with no public constants): a run names its partition, or the
# ends of its partition range.
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG, RANGE_END_TAG = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def actor_tags(actor_id: str) -> dict[str, str]:
    """Tags every chain run carries; ``deploy/dagster.yaml`` runs one such run per actor at a time,
    so two runs never pay for the same shot at once."""
    return {ACTOR_TAG: actor_id}


def shot_range_tags(actor_id: str, first_shot: str, last_shot: str) -> dict[str, str]:
    """Run tags selecting the shots ``first_shot``..``last_shot`` (catalog order) of one actor."""
    return {**shot_range(actor_id, first_shot, last_shot), **actor_tags(actor_id)}


def new_set_request(
    actor_id: str, run_key: str, tags: Mapping[str, str], start: Mapping[str, Any], *, train: bool
) -> dg.RunRequest:
    """The one run that makes a new actor's whole set: it starts the actor with ``start`` (a
    ``NewActorConfig``), makes every shot, finishes the set and, with ``train``, trains and
    validates the actor's LoRA."""
    return dg.RunRequest(
        job_name=make_training_images.name,
        run_key=run_key,
        tags={**tags, **actor_image_range(actor_id), **actor_tags(actor_id)},
        run_config=image_run_config(start=start, finish={}, train={} if train else None),
    )


def planned_partitions(instance: dg.DagsterInstance, run_id: str) -> Plan:
    """The partitions of each asset the run planned to materialize (whether or not it did)."""
    plan: Plan = {}
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None or event.asset_key is None:
            continue
        keys = plan.setdefault(event.asset_key, set())
        if event.partition:
            keys.add(event.partition)
        else:  # one event for all (DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS): Dagster took them from the tags
            keys.update(_tagged_keys(instance, run_id, event.asset_key))
    return plan


def _tagged_keys(instance: dg.DagsterInstance, run_id: str, asset_key: dg.AssetKey) -> set[str]:
    """The partition keys a run's tags select, as Dagster reads them: its partition, or for a
    range the actors between its ends (in registration order) and, for ``training_image``, by
    the shots between its ends."""
    run = instance.get_run_by_id(run_id)
    tags = run.tags if run else {}
    if tags.get(PARTITION_TAG):
        return {tags[PARTITION_TAG]}
    start, end = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    if not (start and end):
        return set()
    actors = instance.get_dynamic_partitions(actors_partitions.name)
    if asset_key != training_image.key:
        return set(_between(actors, start, end))
    first = image_partitions.get_partition_key_from_str(start).keys_by_dimension
    last = image_partitions.get_partition_key_from_str(end).keys_by_dimension
    return {
        str(image_key(actor, shot))
        for actor in _between(actors, first[ACTOR_DIMENSION], last[ACTOR_DIMENSION])
        for shot in _between(CATALOG.ids, first[SHOT_DIMENSION], last[SHOT_DIMENSION])
    }


def _between(keys: Sequence[str], first: str, last: str) -> Sequence[str]:
    if first not in keys or last not in keys:
        return []
    return keys[keys.index(first) : keys.index(last) + 1]


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
                run_key=images_run_key(run_id, actor),
                tags={**actor_image_range(actor), **actor_tags(actor)},
                run_config=image_run_config(finish={}),  # one run launch fewer: it finishes the set too
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

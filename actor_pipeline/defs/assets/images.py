import asyncio
from collections.abc import Iterable, Iterator

import dagster as dg

from actor_pipeline.defs.assets.portrait import normalized_portrait
from actor_pipeline.defs.assets.prompts import prompt_set
from actor_pipeline.defs.assets.reporting import RunTally, journal_records, link, preview, quality_table, unfinished_shot
from actor_pipeline.defs.liveness import process_tags
from actor_pipeline.defs.partitions import CATALOG, image_key, image_partitions, shots_by_actor
from actor_pipeline.defs.resources import DebugResource, ImageGeneratorResource, StorageResource
from actor_pipeline.errors import Interrupted
from actor_pipeline.generation import stopping
from actor_pipeline.generation.runner import ShotOutcome
from actor_pipeline.stages import generate_stage
from actor_pipeline.storage.base import Storage

FAILED_SHOTS_KEY = "failed_shots"


def only_shots_failed(step_failures: Iterable[dg.DagsterEvent]) -> bool:
    """True when every step failure is ``training_image`` reporting failed shots, not a crash."""
    failures = [event.step_failure_data for event in step_failures]
    return bool(failures) and all(
        f is not None and f.user_failure_data is not None and FAILED_SHOTS_KEY in f.user_failure_data.metadata
        for f in failures
    )


class TrainingImageConfig(dg.Config):
    force: bool = False  # regenerate even when an identical image already exists


@dg.asset(
    partitions_def=image_partitions,
    deps=[normalized_portrait, prompt_set],
    # One run makes all of an actor's shots concurrently; each shot still reports its own status.
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="replicate",
    output_required=False,
    group_name="training_set",
    kinds={"image"},
)
def training_image(
    context: dg.AssetExecutionContext,
    config: TrainingImageConfig,
    generator: ImageGeneratorResource,
    storage: StorageResource,
    debug: DebugResource,
) -> Iterator[dg.AssetMaterialization]:
    """One generated training image per (actor, shot). Succeeded shots are materialized one by one;
    failed shots make the step fail at the end, leaving only them FAILED for a rerun."""
    # A run worker killed without a word leaves the run STARTED: name its process, so the
    # orphaned_runs sensor can tell (see liveness).
    context.instance.add_run_tags(context.run.run_id, process_tags())
    backend = generator.create_backend(CATALOG)
    store = storage.create_storage()
    failed: list[str] = []
    tally = RunTally()
    try:
        for actor_id, shot_ids in shots_by_actor(context.partition_keys).items():
            context.log.info(f"{actor_id}: making {len(shot_ids)} shot(s) with {backend.name} ({backend.model})")
            before = journal_records(store, actor_id)  # what this run's cost is counted from
            outcomes = asyncio.run(
                generate_stage(
                    store,
                    backend,
                    actor_id,
                    shot_ids,
                    limits=generator.limits(),
                    maker=f"Dagster run {context.run.run_id[:8]}",
                    force=config.force,
                    debug=debug.writer(),
                    quality=generator.quality(),
                    lease_wait_s=generator.lease_wait_s,
                )
            )
            tally.add(before, outcomes)
            for outcome in outcomes:
                record = outcome.record
                partition = image_key(actor_id, record.shot_id)
                if outcome.succeeded:
                    yield _materialization(context.asset_key, partition, outcome, store)
                else:
                    context.log_event(unfinished_shot(context.asset_key, partition, record))
                    failed.append(f"{partition} ({record.status.value}: {record.error})")
            if (signum := stopping.requested()) is not None:
                raise Interrupted(signum)
    finally:
        # Tagged even when the run is cut short: what it made and paid for stays shown.
        if tally.actors:
            context.instance.add_run_tags(context.run.run_id, tally.tags())
    if failed:
        raise dg.Failure(
            description=f"{len(failed)} shot(s) failed; rerun these partitions to retry only them: " + "; ".join(failed),
            metadata={FAILED_SHOTS_KEY: dg.MetadataValue.json(failed)},
            allow_retries=False,
        )


def _materialization(
    asset_key: dg.AssetKey, partition: str, outcome: ShotOutcome, storage: Storage
) -> dg.AssetMaterialization:
    record = outcome.record
    assert record.image is not None
    return dg.AssetMaterialization(
        asset_key=asset_key,
        partition=partition,
        metadata={
            **preview(storage, record.image.key, f"{record.index:02d} {record.shot_id}"),
            **link(storage.url(record.image.key)),
            "prompt": record.prompt,
            "seed": record.seed,
            "sha256": record.image.sha256,
            "size": f"{record.image.width}x{record.image.height}",
            "backend": record.backend,
            "model": record.model,
            "prediction_id": record.prediction_id or "",
            "reused": outcome.reused,
            "attempts": record.attempts,
            "cost_usd": record.usage.cost_usd,
            "duration_s": record.duration_s or 0.0,
            # Per shot on its own partition: AssetCheckResult carries no partition in Dagster 1.13,
            # and one run makes a range of shots.
            "qc": record.qc,
            "qc_regenerations": record.regenerations,
            "quality": dg.MetadataValue.md(quality_table(record)),
        },
    )

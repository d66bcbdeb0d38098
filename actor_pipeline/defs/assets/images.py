import asyncio
import logging
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import dagster as dg
from pydantic import Field

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.defs.assets.bundle import LoraBundleConfig, bundle_metadata, lora_bundle
from actor_pipeline.defs.assets.grid import debug_grid, grid_metadata
from actor_pipeline.defs.assets.manifest import manifest_metadata, training_manifest
from actor_pipeline.defs.assets.portrait import NewActorConfig, normalized_portrait, prepare_portrait
from actor_pipeline.defs.assets.prompts import prompt_set, prompts_metadata
from actor_pipeline.defs.assets.reporting import (
    RunTally,
    link,
    quality_table,
    shot_preview,
    systemic_lines,
    unfinished_shot,
)
from actor_pipeline.defs.assets.training import TrainLoraConfig, train_and_validate
from actor_pipeline.defs.failures import FAILED_SHOTS_KEY
from actor_pipeline.defs.follow_up import name_on_the_run_it_follows
from actor_pipeline.defs.liveness import process_tags
from actor_pipeline.defs.partitions import CATALOG, image_key, image_partitions, shots_by_actor
from actor_pipeline.defs.resources import DebugResource, ImageGeneratorResource, StorageResource, TrainerResource
from actor_pipeline.errors import Interrupted
from actor_pipeline.generation import stopping
from actor_pipeline.generation.runner import ShotOutcome
from actor_pipeline.generation.types import ImageBackend
from actor_pipeline.outputs.thumbnails import shot_alt
from actor_pipeline.stages import generate_stage, grid_stage, manifest_stage
from actor_pipeline.storage.base import Storage

# The CLI shows this logger's lines as progress (a run's own log is kept quiet there).
log = logging.getLogger(__name__)


class TrainingImageConfig(dg.Config):
    """What the run does besides making its shots: the inbox, the CLI and the Python API make an
    actor's whole set in one run (``start`` and ``finish``), one run launch instead of three; the
    inbox's run also trains the LoRA when the sidecar asks (``train``)."""

    force: bool = Field(False, description="regenerate even when an identical image already exists")
    start: NewActorConfig | None = Field(
        None,
        description="first start the run's one actor from this portrait (normalized_portrait and prompt_set); "
        "an empty portrait re-normalizes a registered actor's",
    )
    finish: LoraBundleConfig | None = Field(
        None, description="then draw the contact sheet, zip the bundle (with this config) and write the manifest"
    )
    train: TrainLoraConfig | None = Field(
        None,
        description="last train the LoRA of each actor whose set is complete and measure its likeness "
        "(trained_lora and lora_validation, with this config); needs finish",
    )


def image_run_config(
    *,
    start: Mapping[str, Any] | None = None,
    finish: Mapping[str, Any] | None = None,
    train: Mapping[str, Any] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """The run config of a ``training_image`` run: ``start`` its one actor first (a
    ``NewActorConfig``; empty for a registered actor), ``finish`` the set after its shots
    (a ``LoraBundleConfig``; empty for the default trigger word and layout), and ``train`` its
    LoRA last (a ``TrainLoraConfig``; empty to reuse a LoRA trained on the same bundle)."""
    config: dict[str, Any] = {"force": force}
    for name, value in (("start", start), ("finish", finish), ("train", train)):
        if value is not None:
            config[name] = dict(value)
    return {"ops": {training_image.op.name: {"config": config}}}


def finishes_itself(run_config: Mapping[str, Any]) -> bool:
    """A run of ``training_image`` with ``finish`` set made its actors' grid, bundle and manifest."""
    return run_config.get("ops", {}).get(training_image.op.name, {}).get("config", {}).get("finish") is not None


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
    trainer: TrainerResource,
) -> Iterator[dg.AssetMaterialization]:
    """One generated training image per (actor, shot). Succeeded shots are materialized one by one;
    failed shots make the step fail at the end, leaving only them FAILED for a rerun. A failed
    training (``train``) fails it at the end too, leaving the set it trains from as it is."""
    # A run worker killed without a word leaves the run STARTED: name its process, so the
    # orphaned_runs sensor can tell (see liveness).
    context.instance.add_run_tags(context.run.run_id, process_tags())
    name_on_the_run_it_follows(context.instance, context.run)
    backend = generator.create_backend(CATALOG)
    store = storage.create_storage()
    actors = shots_by_actor(context.partition_keys)
    if config.train is not None and config.finish is None:
        raise dg.Failure("train: the LoRA is trained from the bundle the run zips: set finish too", allow_retries=False)
    if config.start is not None:
        if len(actors) != 1:
            raise dg.Failure(f"start: the run covers {len(actors)} actors; a run that starts one covers its shots only")
        (actor_id,) = actors
        started, metadata = prepare_portrait(context.instance, storage, store, actor_id, config.start)
        context.log_event(dg.AssetMaterialization(normalized_portrait.key, partition=actor_id, metadata=metadata))
        metadata = prompts_metadata(started, started.plan_prompts(CATALOG))
        context.log_event(dg.AssetMaterialization(prompt_set.key, partition=actor_id, metadata=metadata))
        contexts = {actor_id: started}
    else:
        contexts = {actor_id: ActorContext.load(store, actor_id) for actor_id in actors}
    failed: list[str] = []
    problems: list[str] = []  # the LoRAs not trained: made last, so the run fails at its end
    tally = RunTally()
    spending = generator.spending()  # one cap for the whole run, over its actors
    try:
        for actor_id, shot_ids in actors.items():
            actor = contexts[actor_id]
            context.log.info(f"{actor_id}: making {len(shot_ids)} shot(s) with {backend.name} ({backend.model})")
            before = actor.records()  # what this run's cost is counted from
            outcomes = asyncio.run(
                generate_stage(
                    actor,
                    backend,
                    shot_ids,
                    limits=generator.limits(),
                    maker=f"Dagster run {context.run.run_id[:8]}",
                    force=config.force,
                    debug=debug.writer(),
                    quality=generator.quality(),
                    lease_wait_s=generator.lease_wait_s,
                    spending=spending,
                )
            )
            tally.add(before, outcomes)
            for line in systemic_lines(actor) if generator.quality() else []:
                context.log.warning(f"{actor_id}: {line}")
            with ThreadPoolExecutor() as pool:  # the thumbnails: Pillow encodes without the GIL
                events = list(pool.map(partial(_report, context.asset_key, actor_id, store), outcomes))
            for outcome, event in zip(outcomes, events, strict=True):
                if isinstance(event, dg.AssetMaterialization):
                    yield event
                else:
                    context.log_event(event)
                    failed.append(f"{event.partition} ({outcome.record.status.value}: {outcome.record.error})")
            if (signum := stopping.requested()) is not None:
                raise Interrupted(signum)
            if config.finish is not None:
                for event in _finish(actor, backend, debug, config.finish, tally):
                    context.log_event(event)
            if config.train is not None:
                gaps = sum(not outcome.succeeded for outcome in outcomes)
                # As `generate --train`: a LoRA trained on a set with gaps would be paid for again once they are made.
                problem = (
                    f"{actor_id}: the LoRA was not trained, {gaps} shot(s) not made (once they are: "
                    f"`actor-pipeline train --actor-id {actor_id}`)"
                    if gaps
                    else train_and_validate(context, actor, trainer, config.train)
                )
                if problem:
                    problems.append(problem)
    finally:
        # Tagged even when the run is cut short: what it made and paid for stays shown.
        if tally.actors:
            context.instance.add_run_tags(context.run.run_id, tally.tags())
    if failed:
        shots = "; ".join(failed)
        problems.insert(0, f"{len(failed)} shot(s) failed; rerun these partitions to retry only them: {shots}")
    if problems:
        raise dg.Failure(
            description="; ".join(problems),
            metadata={FAILED_SHOTS_KEY: dg.MetadataValue.json(failed)} if failed else {},
            allow_retries=False,
        )


def _finish(
    actor: ActorContext,
    backend: ImageBackend,
    debug: DebugResource,
    bundle_config: LoraBundleConfig,
    tally: RunTally,
) -> Iterator[dg.AssetMaterialization]:
    """The actor's contact sheet, bundle and manifest, failed shots included, as the
    ``finish_training_set`` job makes them; the manifest goes to ``tally``."""
    actor_id = actor.actor_id
    log.info("%s: drawing the contact sheet, zipping the LoRA bundle and writing the manifest", actor_id)
    grid = grid_metadata(actor.storage, grid_stage(actor, debug.writer()), actor_id)
    yield dg.AssetMaterialization(debug_grid.key, partition=actor_id, metadata=grid)
    bundle = bundle_metadata(bundle_config.make(actor))
    yield dg.AssetMaterialization(lora_bundle.key, partition=actor_id, metadata=bundle)
    manifest, url = manifest_stage(actor, (backend.name, backend.model))
    tally.finished.append(manifest)
    yield dg.AssetMaterialization(training_manifest.key, partition=actor_id, metadata=manifest_metadata(manifest, url))


def _report(
    asset_key: dg.AssetKey, actor_id: str, storage: Storage, outcome: ShotOutcome
) -> dg.AssetMaterialization | dg.AssetObservation:
    """A made shot's materialization, or the state of one that was not made."""
    record = outcome.record
    partition = image_key(actor_id, record.shot_id)
    if not outcome.succeeded:
        return unfinished_shot(asset_key, partition, record)
    assert record.image is not None
    return dg.AssetMaterialization(
        asset_key=asset_key,
        partition=partition,
        metadata={
            **shot_preview(storage, record.image, shot_alt(record.index, record.shot_id)),
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

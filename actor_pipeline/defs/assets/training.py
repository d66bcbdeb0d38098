"""The actor's trained LoRA and its validation: opt-in assets (no automation condition), made
only when asked for (``actor-pipeline train``, ``generate --train``, an inbox sidecar's
``"train": true``, or the Launchpad)."""

from functools import partial

import dagster as dg
from pydantic import Field

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.defs.assets.bundle import lora_bundle
from actor_pipeline.defs.assets.manifest import manifest_metadata, training_manifest
from actor_pipeline.defs.assets.reporting import Metadata, link, preview
from actor_pipeline.defs.partitions import actors_partitions
from actor_pipeline.defs.resources import StorageResource, TrainerResource
from actor_pipeline.errors import Interrupted, PipelineError
from actor_pipeline.outputs.manifest import Manifest
from actor_pipeline.stages import train_stage, validation_stage
from actor_pipeline.training import Likeness, TrainingRecord
from actor_pipeline.training.train import Maker

TRAINING_ID_TAG = "actor_pipeline/training_id"
TRAINING_COST_TAG = "actor_pipeline/training_cost_usd"  # paid by this run: 0 when reused
TRAINING_REUSED_TAG = "actor_pipeline/training_reused"
LIKENESS_TAG = "actor_pipeline/likeness_median_distance"
LIKENESS_PASSED_TAG = "actor_pipeline/likeness_passed"  # "passed/measured"


class TrainLoraConfig(dg.Config):
    retrain: bool = Field(
        False, description="train again even when this bundle and config were trained already (pays again)"
    )


@dg.asset(partitions_def=actors_partitions, deps=[lora_bundle], group_name="lora", kinds={"replicate"})
def trained_lora(
    context: dg.AssetExecutionContext, config: TrainLoraConfig, storage: StorageResource, trainer: TrainerResource
) -> dg.MaterializeResult:
    """The actor's LoRA, trained on Replicate from its bundle (once per bundle and config; asking
    again reuses it), with its cost, model version and weights URL."""
    actor = ActorContext.load(storage.create_storage(), context.partition_key)
    return dg.MaterializeResult(metadata=make_trained_lora(context, actor, trainer, config))


@dg.asset(partitions_def=actors_partitions, deps=[trained_lora], group_name="lora", kinds={"replicate"})
def lora_validation(
    context: dg.AssetExecutionContext, storage: StorageResource, trainer: TrainerResource
) -> dg.MaterializeResult:
    """A few images made with the trained LoRA from held-out prompts, measured against the
    portrait: the likeness (median identity distance, how many pass) and a contact sheet."""
    actor = ActorContext.load(storage.create_storage(), context.partition_key)
    return dg.MaterializeResult(metadata=make_lora_validation(context, actor, trainer))


def make_trained_lora(
    context: dg.AssetExecutionContext, actor: ActorContext, trainer: TrainerResource, config: TrainLoraConfig
) -> Metadata:
    """Train (or reuse) the actor's LoRA, tagging the run with the training and reporting the
    manifest however it ends: ``trained_lora``'s metadata."""
    try:
        trained = train_stage(actor, trainer.create_trainer(actor), _maker(context, trainer), retrain=config.retrain)
    finally:
        _report_manifest(context, actor)
    record = trained.record
    context.instance.add_run_tags(context.run.run_id, _training_tags(record, trained.reused))
    return {**training_metadata(record), "reused": trained.reused}


def make_lora_validation(context: dg.AssetExecutionContext, actor: ActorContext, trainer: TrainerResource) -> Metadata:
    """Measure the likeness of the actor's latest LoRA, tagging the run with it and reporting the
    manifest however it ends: ``lora_validation``'s metadata."""
    try:
        likeness = validation_stage(
            actor, trainer.create_trainer(actor), _maker(context, trainer), identity=trainer.identity_check
        )
    finally:
        _report_manifest(context, actor)
    context.instance.add_run_tags(context.run.run_id, _likeness_tags(likeness))
    return likeness_metadata(actor, likeness)


def _maker(context: dg.AssetExecutionContext, trainer: TrainerResource) -> Maker:
    return Maker(f"Dagster run {context.run.run_id[:8]}", trainer.lease_wait_s, context.log.info)


def train_and_validate(
    context: dg.AssetExecutionContext, actor: ActorContext, trainer: TrainerResource, config: TrainLoraConfig
) -> str | None:
    """``trained_lora`` then ``lora_validation`` within another asset's run (``training_image``
    after it finished the set), logged as their materializations. A failure leaves what the run
    made as it is: it is observed on the asset it failed on and returned as one line, for the run
    to fail with at its end; a stop still stops the run."""
    steps = (
        (trained_lora.key, partial(make_trained_lora, context, actor, trainer, config)),
        (lora_validation.key, partial(make_lora_validation, context, actor, trainer)),
    )
    for key, make in steps:
        try:
            metadata = make()
        except Interrupted:
            raise
        except PipelineError as exc:
            context.log_event(dg.AssetObservation(key, partition=actor.actor_id, metadata={"error": str(exc)}))
            return f"{actor.actor_id}: {key.to_user_string()} failed: {exc}"
        context.log_event(dg.AssetMaterialization(key, partition=actor.actor_id, metadata=metadata))
    return None


def training_metadata(record: TrainingRecord) -> Metadata:
    return {
        "status": record.status.value,
        "trainer": f"{record.trainer}:{record.trainer_version[:12]}",
        "training_id": record.training_id or "",
        "model_version": record.model_version or "",
        "weights_url": dg.MetadataValue.url(record.weights_url) if record.weights_url else "",
        "trigger": record.trigger,
        "bundle_images": record.bundle_images,
        "bundle_sha256": record.bundle_sha256,
        "cost_usd": record.cost_usd,
        "duration_s": record.duration_s or 0.0,
        "config": dg.MetadataValue.json(record.config),
    }


def likeness_metadata(actor: ActorContext, likeness: Likeness) -> Metadata:
    storage = actor.storage
    sheet = preview(storage, actor.layout.validation_sheet, "validation sheet") if likeness.sheet_key else {}
    return {
        **sheet,
        **(link(storage.url(likeness.sheet_key)) if likeness.sheet_key else {}),
        "likeness": likeness.summary(),
        "median_identity_distance": likeness.median_distance if likeness.median_distance is not None else "not measured",
        "passed": likeness.passed,
        "measured": likeness.measured,
        "images": len(likeness.images),
        "max_distance": likeness.max_distance,
        "training_id": likeness.training_id,
        "cost_usd": likeness.cost_usd,
        "prompts": dg.MetadataValue.json([image.model_dump() for image in likeness.images]),
    }


def _report_manifest(context: dg.AssetExecutionContext, actor: ActorContext) -> None:
    """The manifest the stage rewrote, as a materialization of ``training_manifest``."""
    storage, key = actor.storage, actor.layout.manifest
    try:
        manifest = Manifest.model_validate_json(storage.get(key))
    except FileNotFoundError:
        return
    metadata = manifest_metadata(manifest, storage.url(key))
    context.log_event(dg.AssetMaterialization(training_manifest.key, partition=actor.actor_id, metadata=metadata))


def _training_tags(record: TrainingRecord, reused: bool) -> dict[str, str]:
    return {
        TRAINING_ID_TAG: record.training_id or "",
        TRAINING_COST_TAG: f"{0.0 if reused else record.cost_usd:.4f}",
        TRAINING_REUSED_TAG: str(reused).lower(),
    }


def _likeness_tags(likeness: Likeness) -> dict[str, str]:
    median = f"{likeness.median_distance:.3f}" if likeness.median_distance is not None else "not measured"
    return {
        LIKENESS_TAG: median,
        LIKENESS_PASSED_TAG: f"{likeness.passed}/{likeness.measured}",
    }

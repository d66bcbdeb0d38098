from dataclasses import asdict

import dagster as dg

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.defs.assets.bundle import lora_bundle
from actor_pipeline.defs.assets.grid import ALL_SHOTS, debug_grid
from actor_pipeline.defs.assets.reporting import Metadata, link, usable_tags
from actor_pipeline.defs.partitions import CATALOG, actors_partitions
from actor_pipeline.defs.resources import ImageGeneratorResource, StorageResource
from actor_pipeline.outputs.manifest import Manifest
from actor_pipeline.stages import manifest_stage


@dg.asset(
    partitions_def=actors_partitions,
    deps=[ALL_SHOTS, debug_grid, lora_bundle],
    group_name="training_set",
    kinds={"json"},
)
def training_manifest(
    context: dg.AssetExecutionContext, storage: StorageResource, generator: ImageGeneratorResource
) -> dg.MaterializeResult:
    """The set's manifest (JSON), written last so it never lists an image that is not stored."""
    backend = generator.create_backend(CATALOG)
    actor = ActorContext.load(storage.create_storage(), context.partition_key)
    manifest, url = manifest_stage(actor, (backend.name, backend.model))
    context.instance.add_run_tags(context.run.run_id, usable_tags([manifest]))
    return dg.MaterializeResult(metadata=manifest_metadata(manifest, url))


def manifest_metadata(manifest: Manifest, url: str) -> Metadata:
    return {
        **link(url),
        "generated": manifest.totals.generated,
        "target": manifest.totals.target,
        "failed": dg.MetadataValue.json([f.model_dump() for f in manifest.failed]),
        "bundle_url": manifest.bundle.url if manifest.bundle else "none yet",
        **asdict(manifest.ledger),  # cost_usd and the predictions created, succeeded, failed, canceled
        "qc_passed": manifest.quality.passed,
        "qc_failed": manifest.quality.failed,
        "bundle_images": manifest.totals.usable,
        "cost_per_usable_image_usd": manifest.totals.cost_per_usable_image_usd,
        "systemic": "\n".join(found.message for found in manifest.quality.systemic) or "none",
        **lora_metadata(manifest),
    }


def lora_metadata(manifest: Manifest) -> Metadata:
    """The manifest's ``lora`` section: the trained LoRA, what trainings cost, its likeness."""
    lora = manifest.lora
    if lora is None:
        return {"lora": "not trained (actor-pipeline train)"}
    likeness = lora.likeness
    return {
        "lora": f"{lora.status}: {lora.model_version or lora.error}",
        "lora_weights_url": lora.weights_url or "",
        "lora_trainings_cost_usd": lora.trainings_cost_usd,
        "lora_validation_cost_usd": lora.validation_cost_usd,
        "total_cost_usd": manifest.total_cost_usd,  # images, trainings and validation images
        "lora_likeness": (
            f"{likeness.passed}/{likeness.measured} within {likeness.max_distance:g}, median "
            f"{likeness.median_distance if likeness.median_distance is not None else 'not measured'}"
            if likeness
            else "not validated"
        ),
    }

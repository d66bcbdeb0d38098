from enum import Enum

import dagster as dg
from pydantic import Field

from actor_pipeline.defs.assets.grid import PER_ACTOR
from actor_pipeline.defs.assets.images import training_image
from actor_pipeline.defs.assets.reporting import link
from actor_pipeline.defs.partitions import CATALOG, actors_partitions
from actor_pipeline.defs.resources import StorageResource
from actor_pipeline.outputs.bundle import DEFAULT_KOHYA_REPEATS, DEFAULT_TRIGGER, Layout
from actor_pipeline.stages import bundle_stage


# Dagster's config takes an enum by member name: these names are the layouts' own.
LayoutChoice = Enum("LayoutChoice", {layout.value: layout.value for layout in Layout}, type=str)  # type: ignore[misc]


class LoraBundleConfig(dg.Config):
    trigger: str = Field(DEFAULT_TRIGGER, description="the trigger word every caption starts with")
    layout: LayoutChoice = Field(  # type: ignore[valid-type]
        LayoutChoice.flat,  # type: ignore[attr-defined]
        description="flat: NN.jpg + NN.txt (Replicate, ai-toolkit, fal); kohya: <repeats>_<trigger> <class>/",
    )
    repeats: int = Field(DEFAULT_KOHYA_REPEATS, ge=1, description="kohya layout: repeats per image")


@dg.asset(
    partitions_def=actors_partitions,
    deps=[dg.AssetDep(training_image, partition_mapping=PER_ACTOR)],
    group_name="training_set",
    kinds={"zip"},
)
def lora_bundle(context: dg.AssetExecutionContext, config: LoraBundleConfig, storage: StorageResource) -> dg.MaterializeResult:
    """The set as a LoRA trainer takes it: a zip of the made images with one caption file each
    (trigger word, class, and what varies), and what was left out and why."""
    info = bundle_stage(
        storage.create_storage(),
        CATALOG,
        context.partition_key,
        trigger=config.trigger,
        layout=Layout(config.layout.value),
        repeats=config.repeats,
    )
    if info is None:
        return dg.MaterializeResult(metadata={"images": 0, "note": "no image is made yet: nothing to bundle"})
    report = info.report
    return dg.MaterializeResult(
        metadata={
            **link(info.url),
            "images": len(report.images),
            "layout": report.layout.value,
            "trigger": report.trigger,
            "left_out": dg.MetadataValue.json([entry.model_dump() for entry in report.left_out]),
            **({"warning": report.warning} if report.warning else {}),
        }
    )

from enum import Enum

import dagster as dg
from pydantic import Field

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.defs.assets.grid import ALL_SHOTS
from actor_pipeline.defs.assets.reporting import Metadata, link
from actor_pipeline.defs.partitions import CATALOG, actors_partitions
from actor_pipeline.defs.resources import StorageResource
from actor_pipeline.outputs.bundle import COMMON_MINIMUM, DEFAULT_KOHYA_REPEATS, DEFAULT_TRIGGER, Layout
from actor_pipeline.outputs.manifest import BundleInfo
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
    min_images: int = Field(
        COMMON_MINIMUM,
        ge=1,
        description="the fewest images a usable bundle holds (at most every shot): fewer is warned of, and the "
        "CLI exits 1",
    )

    def make(self, actor: ActorContext) -> BundleInfo | None:
        """Zip the actor's bundle with this trigger word and layout."""
        return bundle_stage(
            actor,
            CATALOG,
            trigger=self.trigger,
            layout=Layout(self.layout.value),
            repeats=self.repeats,
            minimum=self.min_images,
        )


@dg.asset(
    partitions_def=actors_partitions,
    deps=[ALL_SHOTS],
    group_name="training_set",
    kinds={"zip"},
)
def lora_bundle(context: dg.AssetExecutionContext, config: LoraBundleConfig, storage: StorageResource) -> dg.MaterializeResult:
    """The set as a LoRA trainer takes it: a zip of the made images with one caption file each
    (trigger word, class, and what varies), and what was left out and why."""
    actor = ActorContext.load(storage.create_storage(), context.partition_key)
    return dg.MaterializeResult(metadata=bundle_metadata(config.make(actor)))


def bundle_metadata(info: BundleInfo | None) -> Metadata:
    if info is None:
        return {"images": 0, "note": "no image is made yet: nothing to bundle"}
    report = info.report
    return {
        **link(info.url),
        "images": len(report.images),
        "layout": report.layout.value,
        "trigger": report.trigger,
        "minimum": report.minimum,
        "left_out": dg.MetadataValue.json([entry.model_dump() for entry in report.left_out]),
        **({"warning": report.warning} if report.warning else {}),
    }

import dagster as dg

from actor_pipeline.catalog.prompts import PromptSet
from actor_pipeline.defs.assets.reporting import Metadata
from actor_pipeline.defs.partitions import CATALOG, actors_partitions
from actor_pipeline.defs.resources import StorageResource
from actor_pipeline.stages import prompt_stage


@dg.asset(partitions_def=actors_partitions, group_name="training_set", kinds={"json"})
def prompt_set(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
    """One prompt and seed per catalog shot, worded for the actor's descriptor."""
    return dg.MaterializeResult(metadata=prompts_metadata(prompt_stage(storage.create_storage(), CATALOG, context.partition_key)))


def prompts_metadata(prompts: PromptSet) -> Metadata:
    table = "\n".join(
        ["| # | shot | category | seed | prompt |", "|---|---|---|---|---|"]
        + [f"| {s.index} | {s.shot_id} | {s.category.value} | {s.seed} | {s.prompt} |" for s in prompts.shots]
    )
    return {
        "descriptor": prompts.descriptor,
        "shots": len(prompts.shots),
        "seed_variant": prompts.variant,
        "catalog": prompts.catalog,
        "prompts": dg.MetadataValue.md(table),
    }

import dagster as dg

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.catalog.prompts import PromptSet
from actor_pipeline.defs.assets.portrait import normalized_portrait
from actor_pipeline.defs.assets.reporting import Metadata, link
from actor_pipeline.defs.partitions import CATALOG, actors_partitions
from actor_pipeline.defs.resources import StorageResource


# After the portrait: it reads the registration that normalized_portrait writes for a new actor,
# and is skipped, not failed a second time, when the portrait fails.
@dg.asset(partitions_def=actors_partitions, deps=[normalized_portrait], group_name="training_set", kinds={"json"})
def prompt_set(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
    """One prompt and seed per catalog shot, worded for the actor's descriptor."""
    actor = ActorContext.load(storage.create_storage(), context.partition_key)
    return dg.MaterializeResult(metadata=prompts_metadata(actor, actor.plan_prompts(CATALOG)))


def prompts_metadata(actor: ActorContext, prompts: PromptSet) -> Metadata:
    """What the set was planned with. The prompts themselves are on each shot's partition and in
    the linked file, not repeated here (each would cost the event log 3.6 KB per actor again)."""
    return {
        **link(actor.storage.url(actor.layout.prompt_set)),
        "descriptor": prompts.descriptor,
        "shots": len(prompts.shots),
        "seed_variant": prompts.variant,
        "catalog": prompts.catalog,
    }

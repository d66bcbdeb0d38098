import dagster as dg

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.defs.assets.reporting import Metadata, link, preview
from actor_pipeline.defs.partitions import ACTOR_DIMENSION, actors_partitions
from actor_pipeline.defs.resources import DebugResource, StorageResource
from actor_pipeline.outputs.manifest import GridInfo
from actor_pipeline.outputs.thumbnails import sheet_markdown
from actor_pipeline.stages import grid_stage
from actor_pipeline.storage.base import Storage

PER_ACTOR = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=ACTOR_DIMENSION)
# By key: training_image's module reports these per-actor assets when one run makes a whole set.
ALL_SHOTS = dg.AssetDep("training_image", partition_mapping=PER_ACTOR)


@dg.asset(
    partitions_def=actors_partitions,
    deps=[ALL_SHOTS],
    group_name="training_set",
    kinds={"image"},
)
def debug_grid(context: dg.AssetExecutionContext, storage: StorageResource, debug: DebugResource) -> dg.MaterializeResult:
    """A labeled contact sheet: the portrait, then every shot; failed shots as placeholders."""
    actor = ActorContext.load(storage.create_storage(), context.partition_key)
    return dg.MaterializeResult(metadata=grid_metadata(actor.storage, grid_stage(actor, debug.writer()), actor.actor_id))


def grid_metadata(storage: Storage, grid: GridInfo, actor_id: str) -> Metadata:
    return {
        **preview(storage, grid.key, f"{actor_id} (contact sheet)", sheet_markdown),
        **link(grid.url),
        "key": grid.key,
    }

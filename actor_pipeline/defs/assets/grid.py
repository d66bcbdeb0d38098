import dagster as dg

from actor_pipeline.defs.assets.images import training_image
from actor_pipeline.defs.assets.reporting import link, preview
from actor_pipeline.defs.partitions import ACTOR_DIMENSION, actors_partitions
from actor_pipeline.defs.resources import DebugResource, StorageResource
from actor_pipeline.outputs.thumbnails import sheet_markdown
from actor_pipeline.stages import grid_stage

PER_ACTOR = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=ACTOR_DIMENSION)


@dg.asset(
    partitions_def=actors_partitions,
    deps=[dg.AssetDep(training_image, partition_mapping=PER_ACTOR)],
    group_name="training_set",
    kinds={"image"},
)
def debug_grid(context: dg.AssetExecutionContext, storage: StorageResource, debug: DebugResource) -> dg.MaterializeResult:
    """A labeled contact sheet: the portrait, then every shot; failed shots as placeholders."""
    store = storage.create_storage()
    grid = grid_stage(store, context.partition_key, debug.writer())
    return dg.MaterializeResult(
        metadata={
            **preview(store, grid.key, f"{context.partition_key} (contact sheet)", sheet_markdown),
            **link(grid.url),
            "key": grid.key,
        }
    )

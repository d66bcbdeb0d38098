import dagster as dg

from actor_pipeline.defs.partitions import actors_partitions
from actor_pipeline.defs.resources import StorageResource
from actor_pipeline.stages import normalize_stage


@dg.asset(partitions_def=actors_partitions, group_name="training_set", kinds={"image"})
def normalized_portrait(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
    """The actor's portrait as an upright RGB JPEG: the input image of every shot."""
    info = normalize_stage(storage.create_storage(), context.partition_key)
    return dg.MaterializeResult(
        metadata={
            "url": dg.MetadataValue.url(info.url),
            "sha256": info.sha256,
            "bytes": info.bytes,
            "size": f"{info.width}x{info.height}",
            "source": info.source,
        }
    )

"""Partitions: one dynamic key per actor, one static key per catalog shot."""

import dagster as dg

from actor_pipeline.catalog.model import load_catalog

# Loaded once per code location: the catalog's shot ids are the static partition keys.
CATALOG = load_catalog()

ACTOR_DIMENSION = "actor"
SHOT_DIMENSION = "shot"

actors_partitions = dg.DynamicPartitionsDefinition(name="actors")
shots_partitions = dg.StaticPartitionsDefinition(CATALOG.ids)
image_partitions = dg.MultiPartitionsDefinition({ACTOR_DIMENSION: actors_partitions, SHOT_DIMENSION: shots_partitions})


def image_key(actor_id: str, shot_id: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({ACTOR_DIMENSION: actor_id, SHOT_DIMENSION: shot_id})


def shots_by_actor(keys: list[str]) -> dict[str, list[str]]:
    """Group a run's ``training_image`` partition keys by actor, in catalog order."""
    grouped: dict[str, set[str]] = {}
    for key in keys:
        dims = image_partitions.get_partition_key_from_str(key).keys_by_dimension
        grouped.setdefault(dims[ACTOR_DIMENSION], set()).add(dims[SHOT_DIMENSION])
    return {actor: [s for s in CATALOG.ids if s in shots] for actor, shots in grouped.items()}


def shot_range(actor_id: str, first_shot: str, last_shot: str) -> dict[str, str]:
    """Run tags that select the shots ``first_shot``..``last_shot`` (catalog order) of one actor
    as a single partition range."""
    return {
        "dagster/asset_partition_range_start": str(image_key(actor_id, first_shot)),
        "dagster/asset_partition_range_end": str(image_key(actor_id, last_shot)),
    }


def actor_image_range(actor_id: str) -> dict[str, str]:
    """Run tags that select every shot of one actor as a single partition range."""
    return shot_range(actor_id, CATALOG.ids[0], CATALOG.ids[-1])

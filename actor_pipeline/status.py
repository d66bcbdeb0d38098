"""Per-shot status of an actor: what storage records say, and what Dagster's partitions say."""

from typing import Any

import dagster as dg

from actor_pipeline.defs.partitions import CATALOG, actors_partitions, image_key, image_partitions
from actor_pipeline.defs.resources import PipelineSettings
from actor_pipeline.generation.records import load_record
from actor_pipeline.orchestrate import open_instance
from actor_pipeline.registry import load_registration


def actor_status(actor_id: str, *, storage_backend: str = "auto", output_dir: str = "output") -> list[dict[str, Any]]:
    settings = PipelineSettings(storage=storage_backend, output_dir=output_dir)
    storage = settings.resources()["storage"].create_storage()
    layout = load_registration(storage, actor_id).layout
    instance = open_instance(output_dir)
    keys = [image_key(actor_id, shot.id) for shot in CATALOG.shots]
    partition_status: dict[str, dg.AssetPartitionStatus | None] = {}
    if instance.has_dynamic_partition(actors_partitions.name, actor_id):
        found = instance.get_status_by_partition(dg.AssetKey("training_image"), [str(k) for k in keys], image_partitions)
        partition_status = dict(found or {})
    rows = []
    for shot, key in zip(CATALOG.shots, keys, strict=True):
        record = load_record(storage, layout, shot.id)
        dagster_status = partition_status.get(str(key))
        rows.append(
            {
                "index": shot.index,
                "shot_id": shot.id,
                "label": shot.label,
                "category": shot.category.value,
                "status": record.status.value if record else "not generated",
                "partition": dagster_status.value.lower() if dagster_status else "never run",
                "attempts": record.attempts if record else 0,
                "cost_usd": record.usage.cost_usd if record else 0.0,
                "error": record.error if record else None,
            }
        )
    return rows


def format_status(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'#':>2}  {'shot':<22} {'status':<16} {'partition':<13} {'tries':>5} {'cost':>7}  error"]
    for row in rows:
        lines.append(
            f"{row['index']:>2}  {row['shot_id']:<22} {row['status']:<16} {row['partition']:<13} "
            f"{row['attempts']:>5} {row['cost_usd']:>7.2f}  {row['error'] or ''}"
        )
    return "\n".join(lines)

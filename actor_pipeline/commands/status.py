"""Per-shot status of an actor: what its shot journal says, and what Dagster's partitions say."""

from typing import Any

import dagster as dg

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.commands.instance import open_instance
from actor_pipeline.defs.partitions import actors_partitions, image_key, image_partitions
from actor_pipeline.defs.settings import PipelineSettings
from actor_pipeline.generation.types import ShotStatus
from actor_pipeline.storage.lease import current_holder
from actor_pipeline.unfinished import INTERRUPTED


def actor_status(actor_id: str, settings: PipelineSettings) -> list[dict[str, Any]]:
    actor = ActorContext.load(settings.storage.create_storage(), actor_id)
    storage, journal, prompt_set = actor.storage, actor.journal, actor.prompt_set
    being_made = current_holder(storage, actor_id) is not None
    instance = open_instance(settings.resolved_instance_dir)
    keys = [image_key(actor_id, shot.shot_id) for shot in prompt_set.shots]
    partition_status: dict[str, dg.AssetPartitionStatus | None] = {}
    if instance.has_dynamic_partition(actors_partitions.name, actor_id):
        found = instance.get_status_by_partition(dg.AssetKey("training_image"), [str(k) for k in keys], image_partitions)
        partition_status = dict(found or {})
    rows = []
    for shot, key in zip(prompt_set.shots, keys, strict=True):
        record = journal.load(shot)
        status = record.status.value if record else "not generated"
        if record and record.status is ShotStatus.IN_PROGRESS and not being_made:
            status = INTERRUPTED
        error = record.error if record else None
        if (unreadable := journal.unreadable_entry(shot.shot_id)) is not None:
            status = "unknown" if record is None else status
            error = (
                f"journal entry {unreadable} is unreadable: the next generate or retry-failed looks in Replicate's "
                "list of predictions before paying for the shot"
            )
        dagster_status = partition_status.get(str(key))
        rows.append(
            {
                "index": shot.index,
                "shot_id": shot.shot_id,
                "label": shot.label,
                "category": shot.category.value,
                "status": status,
                "step": record.attempt.step.value if record and record.attempt else None,
                "partition": dagster_status.value.lower() if dagster_status else "never run",
                "attempts": record.attempts if record else 0,
                "cost_usd": record.usage.cost_usd if record else 0.0,
                "error": error,
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
    made = sum(row["status"] == ShotStatus.SUCCEEDED.value for row in rows)
    interrupted = sum(row["status"] == INTERRUPTED for row in rows)
    summary = f"{made}/{len(rows)} shots made"
    if interrupted:
        summary += f"; {interrupted} interrupted: `actor-pipeline retry-failed` resumes them without paying twice"
    return "\n".join([*lines, summary])


def actor_figures(actor_id: str, settings: PipelineSettings) -> dict[str, Any]:
    """The shots not made and the ledger's cost, from the shot records alone (no Dagster): what a
    command that could not finish still reports."""
    actor = ActorContext.load(settings.storage.create_storage(), actor_id)
    records = {shot.shot_id: actor.journal.load(shot) for shot in actor.prompt_set.shots}
    return {
        "failed": [shot_id for shot_id, record in records.items() if not (record and record.made)],
        "cost_usd": round(sum(record.usage.cost_usd for record in records.values() if record), 6),
    }

"""Archiving old actors: their ``actors`` partition is removed from the Dagster instance, so the
actor list, the asset pages and every status query over all actors stop paying for them (Dagster
advises at most 100,000 partitions per asset: about 5,900 actors of 17 shots). Their files
(registration, images, records, manifest, bundle) and their event history are kept: ``status``
still reads them, and making the actor again (``generate``, the inbox) adds the partition back,
reusing every image already made."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from actor_pipeline.commands.instance import open_instance
from actor_pipeline.defs.partitions import actors_partitions
from actor_pipeline.defs.settings import PipelineSettings
from actor_pipeline.errors import InputError
from actor_pipeline.registry import load_registration
from actor_pipeline.storage.lease import current_holder


@dataclass(frozen=True)
class Archived:
    actor_id: str
    archived: bool
    reason: str  # why it was (or was not) archived


def archive_actors(
    settings: PipelineSettings,
    actor_ids: list[str] | None,
    older_than_days: float | None,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
) -> list[Archived]:
    """Archive ``actor_ids`` (default: every actor the instance lists) last registered more than
    ``older_than_days`` ago (default: whatever their age); never an actor being made."""
    if actor_ids is None and older_than_days is None:
        raise InputError("name the actors to archive (--actor-id) or their age (--older-than DAYS), or both")
    if older_than_days is not None and older_than_days < 0:
        raise InputError(f"--older-than must be 0 or more days, got {older_than_days}")
    storage = settings.storage.create_storage()
    instance = open_instance(settings.resolved_instance_dir)
    listed = instance.get_dynamic_partitions(actors_partitions.name)
    cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days or 0)
    results = []
    for actor_id in actor_ids if actor_ids is not None else listed:
        if actor_id not in listed:
            results.append(Archived(actor_id, False, "not listed by the Dagster instance (archived already?)"))
            continue
        if older_than_days is not None:
            try:
                registered = load_registration(storage, actor_id).registered_at
            except InputError as exc:  # its files are elsewhere or gone: left for a person to look at
                results.append(Archived(actor_id, False, str(exc)))
                continue
            if registered > cutoff:
                results.append(Archived(actor_id, False, f"registered {registered:%Y-%m-%d %H:%M} UTC, after the cutoff"))
                continue
        if (holder := current_holder(storage, actor_id)) is not None:
            results.append(Archived(actor_id, False, f"being made by {holder.describe()}"))
            continue
        if not dry_run:
            instance.delete_dynamic_partition(actors_partitions.name, actor_id)
        results.append(Archived(actor_id, True, "would be archived (dry run)" if dry_run else "partition removed"))
    return results

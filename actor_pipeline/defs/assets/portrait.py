from enum import Enum
from typing import Any

import dagster as dg
from pydantic import Field

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.catalog.descriptors import ACTOR_SEXES, ACTOR_TYPES
from actor_pipeline.defs.assets.reporting import Metadata, link, preview
from actor_pipeline.defs.partitions import actors_partitions
from actor_pipeline.defs.resources import StorageResource
from actor_pipeline.errors import InputError
from actor_pipeline.portrait.fetch import read_portrait_source
from actor_pipeline.portrait.limits import PortraitLimits
from actor_pipeline.registry import NewActor, actor_registered
from actor_pipeline.stages import normalize_stage, portrait_info, start_actor
from actor_pipeline.storage.base import Storage

# The descriptors' names, as choices in the Launchpad's config form.
ActorType = Enum("ActorType", {name: name for name in ACTOR_TYPES}, type=str)  # type: ignore[misc]
ActorSex = Enum("ActorSex", {name: name for name in ACTOR_SEXES}, type=str)  # type: ignore[misc]


def _as_new_actor(name: str, default: Any = None) -> Any:
    """``NewActor``'s field ``name`` for the form: its default (or ``default``, as a choice) and description."""
    field = NewActor.model_fields[name]
    return Field(field.default if default is None else default, description=field.description)


class NewActorConfig(dg.Config):
    """Start a new actor (or give an actor a new portrait) from the UI: add the actor's
    partition, then fill this in. Leave ``portrait`` empty to re-run a registered actor."""

    portrait: str = _as_new_actor("portrait")
    user_id: str = _as_new_actor("user_id")
    actor_type: ActorType = _as_new_actor("actor_type", ActorType.human)  # type: ignore[valid-type, attr-defined]
    actor_sex: ActorSex | None = _as_new_actor("actor_sex")  # type: ignore[valid-type]
    reseed: bool = _as_new_actor("reseed")

    def new_actor(self, actor_id: str) -> NewActor:
        """The actor this form starts, in the shape every way in starts one with (``InputError``)."""
        return NewActor(actor_id=actor_id, **self.model_dump(mode="json"))


def new_actor_config(new: NewActor) -> dict[str, Any]:
    """``NewActorConfig`` for ``new``, as run config (the inbox's runs; the UI's form fills the same)."""
    return new.model_dump(include=set(NewActorConfig.model_fields), exclude_none=True)


@dg.asset(partitions_def=actors_partitions, group_name="training_set", kinds={"image"})
def normalized_portrait(
    context: dg.AssetExecutionContext, config: NewActorConfig, storage: StorageResource
) -> dg.MaterializeResult:
    """The actor's portrait as an upright RGB JPEG: the input image of every shot. With a
    ``portrait`` in the run's config this starts the actor (the UI's way in)."""
    store = storage.create_storage()
    _, metadata = prepare_portrait(context.instance, storage, store, context.partition_key, config)
    return dg.MaterializeResult(metadata=metadata)


def prepare_portrait(
    instance: dg.DagsterInstance, storage: StorageResource, store: Storage, actor_id: str, config: NewActorConfig
) -> tuple[ActorContext, Metadata]:
    """Start the actor from ``config.portrait`` (or re-normalize a registered actor's without
    one) in ``store`` (``storage``'s, made once by the caller): the actor, for the rest of the
    run, and its portrait's metadata. A bad portrait fails the run and takes away the partition
    it was started for."""
    if config.portrait:
        try:
            new = config.new_actor(actor_id)
            data = read_portrait_source(config.portrait, PortraitLimits.from_env(), storage.read_s3_portrait)
            actor = start_actor(store, new, data)
        except InputError as exc:
            if not actor_registered(store, actor_id):
                # A partition added for an actor that never started would stay red in every
                # status and backfill: take it away again.
                instance.delete_dynamic_partition(actors_partitions.name, actor_id)
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        info = portrait_info(actor)
    else:
        actor = ActorContext.load(store, actor_id)
        info = normalize_stage(actor)
    return actor, {
        **preview(store, info.key, f"{actor_id} (portrait)"),
        **link(info.url),
        "sha256": info.sha256,
        "bytes": info.bytes,
        "size": f"{info.width}x{info.height}",
        "source": info.source,
    }

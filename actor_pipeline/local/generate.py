"""``generate``: one actor's whole set from a portrait, as the CLI and the Python API ask for it."""

import logging
from dataclasses import dataclass

import dagster as dg

from actor_pipeline.catalog.descriptors import get_actor_descriptor
from actor_pipeline.defs.partitions import CATALOG
from actor_pipeline.defs.resources import PipelineSettings, StorageResource
from actor_pipeline.errors import InputError, PortraitError
from actor_pipeline.identifiers import validate_id
from actor_pipeline.local.instance import open_instance
from actor_pipeline.local.runs import ActorResult, materialize_actor, spool_reported
from actor_pipeline.portrait.fetch import read_portrait_source, redact_source
from actor_pipeline.portrait.limits import PortraitLimits
from actor_pipeline.portrait.normalize import normalize_portrait
from actor_pipeline.registry import NewActor
from actor_pipeline.stages import start_actor
from actor_pipeline.storage.layout import ActorLayout
from actor_pipeline.storage.lease import hold_actor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationRequest:
    """One actor to generate, as the CLI and the Python API describe it."""

    actor_id: str
    user_id: str = "default"
    actor_type: str = "human"
    actor_sex: str | None = None
    portrait_source: str | None = None  # path, http(s) URL or s3:// URI
    portrait_buffer: bytes | None = None  # preferred over the source when it is a valid image
    force: bool = False
    reseed: bool = False


def generate(
    request: GenerationRequest,
    settings: PipelineSettings,
    instance: dg.DagsterInstance | None = None,
    maker: str = "actor-pipeline generate",
) -> ActorResult:
    """Register the actor (validating everything first) and materialize its whole set, holding
    the actor's lease throughout (``ActorBusy`` if another maker holds it)."""
    validate_id(request.actor_id, "actor id")
    validate_id(request.user_id, "user id")
    get_actor_descriptor(request.actor_type, request.actor_sex)  # validates type and sex
    resources = settings.resources()
    storage = resources["storage"].create_storage()
    storage.check()  # a missing bucket or a bad key fails here, before anything is paid for
    settings.generator().create_backend(CATALOG)
    portrait, source = _portrait_bytes(request, resources["storage"])
    with hold_actor(storage, request.actor_id, maker), spool_reported(storage, ActorLayout(request.user_id, request.actor_id)):
        new = NewActor(
            request.actor_id, source, request.user_id, request.actor_type, request.actor_sex, request.reseed
        )
        start_actor(storage, new, portrait)
        return materialize_actor(
            request.actor_id,
            instance=instance or open_instance(settings.resolved_instance_dir),
            resources=resources,
            storage=storage,
            force=request.force,
            bundle=settings.bundle_config(),
        )


def _portrait_bytes(request: GenerationRequest, storage: StorageResource) -> tuple[bytes, str]:
    """The buffer when it decodes, else the source (the seed's "fallback URL" behaviour)."""
    if request.portrait_buffer is not None:
        try:
            normalize_portrait(request.portrait_buffer, PortraitLimits.from_env())
            return request.portrait_buffer, "<portrait_buffer>"
        except PortraitError:
            if not request.portrait_source:
                raise
            log.warning("%s: portrait_buffer is not a usable image; fetching %s instead", request.actor_id, redact_source(request.portrait_source))
    if not request.portrait_source:
        raise InputError("no portrait given: pass a file path, an http(s) URL or an s3:// URI")
    data = read_portrait_source(request.portrait_source, PortraitLimits.from_env(), storage.read_s3_portrait)
    return data, request.portrait_source

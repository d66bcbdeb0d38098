"""One actor's whole set made in-process (``run_actor``): registered, then every asset
materialized on a given Dagster instance with local storage."""

from pathlib import Path
from typing import Any

import dagster as dg

from actor_pipeline.defs.resources import PipelineSettings
from actor_pipeline.local.runs import ActorResult, materialize_actor
from actor_pipeline.registry import register_actor
from actor_pipeline.storage.local import LocalStorage
from actor_pipeline_tests.support.backends import FlakyBackend, generator_for


def run_actor(
    tmp_path: Path,
    instance: dg.DagsterInstance,
    portrait: bytes,
    backend: FlakyBackend | None = None,
    *,
    force: bool = False,
) -> tuple[ActorResult, LocalStorage, dict[str, Any]]:
    """Make actor ``alice``'s set into ``tmp_path/store``, with ``backend`` (else the preview
    backend); returns the result, the storage and the resources used."""
    settings = PipelineSettings(storage="local", output_dir=str(tmp_path / "store"))
    resources = settings.resources()
    if backend:
        resources["generator"] = generator_for(backend)
    storage = resources["storage"].create_storage()
    register_actor(
        storage,
        actor_id="alice",
        user_id="u1",
        actor_type="human",
        actor_sex="female",
        portrait_source="portrait.jpg",
        portrait_bytes=portrait,
    )
    result = materialize_actor("alice", instance=instance, resources=resources, storage=storage, force=force)
    return result, storage, resources

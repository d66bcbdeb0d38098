"""Run the whole graph for one actor in-process: what the CLI and the Python API call.

The three materializations mirror the asset graph (the partitions definitions differ, so they
cannot share a run): portrait + prompt set, then every shot in one run, then grid + manifest.
"""

import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from actor_pipeline.catalog.descriptors import get_actor_descriptor
from actor_pipeline.defs.assets import (
    ALL_ASSETS,
    debug_grid,
    lora_bundle,
    normalized_portrait,
    prompt_set,
    training_image,
    training_manifest,
)
from actor_pipeline.defs.assets.images import FAILED_SHOTS_KEY
from actor_pipeline.defs.partitions import CATALOG, actor_image_range, actors_partitions
from actor_pipeline.defs.resources import PipelineSettings, StorageResource
from actor_pipeline.defs.liveness import fail_orphaned_runs, process_tags
from actor_pipeline.defs.runs import actor_tags
from actor_pipeline.errors import InputError, Interrupted, PortraitError, StorageUnavailable
from actor_pipeline.generation import stopping
from actor_pipeline.generation.journal import ShotJournal
from actor_pipeline.identifiers import validate_id
from actor_pipeline.outputs.manifest import Manifest
from actor_pipeline.portrait.fetch import read_portrait_source
from actor_pipeline.portrait.limits import PortraitLimits
from actor_pipeline.portrait.normalize import normalize_portrait
from actor_pipeline.registry import NewActor, load_registration, redact_source
from actor_pipeline.stages import start_actor
from actor_pipeline.storage.base import Storage
from actor_pipeline.storage.layout import ActorLayout
from actor_pipeline.storage.lease import hold_actor

log = logging.getLogger(__name__)

# Dagster's own console output (a step's failure with its stack, for one) would bury our progress
# lines; errors surface as exceptions, which the CLI turns into one line each.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass(frozen=True)
class ActorResult:
    manifest: Manifest
    manifest_url: str

    def as_dict(self) -> dict[str, Any]:
        """The seed's result keys plus ``manifest_url``, ``grid_url`` and ``failed``."""
        urls = self.manifest.training_image_urls
        return {
            "training_image_urls": urls,
            "total_training_images": len(urls),
            "target_training_images": self.manifest.totals.target,
            "manifest_url": self.manifest_url,
            "grid_url": self.manifest.grid.url,
            "bundle_url": self.manifest.bundle.url if self.manifest.bundle else None,
            "failed": [f.model_dump() for f in self.manifest.failed],
            "cost_usd": self.manifest.ledger.cost_usd,
            "backend": self.manifest.backend,
        }


def open_instance(state_dir: str | os.PathLike[str]) -> dg.DagsterInstance:
    """The instance in ``$DAGSTER_HOME`` if set, else in ``<state folder>/dagster`` (beside the
    shot journal, off ``--out``, which may fill up): the folder ``make ui`` serves, so the UI
    shows the runs and sets the CLI made. Runs that an earlier command left STARTED when its
    process died are marked failed."""
    home = Path(os.environ.get("DAGSTER_HOME") or Path(state_dir) / "dagster").expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    # The folder's dagster.yaml (``make ui`` puts deploy/dagster.yaml there) applies, with
    # _CLI_INSTANCE on top. Not DagsterInstance.get() or from_config(): they take no overrides,
    # and the UI's compute-log capture must stay out of the CLI. local_temp(tempdir=...) is
    # Dagster's public way to open a folder with overrides; despite its name the instance
    # persists in that folder.
    instance = dg.DagsterInstance.local_temp(tempdir=str(home), overrides=_CLI_INSTANCE)
    fail_orphaned_runs(instance)
    return instance


# No telemetry from an instance the user never configured (and no network to send it to), and no
# compute-log capture, even where dagster.yaml asks for it: its helper processes share the CLI's
# process group, so a Ctrl-C would make them print tracebacks, and the CLI's progress goes to
# the terminal anyway. The UI's runs keep their compute logs (run workers read dagster.yaml).
_CLI_INSTANCE = {
    "telemetry": {"enabled": False},
    "compute_logs": {"module": "dagster.core.storage.noop_compute_log_manager", "class": "NoOpComputeLogManager"},
}


def _process_tags(actor_id: str) -> dict[str, str]:
    return {**actor_tags(actor_id), **process_tags()}


def materialize_actor(
    actor_id: str,
    *,
    instance: dg.DagsterInstance,
    resources: Mapping[str, Any],
    storage: Storage,
    force: bool = False,
    finish_config: Mapping[str, Any] = PipelineSettings().finish_run_config(),
) -> ActorResult:
    """Materialize all five assets for a registered actor. Failed shots do not raise: they are
    FAILED partitions, listed in the manifest and the result."""
    ensure_actor_partition(instance, actor_id)
    common: dict[str, Any] = {"assets": ALL_ASSETS, "instance": instance, "resources": dict(resources)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=dg.BetaWarning)
        log.info("%s: normalizing the portrait and planning the prompts", actor_id)
        dg.materialize(
            selection=[normalized_portrait, prompt_set],
            partition_key=actor_id,
            run_config=QUIET_RUN_CONFIG,
            tags=_process_tags(actor_id),
            **common,
        )
    stop_if_requested()
    log.info("%s: generating the shots", actor_id)
    materialize_shots(actor_id, actor_image_range(actor_id), instance=instance, resources=resources, force=force)
    stop_if_requested()
    finish_actor(actor_id, instance=instance, resources=resources, run_config=finish_config)
    key = load_registration(storage, actor_id).layout.manifest
    return ActorResult(Manifest.model_validate_json(storage.get(key)), storage.url(key))


def ensure_actor_partition(instance: dg.DagsterInstance, actor_id: str) -> None:
    if not instance.has_dynamic_partition(actors_partitions.name, actor_id):
        instance.add_dynamic_partitions(actors_partitions.name, [actor_id])


def materialize_shots(
    actor_id: str,
    range_tags: Mapping[str, str],
    *,
    instance: dg.DagsterInstance,
    resources: Mapping[str, Any],
    force: bool = False,
) -> None:
    """Make the shots in ``range_tags`` in one run. Failed shots do not raise (they end as FAILED
    partitions); any other failure of the run raises what the asset raised (e.g.
    ``StorageUnavailable``, ``ActorBusy``, ``Interrupted``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=dg.BetaWarning)
        try:
            dg.materialize(
                ALL_ASSETS,
                selection=[training_image],
                instance=instance,
                resources=dict(resources),
                tags={**range_tags, **_process_tags(actor_id)},
                run_config={**QUIET_RUN_CONFIG, "ops": {training_image.op.name: {"config": {"force": force}}}},
            )
        except dg.Failure as failure:
            if FAILED_SHOTS_KEY not in failure.metadata:
                raise


def finish_actor(
    actor_id: str,
    *,
    instance: dg.DagsterInstance,
    resources: Mapping[str, Any],
    run_config: Mapping[str, Any] = PipelineSettings().finish_run_config(),
) -> None:
    """Draw the grid, zip the LoRA bundle and write the manifest (last) from what storage holds
    now; ``run_config`` sets the bundle's trigger word and layout."""
    log.info("%s: drawing the grid, zipping the LoRA bundle and writing the manifest", actor_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=dg.BetaWarning)
        dg.materialize(
            ALL_ASSETS,
            selection=[debug_grid, lora_bundle, training_manifest],
            partition_key=actor_id,
            instance=instance,
            resources=dict(resources),
            run_config={**QUIET_RUN_CONFIG, **run_config},
            tags=_process_tags(actor_id),
        )


def stop_if_requested() -> None:
    if (signum := stopping.requested()) is not None:
        raise Interrupted(signum)


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
    resources["generator"].create_backend(CATALOG)
    portrait, source = _portrait_bytes(request, resources["storage"])
    with hold_actor(storage, request.actor_id, maker), spool_reported(storage, ActorLayout(request.user_id, request.actor_id)):
        new = NewActor(
            request.actor_id, source, request.user_id, request.actor_type, request.actor_sex, request.reseed
        )
        start_actor(storage, new, portrait)
        return materialize_actor(
            request.actor_id,
            instance=instance or open_instance(settings.resolved_state_dir),
            resources=resources,
            storage=storage,
            force=request.force,
            finish_config=settings.finish_run_config(),
        )


@contextmanager
def spool_reported(storage: Storage, layout: ActorLayout) -> Iterator[None]:
    """Say, when storage fails, how many paid images wait in the spool for the next run."""
    try:
        yield
    except StorageUnavailable as exc:
        spooled = ShotJournal(storage, layout).spooled_count()
        raise StorageUnavailable(
            f"{exc}. {spooled} paid image(s) wait in the spool under {storage.state_dir}; rerun the same command "
            "once storage answers: they are stored at no cost, and no prediction is made twice"
        ) from exc


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

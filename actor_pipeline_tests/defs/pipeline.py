"""``Pipeline``: the code location built with test resources (local storage, a local inbox, a
chosen generator), on a test instance, with ways to register an actor and run jobs."""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from actor_pipeline.defs.code_location import build_definitions
from actor_pipeline.defs.follow_up import RUN_KEY_TAG
from actor_pipeline.defs.inbox_resource import InboxResource
from actor_pipeline.defs.partitions import actors_partitions
from actor_pipeline.defs.resources import ImageGeneratorResource
from actor_pipeline.defs.settings import PipelineSettings
from actor_pipeline.registry import NewActor, register_actor
from actor_pipeline.storage.base import Storage
from actor_pipeline_tests.support.backends import FlakyBackend


@dataclass
class Pipeline:
    defs: dg.Definitions
    instance: dg.DagsterInstance
    resources: dict[str, Any]
    storage: Storage
    backend: FlakyBackend
    inbox: Path

    def register(self, portrait: bytes, actor_id: str = "alice") -> None:
        register_actor(self.storage, NewActor(actor_id=actor_id, portrait="portrait.jpg", user_id="u1", actor_sex="female"), portrait)
        self.instance.add_dynamic_partitions(actors_partitions.name, [actor_id])

    def run(self, job: str, **kwargs: Any) -> dg.ExecuteInProcessResult:
        """Run a job as the daemon would run a request for it."""
        return self.defs.resolve_job_def(job).execute_in_process(instance=self.instance, raise_on_error=False, **kwargs)

    def execute(self, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        """Run a sensor's request as the daemon launches it (tagged with its run key)."""
        assert request.job_name, request
        tags = {**request.tags, **({RUN_KEY_TAG: request.run_key} if request.run_key else {})}
        return self.run(request.job_name, partition_key=request.partition_key, tags=tags, run_config=request.run_config)


def build_pipeline(
    tmp_path: Path,
    instance: dg.DagsterInstance,
    generator: ImageGeneratorResource,
    backend: FlakyBackend,
    training: Mapping[str, Any] | None = None,
) -> Pipeline:
    """Storage in ``tmp_path/store``, the inbox in ``tmp_path/inbox`` (no settling time), and the
    trainer's ``TrainingSettings`` from ``training`` (the suite has no token: the preview's $0
    stand-in trains)."""
    resources = PipelineSettings.configure(
        storage={"backend": "local", "local_dir": str(tmp_path / "store")}, training=training
    ).resources()
    resources["generator"] = generator
    resources["inbox"] = InboxResource(location=str(tmp_path / "inbox"), settle_seconds=0)
    defs = build_definitions(resources)
    return Pipeline(defs, instance, resources, resources["storage"].create_storage(), backend, tmp_path / "inbox")

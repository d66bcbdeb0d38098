"""The Dagster code location (loaded by ``workspace.yaml``)."""

import dagster as dg

from actor_pipeline.defs.assets import ALL_ASSETS
from actor_pipeline.defs.inbox_resource import InboxResource
from actor_pipeline.defs.jobs import ALL_JOBS
from actor_pipeline.defs.resources import PipelineSettings
from actor_pipeline.defs.schedules import ALL_SCHEDULES
from actor_pipeline.defs.sensors import ALL_SENSORS

defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=ALL_JOBS,
    sensors=ALL_SENSORS,
    schedules=ALL_SCHEDULES,
    resources={**PipelineSettings.from_env().resources(), "inbox": InboxResource.from_env()},
    # Each run is one step doing its own concurrency; a step subprocess would only add ~2 s.
    executor=dg.in_process_executor,
)

"""The code location's definitions, on whatever resources the caller gives (the shipped
location gives those the environment configures; tests give their own)."""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from actor_pipeline.defs.assets import ALL_ASSETS
from actor_pipeline.defs.jobs import ALL_JOBS
from actor_pipeline.defs.schedules import ALL_SCHEDULES
from actor_pipeline.defs.sensors import ALL_SENSORS


def build_definitions(resources: Mapping[str, Any]) -> dg.Definitions:
    return dg.Definitions(
        assets=ALL_ASSETS,
        jobs=ALL_JOBS,
        sensors=ALL_SENSORS,
        schedules=ALL_SCHEDULES,
        resources=dict(resources),
        # Each run is one step doing its own concurrency; a step subprocess would only add ~2 s.
        executor=dg.in_process_executor,
    )

"""The Dagster code location (loaded by ``workspace.yaml``)."""

import dagster as dg

from actor_pipeline.defs.assets import ALL_ASSETS
from actor_pipeline.defs.resources import PipelineSettings

defs = dg.Definitions(
    assets=ALL_ASSETS,
    resources=PipelineSettings.from_env().resources(),
    # Each run is one step doing its own concurrency; a step subprocess would only add ~2 s.
    executor=dg.in_process_executor,
)

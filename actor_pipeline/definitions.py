"""The Dagster code location (loaded by ``workspace.yaml`` and by ``dg`` through ``[tool.dg]``)."""

import warnings

import dagster as dg

# The code server, the run workers and `dg check defs` import this module first; without these
# filters each prints Dagster's notices about beta APIs this project uses (backfill_policy,
# MultiToSingleDimensionPartitionMapping) into the `make ui` console and every run's logs. They
# are meant for the project's developers, who see them in tests (pyproject's filterwarnings).
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

from actor_pipeline.defs.assets import ALL_ASSETS  # noqa: E402  (after the filters, on purpose)
from actor_pipeline.defs.inbox_resource import InboxResource  # noqa: E402
from actor_pipeline.defs.jobs import ALL_JOBS  # noqa: E402
from actor_pipeline.defs.resources import PipelineSettings  # noqa: E402
from actor_pipeline.defs.schedules import ALL_SCHEDULES  # noqa: E402
from actor_pipeline.defs.sensors import ALL_SENSORS  # noqa: E402

defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=ALL_JOBS,
    sensors=ALL_SENSORS,
    schedules=ALL_SCHEDULES,
    resources={**PipelineSettings.from_env().resources(), "inbox": InboxResource.from_env()},
    # Each run is one step doing its own concurrency; a step subprocess would only add ~2 s.
    executor=dg.in_process_executor,
)

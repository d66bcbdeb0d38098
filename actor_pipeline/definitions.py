"""The Dagster code location (loaded by ``workspace.yaml`` and by ``dg`` through ``[tool.dg]``)."""

import warnings

import dagster as dg

# The code server, the run workers and `dg check defs` import this module first; without these
# filters each prints Dagster's notices about beta APIs this project uses (backfill_policy,
# MultiToSingleDimensionPartitionMapping) into the `make ui` console and every run's logs. They
# are meant for the project's developers, who see them in tests (pyproject's filterwarnings).
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

from actor_pipeline.defs.code_location import build_definitions  # noqa: E402  (after the filters, on purpose)
from actor_pipeline.defs.inbox_resource import InboxResource  # noqa: E402
from actor_pipeline.defs.settings import PipelineSettings  # noqa: E402

defs = build_definitions({**PipelineSettings.configure().resources(), "inbox": InboxResource.from_env()})

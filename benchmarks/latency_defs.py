"""The code location ``bench_inbox_latency.py`` serves under ``dg dev``.

The shipped definitions, with ``BENCH_MAX_CONCURRENCY`` shots of an actor in flight, and
``BENCH_CHAIN`` picking how the stages follow each other:

- ``sensors`` (shipped): run-status sensors request the next stage.
- ``automation``: ``AutomationCondition.eager()`` on the images, grid and manifest, evaluated
  by an ``AutomationConditionSensorDefinition`` that launches runs.
- ``automation-backfills``: the same, emitting backfills (the sensor's default).
"""

import os

import dagster as dg

from actor_pipeline import definitions
from actor_pipeline.defs.assets import ALL_ASSETS, debug_grid, training_image, training_manifest
from actor_pipeline.defs.jobs import prepare_actor
from actor_pipeline.defs.resources import ImageGeneratorResource
from actor_pipeline.defs.sensors import portrait_inbox


def _automation(resources: dict[str, object], emit_backfills: bool) -> dg.Definitions:
    eager = {training_image.key, debug_grid.key, training_manifest.key}
    assets = [
        a.map_asset_specs(lambda spec: spec.replace_attributes(automation_condition=dg.AutomationCondition.eager()))
        if a.key in eager
        else a
        for a in ALL_ASSETS
    ]
    automation = dg.AutomationConditionSensorDefinition(
        "automation",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=1,
        emit_backfills=emit_backfills,
    )
    return dg.Definitions(
        assets=assets,
        jobs=[prepare_actor],
        sensors=[portrait_inbox, automation],
        resources=resources,
        executor=dg.in_process_executor,
    )


_RESOURCES = {
    **(definitions.defs.resources or {}),
    "generator": ImageGeneratorResource(max_concurrency=int(os.environ.get("BENCH_MAX_CONCURRENCY", "17"))),
}
_CHAIN = os.environ.get("BENCH_CHAIN", "sensors")
if _CHAIN == "sensors":
    defs = dg.Definitions(
        assets=definitions.defs.assets,
        jobs=definitions.defs.jobs,
        sensors=definitions.defs.sensors,
        schedules=definitions.defs.schedules,
        resources=_RESOURCES,
        executor=definitions.defs.executor,
    )
elif _CHAIN in ("automation", "automation-backfills"):
    defs = _automation(_RESOURCES, emit_backfills=_CHAIN == "automation-backfills")
else:
    raise ValueError(f"BENCH_CHAIN={_CHAIN!r}: use sensors, automation or automation-backfills")

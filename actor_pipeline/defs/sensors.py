"""Sensors: the inbox starts an actor's set (one run), run-status sensors carry other runs on (a
prepared actor's images run finishes the set itself; a rerun of images is followed by the finishing
stage), and failed runs are reported with the actor, the shots and why.

Stages are chained here rather than by declarative automation, which was 3-4 times slower from
drop to manifest (``benchmarks/bench_inbox_latency.py``, 5 s predictions: median 56-62 s against
16 s): ``AutomationCondition.eager()`` either launches one run per image partition (17 runs per
actor) or emits backfills, which the backfill daemon picks up only every 30 s.
"""

import time

import dagster as dg

from actor_pipeline.defs.assets.images import finishes_itself
from actor_pipeline.defs.assets.inbox import rejected_file
from actor_pipeline.defs.assets.portrait import new_actor_config
from actor_pipeline.defs.failures import only_shots_failed, step_errors
from actor_pipeline.defs.inbox_resource import InboxResource
from actor_pipeline.defs.jobs import finish_training_set, make_training_images
from actor_pipeline.defs.liveness import fail_orphaned_runs, nudge_missed_retries
from actor_pipeline.defs.partitions import actors_partitions
from actor_pipeline.defs.resources import StorageResource
from actor_pipeline.defs.runs import (
    covered_shots,
    new_set_request,
    next_stage_requests,
    planned_partitions,
)
from actor_pipeline.errors import InputError, StateError
from actor_pipeline.inbox import InboxCursor, take_in
from actor_pipeline.unfinished import describe_failed_shots, find_failed_shots

SOURCE_TAG = "actor_pipeline/source"
# The sensor daemon wakes every 5 s; a shorter minimum interval makes every wake-up evaluate.
_EVERY_WAKE_UP = 1


@dg.sensor(
    jobs=[make_training_images],
    minimum_interval_seconds=_EVERY_WAKE_UP,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def portrait_inbox(context: dg.SensorEvaluationContext, inbox: InboxResource) -> dg.SensorResult:
    """Starts a set for each portrait dropped at ``{user_id}/{actor_id}.jpg`` in the inbox (with
    its optional ``{actor_id}.json`` sidecar): it only lists files and requests one run per
    portrait, which fetches and normalizes it, makes the shots and finishes the set (and trains
    the LoRA when the sidecar says ``"train": true``). Each bad file is reported once, as an
    observation of ``inbox_rejects``; a portrait that does not decode fails its run, naming the
    problem."""
    intake = take_in(
        inbox.open(),
        InboxCursor.parse(context.cursor),
        now=time.time(),
        settle_s=inbox.settle_seconds,
        limit=inbox.max_per_tick,
    )
    for problem in intake.problems:
        context.log.error(f"inbox: skipped {problem}")
    for error in intake.errors:
        context.log.warning(f"inbox: {error}")
    if intake.waiting:
        context.log.info(f"inbox: {intake.waiting} more portrait(s) wait for the next tick")
    rejects = [rejected_file(problem) for problem in intake.problems]
    actors = [a.new.actor_id for a in intake.arrived]
    if not actors:
        return dg.SensorResult(
            skip_reason=f"no new portraits in {inbox.location}", cursor=intake.cursor.serialize(), asset_events=rejects
        )
    return dg.SensorResult(
        run_requests=[
            new_set_request(
                a.new.actor_id, a.run_key, {SOURCE_TAG: a.new.portrait}, new_actor_config(a.new), train=a.train
            )
            for a in intake.arrived
        ],
        dynamic_partitions_requests=[actors_partitions.build_add_request(sorted(set(actors)))],
        cursor=intake.cursor.serialize(),
        asset_events=rejects,
    )


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    request_jobs=[make_training_images, finish_training_set],
    minimum_interval_seconds=_EVERY_WAKE_UP,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def advance_training_set(context: dg.RunStatusSensorContext) -> list[dg.RunRequest] | None:
    """After a successful run, requests the actor's next stage (unless the run finished the set)."""
    run = context.dagster_run
    if finishes_itself(run.run_config):
        return None
    # None, not []: a run status sensor ends its tick at the first run it returns requests for.
    return next_stage_requests(run.run_id, planned_partitions(context.instance, run.run_id)) or None


@dg.run_failure_sensor(
    request_job=finish_training_set,
    minimum_interval_seconds=_EVERY_WAKE_UP,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def report_failed_run(context: dg.RunFailureSensorContext, storage: StorageResource) -> list[dg.RunRequest] | None:
    """Logs which actor and which shots a failed run left undone, and why. When only shots
    failed, still finishes the set so the grid and manifest show the failures (as the CLI does)."""
    run = context.dagster_run
    errors = step_errors(context.get_step_failure_events())
    context.log.error(
        f"run {run.run_id} ({run.job_name}) failed: {'; '.join(errors) or context.failure_event.message}"
    )
    plan = planned_partitions(context.instance, run.run_id)
    store = storage.create_storage()
    for actor_id, shot_ids in covered_shots(plan).items():
        if not shot_ids:
            context.log.error(f"actor {actor_id}: {run.job_name} did not complete; see the run's logs")
            continue
        try:
            failed = find_failed_shots(store, actor_id, shot_ids)
        except (InputError, StateError) as exc:
            context.log.error(f"actor {actor_id}: {exc}")
            continue
        context.log.error(describe_failed_shots(actor_id, failed, len(shot_ids)))
    if finishes_itself(run.run_config) or not only_shots_failed(context.get_step_failure_events()):
        return None
    return next_stage_requests(run.run_id, plan) or None


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def orphaned_runs(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Marks runs whose process died (a killed run worker) as failed, so their shots show FAILED
    rather than in progress forever, and the run-failure sensor reports them; and reports again
    the failure of a run whose promised retry never started (``nudge_missed_retries``)."""
    failed = fail_orphaned_runs(context.instance)
    nudged = nudge_missed_retries(context.instance)
    said = [f"marked {len(failed)} run(s) failed: {', '.join(failed)}"] if failed else []
    said += [f"reported {len(nudged)} failure(s) again for Dagster's run retry: {', '.join(nudged)}"] if nudged else []
    return dg.SkipReason("; ".join(said) or "no orphaned runs")


ALL_SENSORS = [portrait_inbox, advance_training_set, report_failed_run, orphaned_runs]

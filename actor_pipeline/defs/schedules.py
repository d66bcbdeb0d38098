"""The nightly retry of failed shots, with a bound on the attempts per shot."""

import dagster as dg

from actor_pipeline.defs.jobs import make_training_images
from actor_pipeline.defs.resources import StorageResource
from actor_pipeline.defs.retries import retry_plan, retry_requests
from actor_pipeline.unfinished import DEFAULT_MAX_ATTEMPTS


@dg.schedule(
    job=make_training_images,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def nightly_retry(
    context: dg.ScheduleEvaluationContext, storage: StorageResource
) -> list[dg.RunRequest] | dg.SkipReason:
    """At 03:00 UTC, reruns every failed shot that has had fewer than 3 attempts, one run per
    range of consecutive failed shots of an actor; only those shots are paid for again."""
    plan = retry_plan(context.instance, storage.create_storage(), None, DEFAULT_MAX_ATTEMPTS)
    for shot in plan.exhausted:
        context.log.warning(
            f"{shot.actor_id}: not retrying {shot.describe()}: it reached the limit of {DEFAULT_MAX_ATTEMPTS} "
            f"attempts. To try again: `actor-pipeline retry-failed --actor-id {shot.actor_id} --max-attempts N`"
        )
    return retry_requests(plan) or dg.SkipReason("no failed shots to retry")


ALL_SCHEDULES = [nightly_retry]

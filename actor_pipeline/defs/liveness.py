"""Runs whose process died: an in-process run (the CLI) or a run worker killed without a word
stays STARTED forever, and its shots read "in progress" in Dagster. Dagster's run monitoring
cannot see it with the default run launcher (which has no worker health check), so each run
that makes images names its process in its tags, and whoever looks next (a CLI command, the
``orphaned_runs`` sensor) marks runs whose process on this machine is gone as failed. Their
shots then show FAILED, and a rerun resumes them from the shot journal.

The same sensor makes sure a failed run that Dagster said it will retry is retried
(``nudge_missed_retries``)."""

import os
import socket
from datetime import UTC, datetime, timedelta

import dagster as dg

from actor_pipeline.storage.lease import pid_alive

HOST_TAG, PID_TAG = "actor_pipeline/host", "actor_pipeline/pid"
NUDGED_TAG = "actor_pipeline/retry_nudged"
# Dagster's run tags (dagster._core.storage.tags): the retry it decided on, and a re-execution's parent.
_WILL_RETRY, _RETRY_RUN, _PARENT = "dagster/will_retry", "dagster/auto_retry_run_id", "dagster/parent_run_id"
# Dagster's run-retry daemon acts within seconds of a failure; a retry not there by then never comes.
_RETRY_DUE = timedelta(seconds=30)


def process_tags() -> dict[str, str]:
    """The tags naming the process that runs a run."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def fail_orphaned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark STARTED runs whose process on this machine has died as failed; returns their ids."""
    started = instance.get_runs(
        dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], tags={HOST_TAG: socket.gethostname()})
    )
    failed = []
    for run in started:
        pid = int(run.tags.get(PID_TAG, "0"))
        if pid and pid != os.getpid() and not pid_alive(pid) and not _inherited(instance, run):
            instance.report_run_failed(
                run, f"its process (pid {pid}) died before the run ended; a rerun resumes its shots"
            )
            failed.append(run.run_id)
    return failed


def _inherited(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Whether the run's process tags are its parent's: a run retry starts with the tags of the
    run it retries, whose process is dead, until its own process names itself."""
    parent = instance.get_run_by_id(run.parent_run_id) if run.parent_run_id else None
    return parent is not None and all(parent.tags.get(tag) == run.tags.get(tag) for tag in (HOST_TAG, PID_TAG))


def nudge_missed_retries(instance: dg.DagsterInstance, now: datetime | None = None) -> list[str]:
    """Report once more the failure of each run that failed over ``_RETRY_DUE`` ago, in the last
    hour, tagged ``dagster/will_retry`` and never retried; returns their ids.

    Dagster's run-retry daemon reads failures from the event log, and the failure event is
    stored before the run's status says FAILURE: read in between, the run is taken for not
    failed, the daemon's cursor moves past it, and the retry Dagster promised never comes (a
    cluster test saw it once). A new failure event is one the daemon has not read, and it then
    retries the run the usual way; each run is nudged once."""
    now = now or datetime.now(UTC)
    records = instance.get_run_records(
        dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.FAILURE], tags={_WILL_RETRY: "true"}, updated_after=now - timedelta(hours=1)
        )
    )
    nudged = []
    for record in records:
        run = record.dagster_run
        ended = datetime.fromtimestamp(record.end_time, UTC) if record.end_time else record.update_timestamp
        if NUDGED_TAG in run.tags or _RETRY_RUN in run.tags or now - ended < _RETRY_DUE:
            continue
        if instance.get_runs(dg.RunsFilter(tags={_PARENT: run.run_id}), limit=1):
            continue
        instance.add_run_tags(run.run_id, {NUDGED_TAG: "true"})
        instance.report_run_failed(
            run, "Dagster's run retry did not start: the failure is reported again so that it does"
        )
        nudged.append(run.run_id)
    return nudged

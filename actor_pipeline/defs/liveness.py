"""Runs whose process died: an in-process run (the CLI) or a run worker killed without a word
stays STARTED forever, and its shots read "in progress" in Dagster. Dagster's run monitoring
cannot see it with the default run launcher (which has no worker health check), so each run
that makes images names its process in its tags, and whoever looks next (a CLI command, the
``orphaned_runs`` sensor) marks runs whose process on this machine is gone as failed. Their
shots then show FAILED, and a rerun resumes them from the shot journal."""

import os
import socket

import dagster as dg

from actor_pipeline.storage.lease import pid_alive

HOST_TAG, PID_TAG = "actor_pipeline/host", "actor_pipeline/pid"


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
            instance.report_run_failed(run, f"its process (pid {pid}) died before the run ended; a rerun resumes its shots")
            failed.append(run.run_id)
    return failed


def _inherited(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Whether the run's process tags are its parent's: a run retry starts with the tags of the
    run it retries, whose process is dead, until its own process names itself."""
    parent = instance.get_run_by_id(run.parent_run_id) if run.parent_run_id else None
    return parent is not None and all(parent.tags.get(tag) == run.tags.get(tag) for tag in (HOST_TAG, PID_TAG))


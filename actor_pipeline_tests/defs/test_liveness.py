"""Runs whose process died are marked failed, so their shots do not stay "in progress"."""

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from actor_pipeline.defs import liveness
from actor_pipeline.defs.liveness import (
    HOST_TAG,
    NUDGED_TAG,
    PID_TAG,
    fail_orphaned_runs,
    nudge_missed_retries,
    process_tags,
)
from actor_pipeline.defs.sensors import orphaned_runs


def started_run(instance: dg.DagsterInstance, tags: dict[str, str], parent_run_id: str | None = None) -> str:
    @dg.op
    def noop() -> None: ...

    @dg.job
    def work() -> None:
        noop()

    run = instance.create_run_for_job(work, tags=tags, parent_run_id=parent_run_id, root_run_id=parent_run_id)
    instance.handle_new_event(
        dg.EventLogEntry(
            error_info=None,
            level="DEBUG",
            user_message="",
            run_id=run.run_id,
            timestamp=0.0,
            dagster_event=dg.DagsterEvent(dg.DagsterEventType.RUN_START.value, job_name=run.job_name),
        )
    )
    assert instance.get_run_by_id(run.run_id).status is dg.DagsterRunStatus.STARTED  # type: ignore[union-attr]
    return run.run_id


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_a_run_whose_process_died_is_failed_and_a_live_one_is_left(instance: dg.DagsterInstance) -> None:
    dead = started_run(instance, {HOST_TAG: socket.gethostname(), PID_TAG: str(dead_pid())})
    alive = started_run(instance, process_tags())
    elsewhere = started_run(instance, {HOST_TAG: "another-machine", PID_TAG: str(dead_pid())})
    assert fail_orphaned_runs(instance) == [dead]
    statuses = {run_id: instance.get_run_by_id(run_id).status for run_id in (dead, alive, elsewhere)}  # type: ignore[union-attr]
    assert statuses == {
        dead: dg.DagsterRunStatus.FAILURE,
        alive: dg.DagsterRunStatus.STARTED,
        elsewhere: dg.DagsterRunStatus.STARTED,  # its own machine's sensor or CLI judges it
    }
    assert os.getpid() == int(process_tags()[PID_TAG])


def test_the_sensor_reports_what_it_failed(instance: dg.DagsterInstance) -> None:
    started_run(instance, {HOST_TAG: socket.gethostname(), PID_TAG: str(dead_pid())})
    with dg.build_sensor_context(instance=instance) as context:
        result = orphaned_runs(context)
    assert isinstance(result, dg.SkipReason) and "marked 1 run(s) failed" in (result.skip_message or "")


def test_a_retry_still_carrying_the_dead_runs_process_tags_is_left_running(instance: dg.DagsterInstance) -> None:
    """A run retry starts with the tags of the run it retries; until its own process names
    itself, the dead process they name says nothing about the retry."""
    dead_tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(dead_pid())}
    dead = started_run(instance, dead_tags)
    assert fail_orphaned_runs(instance) == [dead]
    retry = started_run(instance, dead_tags, parent_run_id=dead)
    assert fail_orphaned_runs(instance) == []
    instance.add_run_tags(retry, {PID_TAG: str(dead_pid())})  # its own process, since died
    assert fail_orphaned_runs(instance) == [retry]


def failed_run(instance: dg.DagsterInstance, *, will_retry: str = "true") -> str:
    """A failed run, tagged as Dagster tags a failed run when run retries are on."""
    run_id = started_run(instance, {})
    instance.report_run_failed(instance.get_run_by_id(run_id))  # type: ignore[arg-type]
    instance.add_run_tags(run_id, {"dagster/will_retry": will_retry})
    return run_id


def failures(instance: dg.DagsterInstance, run_id: str) -> int:
    return len(instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE))


def test_a_failed_run_whose_promised_retry_never_started_is_reported_again_once(instance: dg.DagsterInstance) -> None:
    missed = failed_run(instance)
    retried = failed_run(instance)
    started_run(instance, {"dagster/parent_run_id": retried}, parent_run_id=retried)  # its retry
    not_retried = failed_run(instance, will_retry="false")
    soon = datetime.now(UTC) + timedelta(seconds=5)
    assert nudge_missed_retries(instance, now=soon) == []  # the retry daemon may still be on its way
    later = datetime.now(UTC) + timedelta(seconds=31)
    assert nudge_missed_retries(instance, now=later) == [missed]
    assert {run_id: failures(instance, run_id) for run_id in (missed, retried, not_retried)} == {
        missed: 2,  # a failure event the retry daemon has not read
        retried: 1,
        not_retried: 1,
    }
    assert instance.get_run_by_id(missed).tags[NUDGED_TAG] == "true"  # type: ignore[union-attr]
    assert nudge_missed_retries(instance, now=later) == []  # once


def test_the_sensor_says_which_failures_it_reported_again(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = failed_run(instance)
    monkeypatch.setattr(liveness, "_RETRY_DUE", timedelta(0))
    with dg.build_sensor_context(instance=instance) as context:
        result = orphaned_runs(context)
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == f"reported 1 failure(s) again for Dagster's run retry: {run_id}"

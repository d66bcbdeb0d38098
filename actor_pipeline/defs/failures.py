"""How a ``training_image`` run tells that only shots failed (they are rerun as partitions) from
any other failure (a crash, storage down, a stop)."""

from collections.abc import Iterable

import dagster as dg

FAILED_SHOTS_KEY = "failed_shots"


def only_shots_failed(step_failures: Iterable[dg.DagsterEvent]) -> bool:
    """True when every step failure is ``training_image`` reporting failed shots, not a crash."""
    failures = [event.step_failure_data for event in step_failures]
    return bool(failures) and all(
        f is not None and f.user_failure_data is not None and FAILED_SHOTS_KEY in f.user_failure_data.metadata
        for f in failures
    )


def step_errors(step_failures: Iterable[dg.DagsterEvent]) -> list[str]:
    """The first line of each failed step's error."""
    return [
        event.step_failure_data.error.message.strip().splitlines()[0]
        for event in step_failures
        if event.step_failure_data and event.step_failure_data.error
    ]

"""Failed shots: which they are, why they failed, and which of them to try again.

Plain functions over the shot records in storage (the durable history: status, error, attempts)
plus, optionally, what Dagster says about each shot's partition. The nightly schedule, the
run-failure sensor and ``actor-pipeline retry-failed`` all decide with these.
"""

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from actor_pipeline.generation.records import load_record
from actor_pipeline.generation.types import ShotStatus
from actor_pipeline.registry import load_registration
from actor_pipeline.storage.base import Storage

DEFAULT_MAX_ATTEMPTS = 3
FAILED_STATUSES = frozenset({ShotStatus.FAILED, ShotStatus.CONTENT_FLAGGED, ShotStatus.CANCELED, ShotStatus.TIMED_OUT})


@dataclass(frozen=True)
class FailedShot:
    actor_id: str
    shot_id: str
    status: str  # the record's last status; "failed" when only Dagster knows of the failure
    attempts: int  # predictions attempted so far, the first one included
    error: str | None

    def describe(self) -> str:
        return f"{self.shot_id} ({self.status} after {self.attempts} attempt(s): {self.error or 'no error recorded'})"


def find_failed_shots(
    storage: Storage,
    actor_id: str,
    shot_ids: Iterable[str],
    *,
    dagster_failed: Collection[str] = (),
    in_progress: Collection[str] = (),
) -> list[FailedShot]:
    """Shots whose last attempt failed, or whose partition Dagster marks FAILED (e.g. the run
    crashed before the shot was tried). Shots a run is making right now are left out."""
    layout = load_registration(storage, actor_id).layout
    failed = []
    for shot_id in shot_ids:
        if shot_id in in_progress:
            continue
        record = load_record(storage, layout, shot_id)
        if record and record.status in FAILED_STATUSES:
            failed.append(FailedShot(actor_id, shot_id, record.status.value, record.attempts, record.error))
        elif shot_id in dagster_failed:
            attempts = record.attempts if record else 0
            failed.append(FailedShot(actor_id, shot_id, "failed", attempts, "the run making it failed"))
    return failed


@dataclass(frozen=True)
class RetryPlan:
    retry: list[FailedShot]
    exhausted: list[FailedShot]  # reached the attempt limit: left for a person to look at

    def shots_by_actor(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for shot in self.retry:
            grouped.setdefault(shot.actor_id, []).append(shot.shot_id)
        return grouped


def plan_retries(failed: Iterable[FailedShot], max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> RetryPlan:
    """Retry each failed shot until it has been attempted ``max_attempts`` times in all, so a
    shot that always fails (e.g. a prompt the safety filter refuses) costs at most that many
    predictions."""
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    shots = list(failed)
    return RetryPlan(
        retry=[s for s in shots if s.attempts < max_attempts],
        exhausted=[s for s in shots if s.attempts >= max_attempts],
    )


def shot_ranges(shot_ids: Collection[str], order: Sequence[str]) -> list[tuple[str, str]]:
    """The fewest (first, last) runs of consecutive shots in ``order`` covering exactly
    ``shot_ids``: one Dagster run per range makes exactly those shots."""
    ranges: list[tuple[str, str]] = []
    start: str | None = None
    for index, shot_id in enumerate(order):
        if shot_id in shot_ids and start is None:
            start = shot_id
        if start is not None and (index + 1 == len(order) or order[index + 1] not in shot_ids):
            ranges.append((start, shot_id))
            start = None
    return ranges


def describe_failed_shots(actor_id: str, failed: Sequence[FailedShot], total: int) -> str:
    """One line for a person: which shots of the actor failed, why, and how to rerun them."""
    if not failed:
        return f"actor {actor_id}: no shot records a failure (see the run's error above)"
    return (
        f"actor {actor_id}: {len(failed)} of {total} shot(s) failed: {'; '.join(s.describe() for s in failed)}. "
        f"Rerun only these: select the FAILED training_image partitions in the UI and Materialize, "
        f"or run `actor-pipeline retry-failed --actor-id {actor_id}`"
    )

"""Unfinished shots: which they are, why, and which of them to try again.

Plain functions over the shot journal (status, step, error, attempts). A shot is unfinished when
it failed, was never made, or stopped half-way with nobody making it (a rerun resumes it, paying
for nothing twice). The nightly schedule, the run-failure sensor and ``actor-pipeline
retry-failed`` all decide with these.
"""

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.errors import NotMadeYet
from actor_pipeline.generation.types import ShotStatus
from actor_pipeline.storage.base import Storage
from actor_pipeline.storage.lease import current_holder

DEFAULT_MAX_ATTEMPTS = 3
INTERRUPTED = "interrupted"  # stopped half-way with nobody making it: a rerun resumes it


@dataclass(frozen=True)
class UnfinishedShot:
    actor_id: str
    shot_id: str
    status: str  # the journal's status; "missing" for a shot never attempted
    attempts: int  # attempts so far, the one a rerun would resume included
    error: str | None

    def describe(self) -> str:
        return f"{self.shot_id} ({self.status} after {self.attempts} attempt(s): {self.error or 'no error recorded'})"


def find_failed_shots(storage: Storage, actor_id: str, shot_ids: Iterable[str]) -> list[UnfinishedShot]:
    """The unfinished shots among ``shot_ids``. None while another process holds the actor's
    lease: what it is making is not failed."""
    actor = ActorContext.load(storage, actor_id)
    if current_holder(storage, actor_id) is not None:
        return []
    try:
        prompt_set = actor.prompt_set
    except NotMadeYet as exc:  # never prepared: nothing was made
        return [UnfinishedShot(actor_id, shot_id, "missing", 0, str(exc)) for shot_id in shot_ids]
    failed = []
    for shot_id in shot_ids:
        record = actor.journal.load(prompt_set.shot(shot_id))
        if record is None:
            failed.append(UnfinishedShot(actor_id, shot_id, "missing", 0, "never made: the run making it stopped first"))
        elif not record.made:
            # A shot left in progress resumes its attempt; PENDING ones were never started.
            status = INTERRUPTED if record.status is ShotStatus.IN_PROGRESS else record.status.value
            failed.append(UnfinishedShot(actor_id, shot_id, status, record.attempts, record.error))
    return failed


@dataclass(frozen=True)
class RetryPlan:
    retry: list[UnfinishedShot]
    exhausted: list[UnfinishedShot]  # reached the attempt limit: left for a person to look at

    def shots_by_actor(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for shot in self.retry:
            grouped.setdefault(shot.actor_id, []).append(shot.shot_id)
        return grouped


def plan_retries(failed: Iterable[UnfinishedShot], max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> RetryPlan:
    """Retry each failed shot until it has been attempted ``max_attempts`` times in all, so a
    shot that always fails (e.g. a prompt the safety filter refuses) costs at most that many
    predictions. An interrupted attempt is always resumed: that pays for nothing new."""
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    shots = list(failed)
    again = [s for s in shots if s.attempts < max_attempts or s.status == INTERRUPTED]
    return RetryPlan(retry=again, exhausted=[s for s in shots if s not in again])


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


def describe_failed_shots(actor_id: str, failed: Sequence[UnfinishedShot], total: int) -> str:
    """One line for a person: which shots of the actor failed, why, and how to rerun them."""
    if not failed:
        return f"actor {actor_id}: no shot records a failure (see the run's error above)"
    return (
        f"actor {actor_id}: {len(failed)} of {total} shot(s) failed: {'; '.join(s.describe() for s in failed)}. "
        f"Rerun only these: select the FAILED training_image partitions in the UI and Materialize, "
        f"or run `actor-pipeline retry-failed --actor-id {actor_id}`"
    )

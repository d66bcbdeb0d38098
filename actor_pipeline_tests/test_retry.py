"""Finding failed shots and planning their reruns (plain functions over shot records)."""

import pytest

from actor_pipeline.errors import InputError
from actor_pipeline.generation.records import ShotRecord, save_record
from actor_pipeline.generation.types import ShotStatus
from actor_pipeline.registry import register_actor
from actor_pipeline.retry import FailedShot, describe_failed_shots, find_failed_shots, plan_retries, shot_ranges
from actor_pipeline.storage.local import LocalStorage

ORDER = ["s1", "s2", "s3", "s4", "s5", "s6"]


def record(shot_id: str, status: ShotStatus, attempts: int = 1, error: str | None = None) -> ShotRecord:
    return ShotRecord(
        shot_id=shot_id,
        index=1,
        status=status,
        fingerprint="f",
        prompt="p",
        seed=1,
        backend="b",
        model="m",
        attempts=attempts,
        error=error,
    )


@pytest.fixture
def alice(storage: LocalStorage, portrait_bytes: bytes) -> LocalStorage:
    registration, _ = register_actor(
        storage,
        actor_id="alice",
        user_id="u1",
        actor_type="human",
        actor_sex=None,
        portrait_source="p.jpg",
        portrait_bytes=portrait_bytes,
    )
    for shot in [
        record("s1", ShotStatus.SUCCEEDED),
        record("s2", ShotStatus.FAILED, 1, "boom"),
        record("s3", ShotStatus.CONTENT_FLAGGED, 3, "E005"),
        record("s4", ShotStatus.TIMED_OUT, 2),
    ]:
        save_record(storage, registration.layout, shot)
    return storage


def test_failed_shots_come_from_records_and_from_dagster(alice: LocalStorage) -> None:
    found = find_failed_shots(alice, "alice", ORDER, dagster_failed={"s5", "s1"}, in_progress={"s4"})
    assert found == [
        FailedShot("alice", "s1", "failed", 1, "the run making it failed"),  # a record says succeeded, Dagster not
        FailedShot("alice", "s2", "failed", 1, "boom"),
        FailedShot("alice", "s3", "content_flagged", 3, "E005"),
        FailedShot("alice", "s5", "failed", 0, "the run making it failed"),  # the run died before trying it
    ]  # s4 is being made right now; s6 never ran


def test_unregistered_actor_is_an_input_error(storage: LocalStorage) -> None:
    with pytest.raises(InputError, match="actor 'nobody' is not registered"):
        find_failed_shots(storage, "nobody", ORDER)


def test_attempts_are_bounded() -> None:
    shots = [
        FailedShot("a", "s1", "failed", 1, None),
        FailedShot("a", "s2", "failed", 3, None),
        FailedShot("b", "s1", "failed", 2, None),
    ]
    plan = plan_retries(shots, max_attempts=3)
    assert plan.shots_by_actor() == {"a": ["s1"], "b": ["s1"]}
    assert [s.shot_id for s in plan.exhausted] == ["s2"]
    assert plan_retries(shots, max_attempts=1).retry == []
    with pytest.raises(ValueError, match="max_attempts must be at least 1"):
        plan_retries(shots, max_attempts=0)


@pytest.mark.parametrize(
    ("shots", "ranges"),
    [
        (set(), []),
        ({"s2"}, [("s2", "s2")]),
        ({"s2", "s3", "s5"}, [("s2", "s3"), ("s5", "s5")]),
        ({"s1", "s6"}, [("s1", "s1"), ("s6", "s6")]),
        (set(ORDER), [("s1", "s6")]),
    ],
)
def test_shot_ranges_cover_exactly_the_given_shots(shots: set[str], ranges: list[tuple[str, str]]) -> None:
    assert shot_ranges(shots, ORDER) == ranges


def test_the_description_says_which_shots_why_and_how_to_rerun() -> None:
    text = describe_failed_shots("alice", [FailedShot("alice", "s3", "content_flagged", 1, "E005 flagged")], 17)
    assert text.startswith("actor alice: 1 of 17 shot(s) failed: s3 (content_flagged after 1 attempt(s): E005 flagged)")
    assert "actor-pipeline retry-failed --actor-id alice" in text
    assert "no shot records a failure" in describe_failed_shots("alice", [], 17)

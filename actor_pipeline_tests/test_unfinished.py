"""Finding unfinished shots and planning their reruns (plain functions over the shot journal)."""

from datetime import UTC, datetime

import pytest

from actor_pipeline.catalog.model import load_catalog
from actor_pipeline.catalog.prompts import build_prompt_set
from actor_pipeline.errors import InputError
from actor_pipeline.generation.journal import Attempt, ShotJournal, ShotRecord, Step, StoredImage
from actor_pipeline.generation.types import ShotStatus
from actor_pipeline.registry import NewActor, register_actor
from actor_pipeline.storage.folder import FolderStorage
from actor_pipeline.storage.lease import hold_actor
from actor_pipeline.unfinished import (
    INTERRUPTED,
    UnfinishedShot,
    describe_failed_shots,
    find_failed_shots,
    plan_retries,
    shot_ranges,
)

ORDER = ["s1", "s2", "s3", "s4", "s5", "s6"]
PROMPTS = build_prompt_set(load_catalog(), "alice", "person")
SHOTS = [shot.shot_id for shot in PROMPTS.shots][:6]


def record(shot_id: str, status: ShotStatus, attempts: int = 1, error: str | None = None) -> ShotRecord:
    made = status is ShotStatus.SUCCEEDED
    return ShotRecord(
        shot_id=shot_id,
        index=PROMPTS.shot(shot_id).index,
        status=status,
        fingerprint="f",
        prompt="p",
        seed=1,
        backend="b",
        model="m",
        image=StoredImage(key="k", sha256="s", width=1, height=1, bytes=1) if made else None,
        attempt=Attempt(step=Step.CREATED, started_at=datetime.now(UTC)) if status is ShotStatus.IN_PROGRESS else None,
        attempts=attempts,
        error=error,
    )


@pytest.fixture
def alice(storage: FolderStorage, portrait_bytes: bytes) -> FolderStorage:
    registration, _ = register_actor(storage, NewActor(actor_id="alice", portrait="p.jpg", user_id="u1"), portrait_bytes)
    storage.put(registration.layout.prompt_set, PROMPTS.model_dump_json().encode(), "application/json")
    journal = ShotJournal(storage, registration.layout)
    s1, s2, s3, s4, s5, _ = SHOTS
    for shot in [record(s1, ShotStatus.SUCCEEDED), record(s2, ShotStatus.FAILED, 1, "boom")]:
        journal.settle(shot)
    journal.settle(record(s3, ShotStatus.CONTENT_FLAGGED, 3, "E005"))
    journal.write(record(s4, ShotStatus.IN_PROGRESS, 3, "download failed"))  # a run died half-way
    return storage


def test_unfinished_shots_come_from_the_journal(alice: FolderStorage) -> None:
    s1, s2, s3, s4, s5, s6 = SHOTS
    assert find_failed_shots(alice, "alice", SHOTS) == [
        UnfinishedShot("alice", s2, "failed", 1, "boom"),
        UnfinishedShot("alice", s3, "content_flagged", 3, "E005"),
        UnfinishedShot("alice", s4, INTERRUPTED, 3, "download failed"),
        UnfinishedShot("alice", s5, "missing", 0, "never made: the run making it stopped first"),
        UnfinishedShot("alice", s6, "missing", 0, "never made: the run making it stopped first"),
    ]  # s1 is made


def test_an_actor_someone_is_making_has_no_failed_shots(alice: FolderStorage) -> None:
    with hold_actor(alice, "alice", "a test"):
        assert find_failed_shots(alice, "alice", SHOTS) == []
    assert find_failed_shots(alice, "alice", SHOTS)  # released: they are unfinished again


def test_an_interrupted_attempt_is_resumed_whatever_its_attempts(alice: FolderStorage) -> None:
    plan = plan_retries(find_failed_shots(alice, "alice", SHOTS), max_attempts=3)
    assert SHOTS[3] in plan.shots_by_actor()["alice"]  # 3 attempts, but resuming pays nothing new
    assert [s.shot_id for s in plan.exhausted] == [SHOTS[2]]


def test_unregistered_actor_is_an_input_error(storage: FolderStorage) -> None:
    with pytest.raises(InputError, match="actor 'nobody' is not registered"):
        find_failed_shots(storage, "nobody", ORDER)


def test_attempts_are_bounded() -> None:
    shots = [
        UnfinishedShot("a", "s1", "failed", 1, None),
        UnfinishedShot("a", "s2", "failed", 3, None),
        UnfinishedShot("b", "s1", "failed", 2, None),
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
    text = describe_failed_shots("alice", [UnfinishedShot("alice", "s3", "content_flagged", 1, "E005 flagged")], 17)
    assert text.startswith("actor alice: 1 of 17 shot(s) failed: s3 (content_flagged after 1 attempt(s): E005 flagged)")
    assert "actor-pipeline retry-failed --actor-id alice" in text
    assert "no shot records a failure" in describe_failed_shots("alice", [], 17)

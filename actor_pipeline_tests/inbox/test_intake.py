"""Taking portraits in from a local inbox: each registered once, each bad file reported once."""

import os
import time
from pathlib import Path

import pytest

from actor_pipeline.inbox import InboxCursor, Intake, LocalInbox, take_in
from actor_pipeline.registry import load_registration
from actor_pipeline.storage.base import StoredObject
from actor_pipeline.storage.local import LocalStorage

SETTLED = 10.0  # seconds a bad file must stay unchanged before it is reported


class Inbox:
    """A local inbox folder plus the cursor a sensor would carry from tick to tick."""

    def __init__(self, root: Path, storage: LocalStorage) -> None:
        self.root, self.storage = root, storage
        self.cursor = InboxCursor()

    def drop(self, key: str, data: bytes, mtime: float = 1_000.0) -> Path:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))
        return path

    def scan(self, now: float = 2_000.0, limit: int = 20) -> Intake:
        intake = take_in(LocalInbox(self.root), self.storage, self.cursor, now=now, settle_s=SETTLED, limit=limit)
        self.cursor = InboxCursor.parse(intake.cursor.serialize())  # as the sensor stores it
        return intake


@pytest.fixture
def inbox(tmp_path: Path, storage: LocalStorage) -> Inbox:
    return Inbox(tmp_path / "inbox", storage)


def actors(intake: Intake) -> list[str]:
    return [r.registration.actor_id for r in intake.registered]


def test_a_dropped_portrait_is_registered_once_with_its_sidecar(inbox: Inbox, portrait_bytes: bytes) -> None:
    inbox.drop("u1/alice.jpg", portrait_bytes)
    inbox.drop("u1/alice.json", b'{"actor_type": "human", "actor_sex": "female"}')

    first = inbox.scan()
    assert actors(first) == ["alice"] and first.problems == first.errors == []
    registration = load_registration(inbox.storage, "alice")
    assert (registration.user_id, registration.actor_sex, registration.descriptor) == ("u1", "female", "woman")
    assert registration.portrait_source == str(inbox.root.resolve() / "u1/alice.jpg")
    assert inbox.storage.get(registration.layout.source_portrait) == portrait_bytes
    assert first.registered[0].run_key.startswith("inbox:u1/alice.jpg@")

    assert inbox.scan().registered == []


def test_equal_mtimes_and_late_arrivals_with_older_mtimes_are_all_taken(inbox: Inbox, portrait_bytes: bytes) -> None:
    inbox.drop("u1/b.jpg", portrait_bytes, mtime=1_500.0)
    inbox.drop("u1/a.jpg", portrait_bytes, mtime=1_500.0)
    assert actors(inbox.scan()) == ["a", "b"]  # equal mtimes: ordered by key, none lost

    inbox.drop("u1/c.jpg", portrait_bytes, mtime=1_500.0)  # same mtime as those already taken
    inbox.drop("u2/d.jpg", portrait_bytes, mtime=10.0)  # moved in with an mtime from long ago
    assert actors(inbox.scan()) == ["d", "c"]
    assert inbox.scan().registered == []


def test_a_changed_portrait_or_a_new_sidecar_registers_again(inbox: Inbox, portrait_bytes: bytes) -> None:
    path = inbox.drop("u1/alice.jpg", portrait_bytes)
    first = inbox.scan()
    inbox.drop("u1/alice.json", b'{"actor_type": "creature"}')
    again = inbox.scan()
    assert actors(again) == ["alice"] and load_registration(inbox.storage, "alice").actor_type == "creature"
    assert again.registered[0].run_key != first.registered[0].run_key
    os.utime(path, (1_001.0, 1_001.0))  # re-dropped
    assert actors(inbox.scan()) == ["alice"]


def test_removed_files_leave_the_cursor_and_count_as_new_when_dropped_again(
    inbox: Inbox, portrait_bytes: bytes
) -> None:
    path = inbox.drop("u1/alice.jpg", portrait_bytes)
    inbox.scan()
    path.unlink()
    assert inbox.scan().registered == [] and inbox.cursor.handled == {}
    inbox.drop("u1/alice.jpg", portrait_bytes)
    assert actors(inbox.scan()) == ["alice"]


def test_a_bad_file_is_reported_once_and_does_not_block_the_others(inbox: Inbox, portrait_bytes: bytes) -> None:
    inbox.drop("u1/broken.jpg", b"not an image", mtime=900.0)  # oldest: taken first
    inbox.drop("u1/bad-sidecar.jpg", portrait_bytes)
    inbox.drop("u1/bad-sidecar.json", b'{"actor_sex": "robot"}')
    inbox.drop("u1/Bad Name.jpg", portrait_bytes)
    inbox.drop("u1/good.jpg", portrait_bytes)

    first = inbox.scan()
    assert actors(first) == ["good"]
    problems = sorted(first.problems)
    assert len(problems) == 3
    assert "u1/Bad Name.jpg: invalid actor id (file name) 'Bad Name'" in problems[0] and "rename it" in problems[0]
    assert "u1/bad-sidecar.jpg: the sidecar is invalid (actor_sex: unknown actor sex 'robot'" in problems[1]
    assert "u1/broken.jpg: " in problems[2]

    assert inbox.scan().problems == []  # reported once
    inbox.drop("u1/bad-sidecar.json", b'{"actor_sex": "male"}', mtime=1_200.0)  # fixed
    fixed = inbox.scan()
    assert actors(fixed) == ["bad-sidecar"] and fixed.problems == []


def test_a_file_still_being_written_is_not_reported_until_it_settles(inbox: Inbox, portrait_bytes: bytes) -> None:
    now = time.time()
    path = inbox.drop("u1/alice.jpg", portrait_bytes[:100], mtime=now)  # half copied
    assert inbox.scan(now=now + 1).problems == [] and inbox.cursor.handled == {}
    path.write_bytes(portrait_bytes)  # the copy finishes
    assert actors(inbox.scan(now=now + 2)) == ["alice"]

    inbox.drop("u1/never.jpg", b"truncated for good", mtime=now)
    assert inbox.scan(now=now + 3).problems == []
    assert len(inbox.scan(now=now + SETTLED).problems) == 1


def test_an_actor_id_taken_by_another_user_is_reported(inbox: Inbox, portrait_bytes: bytes) -> None:
    inbox.drop("u1/alice.jpg", portrait_bytes)
    inbox.scan()
    inbox.drop("u2/alice.jpg", portrait_bytes)
    [problem] = inbox.scan().problems
    assert "u2/alice.jpg: actor id 'alice' already belongs to user 'u1': choose another actor id" in problem


def test_a_limit_per_scan_leaves_the_rest_for_the_next(inbox: Inbox, portrait_bytes: bytes) -> None:
    for number in range(5):
        inbox.drop(f"u1/a{number}.jpg", portrait_bytes, mtime=1_000.0 + number)
    first = inbox.scan(limit=2)
    assert actors(first) == ["a0", "a1"] and first.waiting == 3
    assert actors(inbox.scan(limit=2)) == ["a2", "a3"]
    assert actors(inbox.scan(limit=2)) == ["a4"]


class FailingStorage(LocalStorage):
    """Storage that cannot write one actor's registration (a transient outage)."""

    def __init__(self, root: Path, failing: str) -> None:
        super().__init__(root)
        self.failing = failing

    def put(self, key: str, data: bytes, content_type: str, metadata: dict[str, str] | None = None) -> StoredObject:
        if self.failing in key:
            raise OSError("storage unavailable")
        return super().put(key, data, content_type, metadata)


def test_a_storage_failure_is_retried_next_scan_without_holding_up_others(
    tmp_path: Path, portrait_bytes: bytes
) -> None:
    storage = FailingStorage(tmp_path / "store", failing="alice")
    inbox = Inbox(tmp_path / "inbox", storage)
    inbox.drop("u1/alice.jpg", portrait_bytes, mtime=900.0)
    inbox.drop("u1/bob.jpg", portrait_bytes)
    first = inbox.scan()
    assert actors(first) == ["bob"] and first.problems == []
    assert len(first.errors) == 1 and "OSError: storage unavailable (trying again next scan)" in first.errors[0]
    storage.failing = "nobody"
    assert actors(inbox.scan()) == ["alice"]


def test_an_unreadable_cursor_says_how_to_reset_it() -> None:
    from actor_pipeline.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="reset it in the UI"):
        InboxCursor.parse('{"format": 99}')
    assert InboxCursor.parse(None) == InboxCursor()

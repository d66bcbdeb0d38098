"""Taking portraits in from a local inbox: each new one started once, each bad file reported
once, and nothing but listings and sidecars read (the run fetches and checks the portrait)."""

import os
import time
from pathlib import Path

import pytest

from actor_pipeline.inbox import FolderInbox, InboxCursor, Intake, take_in
from actor_pipeline.inbox.sources import InboxSource
from actor_pipeline.registry import NewActor

SETTLED = 10.0  # seconds a bad file must stay unchanged before it is reported


class Inbox:
    """A local inbox folder plus the cursor a sensor would carry from tick to tick."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cursor = InboxCursor()
        self.source: InboxSource = FolderInbox(root)

    def drop(self, key: str, data: bytes, mtime: float = 1_000.0) -> Path:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))
        return path

    def scan(self, now: float = 2_000.0, limit: int = 20) -> Intake:
        intake = take_in(self.source, self.cursor, now=now, settle_s=SETTLED, limit=limit)
        self.cursor = InboxCursor.parse(intake.cursor.serialize())  # as the sensor stores it
        return intake


@pytest.fixture
def inbox(tmp_path: Path) -> Inbox:
    return Inbox(tmp_path / "inbox")


def actors(intake: Intake) -> list[str]:
    return [a.new.actor_id for a in intake.arrived]


def test_a_dropped_portrait_starts_its_actor_once_with_its_sidecar(inbox: Inbox, portrait_bytes: bytes) -> None:
    inbox.drop("u1/alice.jpg", portrait_bytes)
    inbox.drop("u1/alice.json", b'{"actor_type": "human", "actor_sex": "female"}')

    first = inbox.scan()
    assert first.problems == first.errors == []
    assert [a.new for a in first.arrived] == [
        NewActor(actor_id="alice", portrait=str(inbox.root / "u1/alice.jpg"), user_id="u1", actor_sex="female")
    ]
    assert first.arrived[0].run_key.startswith("inbox:u1/alice.jpg@") and not first.arrived[0].train
    assert inbox.scan().arrived == []


def test_the_portrait_itself_is_never_read_by_a_scan(inbox: Inbox) -> None:
    class Counting(FolderInbox):
        reads: list[str] = []

        def read(self, key: str, max_bytes: int) -> bytes:
            self.reads.append(key)
            return super().read(key, max_bytes)

    inbox.source = Counting(inbox.root)
    for number in range(50):
        inbox.drop(f"u1/a{number}.jpg", b"\xff\xd8 a 30 MB portrait, as far as the scan knows")
    inbox.drop("u1/a7.json", b'{"actor_type": "creature"}')
    assert len(inbox.scan(limit=100).arrived) == 50
    assert Counting.reads == ["u1/a7.json"]  # a tick stays cheap with many files waiting


def test_equal_mtimes_and_late_arrivals_with_older_mtimes_are_all_taken(inbox: Inbox, portrait_bytes: bytes) -> None:
    inbox.drop("u1/b.jpg", portrait_bytes, mtime=1_500.0)
    inbox.drop("u1/a.jpg", portrait_bytes, mtime=1_500.0)
    assert actors(inbox.scan()) == ["a", "b"]  # equal mtimes: ordered by key, none lost

    inbox.drop("u1/c.jpg", portrait_bytes, mtime=1_500.0)  # same mtime as those already taken
    inbox.drop("u2/d.jpg", portrait_bytes, mtime=10.0)  # moved in with an mtime from long ago
    assert actors(inbox.scan()) == ["d", "c"]
    assert inbox.scan().arrived == []


def test_a_changed_portrait_or_a_new_sidecar_starts_it_again(inbox: Inbox, portrait_bytes: bytes) -> None:
    path = inbox.drop("u1/alice.jpg", portrait_bytes)
    first = inbox.scan()
    inbox.drop("u1/alice.json", b'{"actor_type": "creature"}')
    again = inbox.scan()
    assert actors(again) == ["alice"] and again.arrived[0].new.actor_type == "creature"
    assert again.arrived[0].run_key != first.arrived[0].run_key
    os.utime(path, (1_001.0, 1_001.0))  # re-dropped
    assert actors(inbox.scan()) == ["alice"]


def test_removed_files_leave_the_cursor_and_count_as_new_when_dropped_again(
    inbox: Inbox, portrait_bytes: bytes
) -> None:
    path = inbox.drop("u1/alice.jpg", portrait_bytes)
    inbox.scan()
    path.unlink()
    assert inbox.scan().arrived == [] and inbox.cursor.handled == {}
    inbox.drop("u1/alice.jpg", portrait_bytes)
    assert actors(inbox.scan()) == ["alice"]


def test_a_bad_file_is_reported_once_and_does_not_block_the_others(inbox: Inbox, portrait_bytes: bytes) -> None:
    inbox.drop("u1/bad-sidecar.jpg", portrait_bytes, mtime=900.0)
    inbox.drop("u1/bad-sidecar.json", b'{"actor_sex": "robot"}', mtime=900.0)
    inbox.drop("u1/Bad Name.jpg", portrait_bytes)
    inbox.drop("u1/good.jpg", portrait_bytes)

    first = inbox.scan()
    assert actors(first) == ["good"]
    problems = sorted(first.problems)
    assert len(problems) == 2
    assert "u1/Bad Name.jpg: invalid actor id (file name) 'Bad Name'" in problems[0] and "rename it" in problems[0]
    assert "u1/bad-sidecar.jpg: the sidecar is invalid (actor_sex: unknown actor sex 'robot'" in problems[1]

    assert inbox.scan().problems == []  # reported once
    inbox.drop("u1/bad-sidecar.json", b'{"actor_sex": "male"}', mtime=1_200.0)  # fixed
    fixed = inbox.scan()
    assert actors(fixed) == ["bad-sidecar"] and fixed.problems == []


def test_a_file_still_being_written_is_not_reported_until_it_settles(inbox: Inbox, portrait_bytes: bytes) -> None:
    now = time.time()
    inbox.drop("u1/alice.jpg", portrait_bytes, mtime=now)
    inbox.drop("u1/alice.json", b'{"actor_ty', mtime=now)  # half written
    assert inbox.scan(now=now + 1).problems == [] and inbox.cursor.handled == {}
    assert len(inbox.scan(now=now + SETTLED).problems) == 1


def test_a_limit_per_scan_leaves_the_rest_for_the_next(inbox: Inbox, portrait_bytes: bytes) -> None:
    for number in range(5):
        inbox.drop(f"u1/a{number}.jpg", portrait_bytes, mtime=1_000.0 + number)
    first = inbox.scan(limit=2)
    assert actors(first) == ["a0", "a1"] and first.waiting == 3
    assert actors(inbox.scan(limit=2)) == ["a2", "a3"]
    assert actors(inbox.scan(limit=2)) == ["a4"]


def test_an_unreadable_sidecar_is_retried_next_scan_without_holding_up_others(inbox: Inbox, portrait_bytes: bytes) -> None:
    class Flaky(FolderInbox):
        failing = True

        def read(self, key: str, max_bytes: int) -> bytes:
            if self.failing and key == "u1/alice.json":
                raise OSError("connection reset")
            return super().read(key, max_bytes)

    inbox.source = flaky = Flaky(inbox.root)
    inbox.drop("u1/alice.jpg", portrait_bytes, mtime=900.0)
    inbox.drop("u1/alice.json", b"{}", mtime=900.0)
    inbox.drop("u1/bob.jpg", portrait_bytes)
    first = inbox.scan()
    assert actors(first) == ["bob"] and first.problems == []
    assert len(first.errors) == 1 and "OSError: connection reset (trying again next scan)" in first.errors[0]
    flaky.failing = False
    assert actors(inbox.scan()) == ["alice"]


def test_an_unreadable_cursor_says_how_to_reset_it() -> None:
    from actor_pipeline.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="reset it in the UI"):
        InboxCursor.parse('{"format": 99}')
    assert InboxCursor.parse(None) == InboxCursor()

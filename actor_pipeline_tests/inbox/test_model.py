"""Grouping an inbox listing into items, and reading sidecars."""

import pytest

from actor_pipeline.errors import InputError
from actor_pipeline.inbox import InboxEntry, Sidecar, group_entries, parse_sidecar


def entry(key: str, version: str = "v1", modified: float = 100.0) -> InboxEntry:
    return InboxEntry(key, 10, modified, version)


def test_portraits_pair_with_their_sidecars() -> None:
    items, rejected = group_entries(
        [entry("u1/alice.jpg"), entry("u1/alice.json", "s1", 150.0), entry("u1/bob.WEBP"), entry("u2/alice.png")]
    )
    assert rejected == []
    by_key = {i.key: i for i in items}
    alice = by_key["u1/alice.jpg"]
    assert (alice.user_id, alice.actor_id, alice.sidecar and alice.sidecar.key) == ("u1", "alice", "u1/alice.json")
    assert alice.version == "v1+s1" and alice.modified == 150.0
    assert by_key["u1/bob.WEBP"].sidecar is None and by_key["u1/bob.WEBP"].version == "v1"
    assert by_key["u2/alice.png"].user_id == "u2"


def test_hidden_files_folder_markers_and_lone_sidecars_are_ignored() -> None:
    items, rejected = group_entries(
        [entry(".DS_Store"), entry("u1/.alice.jpg.part"), entry(".tmp/u1/x.jpg"), entry("u1/"), entry("u1/carol.json")]
    )
    assert items == [] and rejected == []


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("alice.jpg", "not where the inbox looks"),
        ("u1/sub/alice.jpg", "not where the inbox looks"),
        ("u1/alice.gif", "unsupported file type '.gif'"),
        ("u1/notes", "unsupported file type '(none)'"),
        ("u1/Alice Smith.jpg", "invalid actor id (file name) 'Alice Smith'"),
        ("bad user/alice.jpg", "invalid user id (folder name) 'bad user'"),
    ],
)
def test_misplaced_or_misnamed_files_are_rejected_with_the_fix(key: str, problem: str) -> None:
    items, rejected = group_entries([entry(key)])
    assert items == [] and len(rejected) == 1
    assert rejected[0].key == key and problem in rejected[0].problem


def test_two_portraits_for_one_actor_are_ambiguous() -> None:
    items, rejected = group_entries([entry("u1/alice.jpg", "a"), entry("u1/alice.png", "b", 200.0)])
    assert items == []
    [bad] = rejected
    assert bad.key == "u1/alice.*" and bad.modified == 200.0
    assert "2 portraits for one actor (alice.jpg, alice.png): keep only one" in bad.problem


def test_sidecar_fields() -> None:
    assert parse_sidecar(b'{"actor_type": "robotic"}') == Sidecar(actor_type="robotic", actor_sex=None)
    assert parse_sidecar(b"{}") == Sidecar()


def test_a_sidecar_may_ask_to_train_the_lora() -> None:
    assert parse_sidecar(b'{"actor_sex": "male", "train": true}') == Sidecar(actor_sex="male", train=True)
    assert not parse_sidecar(b'{"actor_sex": "male"}').train  # training is paid: only when asked
    with pytest.raises(InputError, match=r"train: Input should be a valid boolean.*only actor_type, actor_sex, train"):
        parse_sidecar(b'{"train": "please"}')


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"actor_gender": "female"}', "actor_gender: Extra inputs are not permitted"),
        (b'["human"]', "use a JSON object with only actor_type, actor_sex, train"),
        (b'{"actor_type": 3}', "actor_type: Input should be a valid string"),
        (b" " * 70_000, "larger than 64000 bytes"),
    ],
)
def test_bad_sidecars_name_the_problem_and_the_fix(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        parse_sidecar(data)


def test_sidecar_values_are_checked_and_normalized() -> None:
    assert parse_sidecar(b'{"actor_type": " Human ", "actor_sex": "FEMALE"}') == Sidecar(
        actor_type="human", actor_sex="female"
    )
    with pytest.raises(InputError, match="actor_type: unknown actor type 'alien': use one of human"):
        parse_sidecar(b'{"actor_type": "alien"}')

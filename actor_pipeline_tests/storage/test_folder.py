from pathlib import Path

import pytest

from actor_pipeline.errors import InputError
from actor_pipeline.storage import folder
from actor_pipeline.storage.folder import FolderStorage
from actor_pipeline.storage.layout import ActorLayout, registration_key


def test_roundtrip_with_metadata(storage: FolderStorage) -> None:
    stored = storage.put("a/b.jpg", b"123", "image/jpeg", {"shot-id": "x"})
    assert storage.get("a/b.jpg") == b"123"
    assert storage.head("a/b.jpg") == stored
    assert stored.metadata == {"shot-id": "x"} and stored.content_type == "image/jpeg" and stored.size == 3
    assert storage.head("a/missing") is None
    with pytest.raises(FileNotFoundError):
        storage.get("a/missing")
    assert storage.url("a/b.jpg").startswith("file:///") and storage.url("a/b.jpg").endswith("/a/b.jpg")


def test_identical_put_does_not_rewrite(storage: FolderStorage) -> None:
    storage.put("k.json", b"{}", "application/json")
    path = storage.root / "k.json"
    before = path.stat().st_mtime_ns
    storage.put("k.json", b"{}", "application/json")
    assert path.stat().st_mtime_ns == before
    storage.put("k.json", b"{1}", "application/json")
    assert storage.get("k.json") == b"{1}"


def test_list_skips_sidecars_and_leaves_no_temp_files(storage: FolderStorage) -> None:
    for key in ("p/1", "p/2", "q/3"):
        storage.put(key, b"x", "text/plain")
    assert storage.list("p/") == ["p/1", "p/2"]
    assert not [p for p in storage.root.rglob("*.tmp")]
    assert (storage.root / "p/1").stat().st_mode & 0o044  # readable by other tools


def test_hand_replaced_file_loses_stale_metadata(storage: FolderStorage) -> None:
    storage.put("img.jpg", b"old", "image/jpeg", {"seed": "1"})
    (storage.root / "img.jpg").write_bytes(b"new")
    head = storage.head("img.jpg")
    assert head and head.metadata == {} and head.size == 3


def test_a_put_cut_short_never_leaves_an_object_without_its_metadata(
    storage: FolderStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed between the object's two files (the data and its metadata sidecar) leaves
    no object, or the one before with its own metadata: never a paid image whose metadata, from
    which its shot record is rebuilt, is missing."""
    storage.put("img.jpg", b"old", "image/jpeg", {"seed": "1"})
    writes = []

    def killed_after_one(path: Path, data: bytes) -> None:
        if writes:
            raise KeyboardInterrupt  # the process ends here
        writes.append(path)
        real_write(path, data)

    real_write = folder.atomic_write
    monkeypatch.setattr(folder, "atomic_write", killed_after_one)
    for key in ("img.jpg", "new.jpg"):
        writes.clear()
        with pytest.raises(KeyboardInterrupt):
            storage.put(key, b"new", "image/jpeg", {"seed": "2"})
    monkeypatch.undo()
    assert storage.head("new.jpg") is None
    old = storage.head("img.jpg")
    assert old is not None and storage.get("img.jpg") == b"old" and old.metadata == {}  # stale, as a hand edit


def test_keys_cannot_escape_the_folder(tmp_path: Path) -> None:
    storage = FolderStorage(tmp_path / "root")
    with pytest.raises(ValueError, match="escapes"):
        storage.put("../outside.txt", b"x", "text/plain")
    assert not (tmp_path / "outside.txt").exists()


def test_layout_matches_the_seed() -> None:
    layout = ActorLayout("user_1", "actor-9")
    assert layout.image(3) == "user_1/custom-actors/actor-9/training_data/actor_actor-9_td_03.jpg"
    assert layout.manifest == "user_1/custom-actors/actor-9/training_data/manifest.json"
    assert layout.grid == "user_1/custom-actors/actor-9/training_data/training_data_grid.jpg"
    assert registration_key("actor-9") == "_registry/actors/actor-9.json"


@pytest.mark.parametrize("bad", ["", "a/b", "..", "a|b", "x" * 65, "é", "a b", "a\nb"])
def test_layout_refuses_unsafe_ids(bad: str) -> None:
    with pytest.raises(InputError, match="A-Z, a-z, 0-9"):
        ActorLayout("user", bad)
    with pytest.raises(InputError, match="user id"):
        ActorLayout(bad, "actor")

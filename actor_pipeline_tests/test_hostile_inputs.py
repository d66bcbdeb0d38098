"""Bad input at the entry points: a clear error, and nothing an earlier run made is touched."""

import hashlib
import shutil
from pathlib import Path

import pytest
from PIL import Image

from actor_pipeline import ActorTrainingDataGenerator, InputError, PortraitError
from actor_pipeline.cli import main
from actor_pipeline.registry import load_registration
from actor_pipeline.samples import SAMPLE_PORTRAIT
from actor_pipeline.storage.folder import FolderStorage
from actor_pipeline_tests.support.images import encode
from actor_pipeline_tests.support.made_once import MadeOnce


def snapshot(root: Path) -> dict[str, str]:
    """Every file the pipeline keeps (not the Dagster instance), with its content hash."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".dagster" not in p.parts
    }


def tiny_png() -> bytes:
    return encode(Image.new("RGB", (120, 200), (1, 2, 3)), "PNG")


def make_alices_set(root: Path) -> None:
    good = root / "good.jpg"
    good.write_bytes(SAMPLE_PORTRAIT.read_bytes())
    assert main(["generate", str(good), "--actor-id", "alice", "--out", str(root / "out")]) == 0


@pytest.fixture
def made_set(made_once: MadeOnce) -> Path:
    """An output folder holding alice's finished set (and its Dagster instance), made once."""
    return made_once("hostile-alice", make_alices_set) / "out"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"<!DOCTYPE html><html><body>Not found</body></html>", "HTML"),
        (b'{"error": "not an image"}', "JSON"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "truncated"),
        (tiny_png(), "at least 256"),
    ],
)
def test_a_bad_portrait_for_an_existing_actor_loses_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, made_set: Path, content: bytes, message: str
) -> None:
    out = tmp_path / "out"
    shutil.copytree(made_set, out)  # alice's set, made once for every case
    before = snapshot(out)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(content)
    capsys.readouterr()  # what making the set printed, when this test's worker made it

    assert main(["generate", str(bad), "--actor-id", "alice", "--out", str(out)]) == 2
    err = capsys.readouterr().err  # one line: the preview's notice comes only with a first image
    assert message.lower() in err.lower() and err.count("\n") == 1 and "Traceback" not in err
    assert snapshot(out) == before

    with pytest.raises(PortraitError) as raised:
        ActorTrainingDataGenerator(output_dir=str(out)).generate_training_data(str(bad), "default", "alice")
    assert isinstance(raised.value, ValueError) and str(raised.value) in err
    assert snapshot(out) == before


def test_an_actor_id_cannot_change_owner(tmp_path: Path, portrait_bytes: bytes) -> None:
    generator = ActorTrainingDataGenerator(output_dir=str(tmp_path))
    generator.generate_training_data("", "owner", "shared", portrait_buffer=portrait_bytes)
    before = snapshot(tmp_path)
    with pytest.raises(InputError, match="already belongs to user 'owner'"):
        generator.generate_training_data("", "intruder", "shared", portrait_buffer=portrait_bytes)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("actor_id", ["../../etc", "a|b", "", "a" * 65, "x/y", "x\x00y"])
def test_storage_lookups_refuse_unsafe_partition_keys(tmp_path: Path, actor_id: str) -> None:
    """A partition key typed into the Dagster UI reaches the assets as an actor id."""
    with pytest.raises(InputError, match="invalid actor id"):
        load_registration(FolderStorage(tmp_path), actor_id)

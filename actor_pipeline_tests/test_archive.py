"""``actor-pipeline archive``: old actors leave the Dagster instance's partitions (the actor list,
asset pages and status queries stop paying for them), their files stay, and making an actor
again brings it back at no cost."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from actor_pipeline.cli import main
from actor_pipeline.commands.archive import archive_actors
from actor_pipeline.commands.instance import open_instance
from actor_pipeline.defs.partitions import actors_partitions
from actor_pipeline.defs.resources import ImageGeneratorResource
from actor_pipeline.defs.settings import PipelineSettings
from actor_pipeline.errors import InputError
from actor_pipeline.samples import SAMPLE_PORTRAIT
from actor_pipeline.storage.lease import hold_actor
from actor_pipeline_tests.support.backends import FlakyBackend


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out) if out else None


def test_archived_actors_leave_the_partitions_keep_their_files_and_come_back(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = FlakyBackend()
    monkeypatch.setattr(ImageGeneratorResource, "create_backend", lambda self, catalog: backend)
    out = str(tmp_path / "out")
    for actor in ("old", "kept"):
        assert cli(capsys, "generate", str(SAMPLE_PORTRAIT), "--actor-id", actor, "--out", out)[0] == 0
    settings = PipelineSettings.configure(storage={"local_dir": out})
    made = len(backend.calls)

    assert [r.actor_id for r in archive_actors(settings, None, 1) if r.archived] == []  # both registered just now
    code, rows = cli(capsys, "archive", "--actor-id", "old", "--out", out)
    assert code == 0 and rows == [{"actor_id": "old", "archived": True, "reason": "partition removed"}]
    with open_instance(settings.resolved_instance_dir) as instance:
        assert instance.get_dynamic_partitions(actors_partitions.name) == ["kept"]
    manifest = Path(out, "default", "custom-actors", "old", "training_data", "manifest.json")
    assert manifest.exists()  # the files stay
    assert cli(capsys, "status", "--actor-id", "old", "--out", out, "--json")[0] == 0  # and status reads them

    assert cli(capsys, "generate", str(SAMPLE_PORTRAIT), "--actor-id", "old", "--out", out)[0] == 0
    with open_instance(settings.resolved_instance_dir) as instance:
        assert sorted(instance.get_dynamic_partitions(actors_partitions.name)) == ["kept", "old"]
    assert len(backend.calls) == made, "making an archived actor again paid for images it had"


def test_archive_by_age_dry_run_and_an_actor_being_made(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageGeneratorResource, "create_backend", lambda self, catalog: FlakyBackend())
    out = str(tmp_path / "out")
    for actor in ("a", "b"):
        assert cli(capsys, "generate", str(SAMPLE_PORTRAIT), "--actor-id", actor, "--out", out)[0] == 0
    settings = PipelineSettings.configure(storage={"local_dir": out})
    later = datetime.now(UTC) + timedelta(days=31)

    planned = archive_actors(settings, None, 30, dry_run=True, now=later)
    assert [(r.actor_id, r.archived) for r in planned] == [("a", True), ("b", True)]
    storage = settings.storage.create_storage()
    with hold_actor(storage, "b", "a maker"):
        done = archive_actors(settings, None, 30, now=later)
    assert [(r.actor_id, r.archived) for r in done] == [("a", True), ("b", False)]
    assert "being made by a maker" in done[1].reason
    with open_instance(settings.resolved_instance_dir) as instance:
        assert instance.get_dynamic_partitions(actors_partitions.name) == ["b"]
    with pytest.raises(InputError, match="--actor-id"):
        archive_actors(settings, None, None)

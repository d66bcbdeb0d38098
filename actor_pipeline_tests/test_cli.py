"""The ``actor-pipeline`` command: JSON on stdout, progress on stderr, exit codes 0 / 1 / 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from actor_pipeline.cli import main
from actor_pipeline.defs.resources import ImageGeneratorResource
from actor_pipeline_tests.support.backends import FlakyBackend


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_generate_prints_the_result_as_json(capsys: pytest.CaptureFixture[str], tmp_path: Path, portrait_file: Path) -> None:
    code, out, err = run(capsys, "generate", str(portrait_file), "--actor-id", "bob", "--user-id", "u7",
                         "--actor-type", "robotic", "--out", str(tmp_path / "out"), "--debug-dir", str(tmp_path / "dbg"))
    assert code == 0, err
    result = json.loads(out)
    assert result["total_training_images"] == result["target_training_images"] == 17
    assert result["failed"] == [] and result["backend"] == "preview"
    assert result["manifest_url"].endswith("/u7/custom-actors/bob/training_data/manifest.json")
    assert result["grid_url"].endswith("/training_data_grid.jpg")
    assert "PREVIEW renderer" in err and "bob: making the set" in err
    debug = tmp_path / "dbg"
    assert len(list(debug.glob("training_data_output_*.jpg"))) == 17
    assert len(list(debug.glob("request_payload_*.json"))) == 17 and (debug / "training_data_grid.jpg").is_file()
    assert (tmp_path / "out/.state/dagster").is_dir()  # without DAGSTER_HOME, the instance is in the state folder


def test_some_failed_shots_exit_1_with_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, portrait_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = FlakyBackend(fail={"pen_ink"})
    monkeypatch.setattr(ImageGeneratorResource, "create_backend", lambda self, catalog: backend)
    code, out, _ = run(capsys, "generate", str(portrait_file), "--actor-id", "c", "--out", str(tmp_path / "o"))
    result = json.loads(out)
    assert code == 1 and result["total_training_images"] == 16
    assert [f["shot_id"] for f in result["failed"]] == ["pen_ink"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--actor-id", "../etc"], "invalid actor id '../etc'"),
        (["--actor-id", "a|b"], "invalid actor id"),
        (["--actor-id", "ok", "--user-id", "a/b"], "invalid user id"),
        (["--actor-id", "ok", "--actor-type", "alien"], "unknown actor type 'alien': use one of human, creature"),
        (["--actor-id", "ok", "--actor-sex", "x"], "unknown actor sex 'x': use one of male, female"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, portrait_file: Path, argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, "generate", str(portrait_file), "--out", str(tmp_path / "o"), *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "o" / "_registry").exists()


def test_missing_portrait_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "generate", str(tmp_path / "nope.jpg"), "--actor-id", "a", "--out", str(tmp_path))
    assert code == 2 and "not found" in err and "Traceback" not in err



@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["typo.jpg", "--actor-id", "alice"], "portrait file not found: typo.jpg: check the path"),
        (
            ["portrait.jpg", "--actor-id", "al ice"],
            "invalid actor id 'al ice': use 1-64 characters from A-Z, a-z, 0-9, '_' and '-'",
        ),
        (
            ["portrait.jpg", "--actor-id", "alice", "--actor-type", "dragon"],
            "unknown actor type 'dragon': use one of human, creature, robotic, anthropomorphic, mythical",
        ),
    ],
)
def test_a_new_users_mistake_is_one_line_with_nothing_before_it(
    tmp_path: Path, portrait_file: Path, argv: list[str], line: str
) -> None:
    """As a new user meets it: a process of its own, no token (the preview renderer's notice
    comes with its first image, never before an error), no instance yet."""
    fresh = ("REPLICATE_API_TOKEN", "ACTOR_PIPELINE_", "DAGSTER_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(fresh)}
    done = subprocess.run(
        [sys.executable, "-m", "actor_pipeline.cli", "generate", *argv],
        cwd=portrait_file.parent, env=env, capture_output=True, text=True, timeout=120,
    )
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"actor-pipeline: error: {line}\n")

def test_demo_status_and_prompts(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "demo", "--out", str(tmp_path))
    assert code == 0 and json.loads(out)["total_training_images"] == 17
    code, out, _ = run(capsys, "status", "--actor-id", "demo", "--out", str(tmp_path), "--json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 17
    assert {(r["status"], r["partition"]) for r in rows} == {("succeeded", "materialized")}
    code, out, _ = run(capsys, "status", "--actor-id", "demo", "--out", str(tmp_path))
    assert "rain_street_run" in out and "materialized" in out
    code, out, _ = run(capsys, "prompts", "--actor-type", "human", "--actor-sex", "male", "--json")
    prompts = json.loads(out)
    assert len(prompts) == 17 and "man" in prompts[0]["prompt"]
    code, _, err = run(capsys, "status", "--actor-id", "ghost", "--out", str(tmp_path))
    assert code == 2 and "not registered" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["generate"])
    assert exit_info.value.code == 2


def test_help_for_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "actor_pipeline.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "usage: actor-pipeline" in done.stdout
    for command in ("generate", "demo", "status", "prompts"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0 and f"usage: actor-pipeline {command}" in capsys.readouterr().out


def test_a_custom_catalog_drives_partitions_prompts_grid_and_manifest(tmp_path: Path, portrait_file: Path) -> None:
    catalog = tmp_path / "three.yaml"
    catalog.write_text(
        "shots:\n"
        "  - {id: hero, category: photoreal, label: Hero shot, template: 'The {descriptor} poses.', "
        "preview: {style: photo, framing: close_up}}\n"
        "  - {id: ink, category: bw_stylized, label: Ink, template: 'An ink {descriptor}.', preview: {style: pen_ink}}\n"
        "  - {id: paint, category: color_stylized, label: Paint, template: 'A painted {descriptor}.', "
        "preview: {style: gouache}}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "actor_pipeline.cli", "generate", str(portrait_file), "--actor-id", "tri",
         "--actor-type", "creature", "--out", str(tmp_path / "o"), "--catalog", str(catalog)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["target_training_images"] == result["total_training_images"] == 3
    manifest = json.loads((tmp_path / "o/default/custom-actors/tri/training_data/manifest.json").read_text())
    assert [(i["shot_id"], i["prompt"]) for i in manifest["images"]] == [
        ("hero", "The creature poses."), ("ink", "An ink creature."), ("paint", "A painted creature.")]
    assert manifest["catalog"] == str(catalog)
    # Its shots are other partition keys: the run used an instance of its own, never the shared
    # one (<state>/dagster, which `make ui` serves with the code location's catalog).
    state = tmp_path / "o/.state"
    assert not (state / "dagster").exists()
    [own] = state.glob("dagster-catalog-*")
    assert any(own.iterdir())

    # With $DAGSTER_HOME naming the shared instance, such a run is refused before anything is made.
    refused = subprocess.run(
        [sys.executable, "-m", "actor_pipeline.cli", "generate", str(portrait_file), "--actor-id", "tri2",
         "--actor-type", "creature", "--out", str(tmp_path / "o"), "--catalog", str(catalog)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "DAGSTER_HOME": str(tmp_path / "shared")},
    )
    assert refused.returncode == 2, refused.stderr
    assert "other shots than the catalog of the Dagster instance in $DAGSTER_HOME" in refused.stderr
    assert "unset DAGSTER_HOME" in refused.stderr
    assert not (tmp_path / "shared").exists() and not (tmp_path / "o/default/custom-actors/tri2").exists()

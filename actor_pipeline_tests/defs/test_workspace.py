"""How the UI finds the code and the instance: ``make ui`` serves the instance folder the CLI
uses, and ``dg`` (``[tool.dg]``) loads the same code location as ``workspace.yaml``."""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from actor_pipeline.commands.instance import open_instance
from actor_pipeline.defs.settings import PipelineSettings

REPO = Path(__file__).resolve().parents[2]
DG = Path(sys.executable).with_name("dg")
DAGSTER = Path(sys.executable).with_name("dagster")
# The variables that decide the instance folder.
_FOLDER_VARIABLES = ("DAGSTER_HOME", "ACTOR_PIPELINE_OUTPUT_DIR", "ACTOR_PIPELINE_STATE_DIR")


@pytest.mark.parametrize(
    ("variables", "folder"),
    [
        ({}, "output/.state/dagster"),
        ({"ACTOR_PIPELINE_OUTPUT_DIR": "out"}, "out/.state/dagster"),
        ({"ACTOR_PIPELINE_OUTPUT_DIR": "out", "ACTOR_PIPELINE_STATE_DIR": "state"}, "state/dagster"),
        ({"ACTOR_PIPELINE_STATE_DIR": "state", "DAGSTER_HOME": "{tmp}/home"}, "home"),
    ],
)
def test_make_ui_serves_the_instance_folder_the_cli_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], folder: str
) -> None:
    variables = {name: value.format(tmp=tmp_path) for name, value in variables.items()}
    monkeypatch.chdir(tmp_path)  # relative folders are taken from where the command runs
    for name in _FOLDER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with open_instance(PipelineSettings.configure().resolved_instance_dir) as instance:
        assert Path(instance.root_directory) == tmp_path / folder

    made = subprocess.run(
        ["make", "-s", "-f", str(REPO / "Makefile"), "instance-home"],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k not in _FOLDER_VARIABLES} | variables,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert Path(made.stdout.strip()) == tmp_path / folder


def test_pyproject_and_workspace_yaml_declare_the_same_code_location(tmp_path: Path) -> None:
    # With no -w, dg and `dagster dev` read [tool.dg] and ignore workspace.yaml.
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dg"]["project"]
    [entry] = yaml.safe_load((REPO / "workspace.yaml").read_text())["load_from"]
    assert (
        (project["code_location_name"], project["code_location_target_module"])
        == (entry["python_module"]["location_name"], entry["python_module"]["module_name"])
        == ("actor_pipeline", "actor_pipeline.definitions")
    )
    # Dagster loads workspace.yaml as that location ([tool.dg]'s is the next test's `dg check defs`).
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"} | {"DAGSTER_HOME": str(tmp_path)}
    validated = subprocess.run(
        [str(DAGSTER), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    output = validated.stdout + validated.stderr
    assert validated.returncode == 0 and "Validation successful for code location actor_pipeline." in output, output


def test_dg_checks_and_lists_the_definitions_without_warnings() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "VIRTUAL_ENV")}
    checked = subprocess.run(
        [str(DG), "check", "defs"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0, checked.stderr
    listed = subprocess.run(
        [str(DG), "list", "defs", "--json"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    defs = json.loads(listed.stdout)
    assert {"normalized_portrait", "training_image", "training_manifest"} <= {a["asset_key"] for a in defs["assets"]}
    assert "portrait_inbox" in {s["name"] for s in defs["sensors"]}
    for output in (checked.stdout + checked.stderr, listed.stderr):
        assert "Warning" not in output and "warning" not in output, output

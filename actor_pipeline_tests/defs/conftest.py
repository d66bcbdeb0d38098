"""A code location wired to test resources (``pipeline.Pipeline``), and the shipped instance."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from actor_pipeline.defs.resources import ImageGeneratorResource
from actor_pipeline_tests.defs.pipeline import Pipeline, build_pipeline
from actor_pipeline_tests.replicate_emulator import ReplicateEmulator
from actor_pipeline_tests.support.backends import FlakyBackend, generator_for


@pytest.fixture
def pipeline(tmp_path: Path, instance: dg.DagsterInstance, flaky: FlakyBackend) -> Pipeline:
    """Images from the counting ``FlakyBackend``."""
    return build_pipeline(tmp_path, instance, generator_for(flaky), flaky)


@pytest.fixture
def scheduled_pipeline(tmp_path: Path, sqlite_instance: dg.DagsterInstance, flaky: FlakyBackend) -> Pipeline:
    """``pipeline`` on an instance that a schedule's context can reopen from its reference."""
    return build_pipeline(tmp_path, sqlite_instance, generator_for(flaky), flaky)


@pytest.fixture
def replicate_pipeline(tmp_path: Path, instance: dg.DagsterInstance, emulator: ReplicateEmulator) -> Pipeline:
    """Images from the Replicate backend, talking to the emulator (which counts predictions)."""
    return build_pipeline(
        tmp_path, instance, ImageGeneratorResource(
            backend="replicate", replicate_api_token=dg.EnvVar("REPLICATE_API_TOKEN"), max_concurrency=17
        ), FlakyBackend()
    )


@pytest.fixture
def shipped_instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """An instance configured by ``deploy/dagster.yaml`` (SQLite in a temporary folder)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "deploy" / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance

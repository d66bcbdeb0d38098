import re
from pathlib import Path

import dagster as dg
import pytest

from actor_pipeline.catalog.model import load_catalog
from actor_pipeline.defs.resources import ImageGeneratorResource, ReplicateConfig, StorageResource
from actor_pipeline.defs.settings import PipelineSettings
from actor_pipeline.errors import ConfigurationError
from actor_pipeline.generation.preview_backend import PreviewBackend
from actor_pipeline.generation.replicate import ReplicateBackend, ReplicateSettings
from actor_pipeline.storage.folder import FolderStorage
from actor_pipeline.storage.s3 import S3Storage


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTOR_PIPELINE_MAX_CONCURRENCY", "17")
    monkeypatch.setenv("ACTOR_PIPELINE_OUTPUT_DIR", "/tmp/sets")
    settings = PipelineSettings.configure()
    assert (settings.generator.max_concurrency, settings.storage.local_dir) == (17, "/tmp/sets")
    assert settings.resources()["generator"].max_concurrency == 17
    monkeypatch.setenv("ACTOR_PIPELINE_MAX_CONCURRENCY", "lots")
    with pytest.raises(ConfigurationError, match="ACTOR_PIPELINE_MAX_CONCURRENCY"):
        PipelineSettings.configure()


def test_replicate_waits_from_the_environment_apply_to_images_and_trainings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTOR_PIPELINE_OUTAGE_WAIT_S", "20")
    monkeypatch.setenv("ACTOR_PIPELINE_CREATE_SETTLE_S", "5")
    settings = PipelineSettings.configure()
    for configured in (settings.generator.replicate, settings.trainer):
        assert (configured.outage_wait_s, configured.create_settle_s) == (20, 5)
    monkeypatch.setenv("ACTOR_PIPELINE_CREATE_SETTLE_S", "-1")
    with pytest.raises(ConfigurationError, match="ACTOR_PIPELINE_CREATE_SETTLE_S is '-1': use a number of seconds"):
        PipelineSettings.configure()


def test_auto_backend_follows_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = load_catalog()
    assert isinstance(ImageGeneratorResource().create_backend(catalog), PreviewBackend)
    token = {"replicate_api_token": "r8_x"}
    backend = ImageGeneratorResource(**token).create_backend(catalog)
    assert isinstance(backend, ReplicateBackend) and backend.settings.model_dump() == ReplicateSettings().model_dump()
    # From the environment, the settings hand the resource a dg.EnvVar: the variable is what
    # Dagster records and shows, never the value.
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_x")
    configured = PipelineSettings.configure().resources()["generator"]
    assert isinstance(configured.replicate_api_token, dg.EnvVar)
    assert isinstance(PipelineSettings.configure().generator.create_backend(catalog), ReplicateBackend)


def test_replicate_settings_are_the_generators_nested_config() -> None:
    replicate = ReplicateConfig(safety_tolerance=1, aspect_ratio="4:3")
    backend = ImageGeneratorResource(replicate=replicate, replicate_api_token="r8_x").create_backend(load_catalog())
    assert isinstance(backend, ReplicateBackend) and backend.settings is replicate  # no copy to drift
    with pytest.raises(ConfigurationError, match="at most 2 when an input image is sent"):
        ReplicateConfig(safety_tolerance=6)


@dg.asset
def _replicate_settings(generator: ImageGeneratorResource) -> ReplicateSettings:
    backend = generator.create_backend(load_catalog())
    assert isinstance(backend, ReplicateBackend)
    return backend.settings


def _run_with(replicate: dict[str, object], **generator: object) -> dg.ExecuteInProcessResult:
    configured = ImageGeneratorResource(backend="preview", replicate_api_token="r8_configured")
    defs = dg.Definitions(assets=[_replicate_settings], resources={"generator": configured})
    run_config = {"resources": {"generator": {"config": {"replicate": replicate, **generator}}}}
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(run_config=run_config, raise_on_error=False)


def test_run_config_for_some_fields_keeps_the_environments_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run config for a resource resets the fields it leaves out to their defaults (Dagster 1.13):
    here ``backend`` back to auto and the token to unset. The environment's token still applies,
    so a Launchpad user tuning one setting does not silently get preview images."""
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_env")
    assert _run_with({"safety_tolerance": 1}).success  # the asset asserts a Replicate backend
    monkeypatch.delenv("REPLICATE_API_TOKEN")
    assert not _run_with({"safety_tolerance": 1}).success  # no token anywhere: the preview renderer


def test_run_config_reaches_the_backend() -> None:
    result = _run_with({"safety_tolerance": 1, "aspect_ratio": "4:3"}, backend="replicate", replicate_api_token="r8_x")
    settings = result.output_for_node("_replicate_settings")
    assert (settings.safety_tolerance, settings.aspect_ratio, settings.model) == (1, "4:3", ReplicateSettings().model)


@pytest.mark.parametrize(
    ("replicate", "message"),
    [
        ({"safety_tolerance": 6}, "safety_tolerance 6 is refused: .* set safety_tolerance to 0, 1 or 2"),
        ({"poll_interval_s": 0}, "poll_interval_s 0.0 is refused: input should be greater than 0"),
        ({"aspect_ratio": "16:10"}, "aspect_ratio '16:10' is not accepted by flux-kontext-pro: use one of"),
    ],
)
def test_a_bad_run_config_value_fails_the_run_naming_the_field(replicate: dict[str, object], message: str) -> None:
    # Dagster's config schema checks only the types; the settings' own checks refuse the value
    # when the resource is built, before any asset runs.
    result = _run_with(replicate, backend="replicate", replicate_api_token="r8_x")
    [failure] = [event for event in result.all_events if event.event_type_value == "RESOURCE_INIT_FAILURE"]
    assert not result.success and re.search(message, failure.event_specific_data.error.message)


def test_auto_storage_follows_the_bucket(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert isinstance(StorageResource(local_dir=str(tmp_path)).create_storage(), FolderStorage)
    with pytest.raises(ConfigurationError, match="AWS_USER_FILES_BUCKET is not set"):
        StorageResource(backend="s3").create_storage()
    monkeypatch.setenv("AWS_USER_FILES_BUCKET", "my-bucket")
    monkeypatch.setenv("AWS_REGION", "us-west-1")
    assert isinstance(StorageResource().create_storage(), S3Storage)
    assert isinstance(StorageResource(backend="local", local_dir=str(tmp_path)).create_storage(), FolderStorage)

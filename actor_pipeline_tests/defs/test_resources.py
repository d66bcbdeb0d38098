from pathlib import Path

import dagster as dg
import pytest

from actor_pipeline.catalog.model import load_catalog
from actor_pipeline.defs.resources import ImageGeneratorResource, PipelineSettings, StorageResource
from actor_pipeline.errors import ConfigurationError
from actor_pipeline.generation.preview_backend import PreviewBackend
from actor_pipeline.generation.replicate import ReplicateBackend
from actor_pipeline.storage.local import LocalStorage
from actor_pipeline.storage.s3 import S3Storage


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTOR_PIPELINE_MAX_CONCURRENCY", "17")
    monkeypatch.setenv("ACTOR_PIPELINE_OUTPUT_DIR", "/tmp/sets")
    settings = PipelineSettings.from_env()
    assert (settings.max_concurrency, settings.output_dir) == (17, "/tmp/sets")
    assert settings.resources()["generator"].max_concurrency == 17
    monkeypatch.setenv("ACTOR_PIPELINE_MAX_CONCURRENCY", "lots")
    with pytest.raises(ConfigurationError, match="ACTOR_PIPELINE_MAX_CONCURRENCY"):
        PipelineSettings.from_env()


def test_auto_backend_follows_the_token(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    catalog = load_catalog()
    assert isinstance(ImageGeneratorResource().create_backend(catalog), PreviewBackend)
    assert "offline PREVIEW renderer" in caplog.text
    token = {"replicate_api_token": "r8_x"}
    backend = ImageGeneratorResource(safety_tolerance=1, aspect_ratio="4:3", **token).create_backend(catalog)
    assert isinstance(backend, ReplicateBackend) and backend.aspect_ratio == "4:3"
    with pytest.raises(ConfigurationError, match="at most 2"):
        ImageGeneratorResource(safety_tolerance=6, **token).create_backend(catalog)
    # From the environment, the settings hand the resource a dg.EnvVar: the variable is what
    # Dagster records and shows, never the value.
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_x")
    configured = PipelineSettings().resources()["generator"]
    assert isinstance(configured.replicate_api_token, dg.EnvVar)
    assert isinstance(PipelineSettings().generator().create_backend(catalog), ReplicateBackend)


def test_auto_storage_follows_the_bucket(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert isinstance(StorageResource(local_dir=str(tmp_path)).create_storage(), LocalStorage)
    with pytest.raises(ConfigurationError, match="AWS_USER_FILES_BUCKET is not set"):
        StorageResource(backend="s3").create_storage()
    monkeypatch.setenv("AWS_USER_FILES_BUCKET", "my-bucket")
    monkeypatch.setenv("AWS_REGION", "us-west-1")
    assert isinstance(StorageResource().create_storage(), S3Storage)
    assert isinstance(StorageResource(backend="local", local_dir=str(tmp_path)).create_storage(), LocalStorage)

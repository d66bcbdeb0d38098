"""Fixtures shared by the whole suite."""

import io
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import dagster as dg
import pytest
from PIL import Image

from actor_pipeline.catalog.model import Catalog, load_catalog
from actor_pipeline.defs import resources as resources_module
from actor_pipeline.defs.resources import ImageGeneratorResource
from actor_pipeline.generation.preview_backend import PreviewBackend
from actor_pipeline.generation.types import (
    GeneratedImage,
    ImageBackend,
    ShotGenerationError,
    ShotGenerator,
    ShotJob,
    ShotProgress,
)
from actor_pipeline.samples import SAMPLE_PORTRAIT
from actor_pipeline.storage.local import LocalStorage
from actor_pipeline_tests.replicate_emulator import Behaviour, ReplicateEmulator


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment() -> Iterator[None]:
    """Tests must never pick up a developer's token, bucket or instance from the environment.
    Session-wide, so module-scoped fixtures are isolated too; a test's own ``monkeypatch``
    changes are undone after it, back to this."""
    with pytest.MonkeyPatch.context() as patch:
        for name in (
            "REPLICATE_API_TOKEN",
            "AWS_USER_FILES_BUCKET",
            "ACTOR_PIPELINE_CATALOG",
            "ACTOR_PIPELINE_STATE_DIR",
            "ACTOR_PIPELINE_MAX_CONCURRENCY",
            "DAGSTER_HOME",
        ):
            patch.delenv(name, raising=False)
        # Identity checks load dlib's models (seconds per run, where the extra is installed):
        # only the tests about them turn them on.
        patch.setenv("ACTOR_PIPELINE_QC_IDENTITY", "0")
        yield


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first (the UI's, then the interrupted CLI's): xdist hands the first tests
    out round-robin, so they start together and overlap the rest instead of ending the run alone."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("e2e") else 1 if "durability" in item.path.parts else 2)


@pytest.fixture(autouse=True)
def _fresh_notices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees the once-per-process backend notice afresh."""
    monkeypatch.setattr(resources_module, "_announced", set())


@pytest.fixture
def portrait_bytes() -> bytes:
    return SAMPLE_PORTRAIT.read_bytes()


@pytest.fixture
def portrait_file(tmp_path: Path, portrait_bytes: bytes) -> Path:
    path = tmp_path / "portrait.jpg"
    path.write_bytes(portrait_bytes)
    return path


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[ReplicateEmulator]:
    """The Replicate emulator, with the environment pointing the real client at it."""
    with ReplicateEmulator(behaviour=Behaviour(latency_s=0.05)) as running:
        for name, value in running.env().items():
            monkeypatch.setenv(name, value)
        yield running


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "store")


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def jpeg(size: tuple[int, int] = (640, 800), color: tuple[int, int, int] = (150, 120, 100)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG")
    return buffer.getvalue()


class FlakyBackend:
    """The preview backend, counting calls and failing the shots named in ``fail``."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.inner: ImageBackend = PreviewBackend(load_catalog())
        self.name, self.model, self.aspect_ratio = self.inner.name, self.inner.model, self.inner.aspect_ratio
        self.fail = set(fail or ())
        self.calls: list[str] = []

    def fingerprint_params(self) -> Mapping[str, object]:
        return self.inner.fingerprint_params()

    @asynccontextmanager
    async def session(self, portrait_jpeg: bytes) -> AsyncIterator[ShotGenerator]:
        async with self.inner.session(portrait_jpeg) as inner:
            yield _FlakySession(self, inner)


class _FlakySession:
    def __init__(self, backend: FlakyBackend, inner: ShotGenerator) -> None:
        self.backend, self.inner = backend, inner

    async def generate(self, job: ShotJob, progress: ShotProgress) -> GeneratedImage:
        self.backend.calls.append(job.shot_id)
        if job.shot_id in self.backend.fail:
            raise ShotGenerationError(f"injected failure for {job.shot_id}")
        return await self.inner.generate(job, progress)


# Dagster may rebuild resources from their config, so the backend object is looked up by name.
_BACKENDS: dict[str, ImageBackend] = {}


class InjectedGeneratorResource(ImageGeneratorResource):
    """A generator resource whose backend is the test's own object, registered by ``name``."""

    name: str

    def create_backend(self, catalog: Catalog) -> ImageBackend:
        return _BACKENDS[self.name]


def generator_for(backend: ImageBackend, max_concurrency: int | None = None) -> InjectedGeneratorResource:
    _BACKENDS[str(id(backend))] = backend
    return InjectedGeneratorResource(name=str(id(backend)), max_concurrency=max_concurrency)


@pytest.fixture
def flaky() -> FlakyBackend:
    return FlakyBackend()

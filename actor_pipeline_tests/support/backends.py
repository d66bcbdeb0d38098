"""Image backends for tests: ``FlakyBackend`` (the preview backend, counting calls and failing
chosen shots) and ``generator_for``, which puts any backend object behind the generator resource."""

import dataclasses
import hashlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from actor_pipeline.catalog.model import Catalog, load_catalog
from actor_pipeline.defs.resources import ImageGeneratorResource
from actor_pipeline.generation.preview_backend import PreviewBackend
from actor_pipeline.generation.types import (
    GeneratedImage,
    ImageBackend,
    ShotGenerationError,
    ShotGenerator,
    ShotJob,
    ShotProgress,
    Usage,
)

# The preview renderer is deterministic: each worker renders a (portrait, shot, seed) once, which
# takes about 0.8 CPU-s off every set a test makes again.
_RENDERED: dict[tuple[str, str, int], GeneratedImage] = {}


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
            yield _FlakySession(self, inner, hashlib.sha256(portrait_jpeg).hexdigest())


class _FlakySession:
    def __init__(self, backend: FlakyBackend, inner: ShotGenerator, portrait_sha: str) -> None:
        self.backend, self.inner, self.portrait_sha = backend, inner, portrait_sha

    async def generate(self, job: ShotJob, progress: ShotProgress) -> GeneratedImage:
        self.backend.calls.append(job.shot_id)
        if job.shot_id in self.backend.fail:
            raise ShotGenerationError(f"injected failure for {job.shot_id}")
        key = (self.portrait_sha, job.shot_id, job.seed)
        if key not in _RENDERED:
            _RENDERED[key] = await self.inner.generate(job, progress)
        return dataclasses.replace(_RENDERED[key], usage=Usage())  # the preview costs nothing


# Dagster may rebuild resources from their config, so the backend object is looked up by name.
_BACKENDS: dict[str, ImageBackend] = {}


class InjectedGeneratorResource(ImageGeneratorResource):
    """A generator resource whose backend is the test's own object, registered by ``name``."""

    name: str

    def create_backend(self, catalog: Catalog) -> ImageBackend:
        return _BACKENDS[self.name]


def generator_for(
    backend: ImageBackend, max_concurrency: int | None = None, identity_check: bool = False
) -> InjectedGeneratorResource:
    """Identity checks are off unless asked for, as everywhere in the suite (the root conftest)."""
    _BACKENDS[str(id(backend))] = backend
    return InjectedGeneratorResource(
        name=str(id(backend)), max_concurrency=max_concurrency, identity_check=identity_check
    )

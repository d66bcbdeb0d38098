"""Fixtures for the Replicate backend tests: an emulator the real client reaches through the
environment, and settings fast enough for tests (tiny latencies, polls and backoffs)."""

import asyncio
import io
import os
from collections.abc import Sequence

import pytest
from PIL import Image

from actor_pipeline.generation.replicate import ReplicateBackend, ReplicateSettings
from actor_pipeline.generation.types import GeneratedImage, ShotGenerationError, ShotJob
from actor_pipeline_tests.replicate_emulator.driver import generate_all

_FAST = {
    "poll_interval_s": 0.02,
    "retry_base_delay_s": 0.01,
    "retry_max_delay_s": 0.2,
    "creates_per_minute": 60_000.0,
}


def fast_settings(**overrides: object) -> ReplicateSettings:
    """Settings with test-sized delays; ``overrides`` win."""
    return ReplicateSettings(**{**_FAST, **overrides})  # type: ignore[arg-type]


def run(
    backend: ReplicateBackend, portrait: bytes, jobs: Sequence[ShotJob], max_concurrency: int = 8
) -> list[GeneratedImage | ShotGenerationError]:
    """The shots' results, each run in a fresh event loop as the runner's asset would."""
    return asyncio.run(generate_all(backend, portrait, jobs, max_concurrency))


def succeeded(results: Sequence[GeneratedImage | ShotGenerationError]) -> list[GeneratedImage]:
    """The images, failing the test with the errors' messages if any shot failed."""
    errors = [str(r) for r in results if isinstance(r, ShotGenerationError)]
    assert not errors, errors
    return [r for r in results if isinstance(r, GeneratedImage)]


@pytest.fixture
def portrait() -> bytes:
    """A small JPEG portrait: sent inline."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 80), (150, 120, 100)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def large_portrait() -> bytes:
    """A JPEG portrait above the 256 KB data-URI limit: uploaded through the Files API."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (640, 640), os.urandom(640 * 640 * 3)).save(buffer, "JPEG", quality=95)
    assert len(buffer.getvalue()) > 256_000
    return buffer.getvalue()

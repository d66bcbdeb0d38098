"""Fixtures for the Replicate backend tests: portraits small and large (the emulator the real
client reaches through the environment is the root conftest's)."""

import os

import pytest
from PIL import Image

from actor_pipeline_tests.support.images import encode, jpeg


@pytest.fixture
def portrait() -> bytes:
    """A small JPEG portrait: sent inline."""
    return jpeg((64, 80))


@pytest.fixture
def large_portrait() -> bytes:
    """A JPEG portrait above the 256 KB data-URI limit: uploaded through the Files API."""
    data = encode(Image.frombytes("RGB", (640, 640), os.urandom(640 * 640 * 3)), "JPEG", quality=95)
    assert len(data) > 256_000
    return data

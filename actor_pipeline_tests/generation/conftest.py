"""Fixtures for the Replicate backend tests: portraits small and large (the emulator the real
client reaches through the environment is the root conftest's)."""

import io
import os

import pytest
from PIL import Image


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

"""The preview renders of the 17 catalog shots, rendered once for all quality tests."""

import pytest
from PIL import Image

from actor_pipeline.catalog.model import load_catalog
from actor_pipeline.generation.preview_backend import JPEG_QUALITY
from actor_pipeline.render.preview import render_preview
from actor_pipeline.samples import SAMPLE_PORTRAIT
from actor_pipeline_tests.quality.crafted import jpeg
from actor_pipeline_tests.quality.previews import Preview


@pytest.fixture(scope="session")
def portrait() -> Image.Image:
    with Image.open(SAMPLE_PORTRAIT) as image:
        return image.convert("RGB")


@pytest.fixture(scope="session")
def previews(portrait: Image.Image) -> dict[str, Preview]:
    """Shot id -> preview, in catalog order."""
    return {
        shot.id: Preview(shot.category, jpeg(render_preview(portrait, shot.preview, shot.index), JPEG_QUALITY))
        for shot in load_catalog().shots
    }

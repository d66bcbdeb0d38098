"""The preview renders of the 17 catalog shots, rendered once for all quality tests."""

from pathlib import Path

import pytest
from PIL import Image

from actor_pipeline.catalog.model import load_catalog
from actor_pipeline.generation.preview_backend import JPEG_QUALITY
from actor_pipeline.render.preview import render_preview
from actor_pipeline.samples import SAMPLE_PORTRAIT
from actor_pipeline_tests.quality.crafted import jpeg
from actor_pipeline_tests.quality.previews import Preview
from actor_pipeline_tests.support.made_once import MadeOnce

CATALOG = load_catalog()


@pytest.fixture(scope="session")
def portrait() -> Image.Image:
    with Image.open(SAMPLE_PORTRAIT) as image:
        return image.convert("RGB")


@pytest.fixture(scope="session")
def previews(portrait: Image.Image, made_once: MadeOnce) -> dict[str, Preview]:
    """Shot id -> preview, in catalog order."""

    def render(folder: Path) -> None:
        for shot in CATALOG.shots:
            (folder / f"{shot.id}.jpg").write_bytes(
                jpeg(render_preview(portrait, shot.preview, shot.index), JPEG_QUALITY)
            )

    folder = made_once("quality-previews", render)
    return {shot.id: Preview(shot.category, (folder / f"{shot.id}.jpg").read_bytes()) for shot in CATALOG.shots}

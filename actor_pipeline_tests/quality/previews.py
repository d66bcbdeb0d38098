"""``Preview``: one catalog shot's preview render, as the quality checks receive it."""

from dataclasses import dataclass

from PIL import Image

from actor_pipeline.catalog.model import Category
from actor_pipeline_tests.quality.crafted import decoded


@dataclass(frozen=True)
class Preview:
    category: Category
    data: bytes  # JPEG, as the PreviewBackend stores it

    @property
    def image(self) -> Image.Image:
        return decoded(self.data)

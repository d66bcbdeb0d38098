"""The offline preview backend: restyles the portrait locally for $0, with no credentials.

It is not a generative model; it exists so the whole graph runs on a fresh machine and a person
can check shot order, labels, storage and the grid before paying for real images.
"""

import asyncio
import functools
import io
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from PIL import Image

from actor_pipeline.catalog.model import Catalog
from actor_pipeline.generation.types import GeneratedImage, ShotJob, ShotProgress
from actor_pipeline.render.preview import OUTPUT_SIZE, PreviewLook, prepare_portrait, render_preview

log = logging.getLogger(__name__)

RENDERER_VERSION = "1"
JPEG_QUALITY = 90


class PreviewBackend:
    name = "preview"
    model = f"actor-pipeline/preview-renderer@{RENDERER_VERSION}"
    aspect_ratio = "16:9"

    def __init__(self, catalog: Catalog) -> None:
        self._looks = {shot.id: shot.preview for shot in catalog.shots}

    def fingerprint_params(self) -> Mapping[str, object]:
        return {"size": OUTPUT_SIZE, "quality": JPEG_QUALITY, "looks": {k: repr(v) for k, v in self._looks.items()}}

    @asynccontextmanager
    async def session(self, portrait_jpeg: bytes) -> AsyncIterator["_PreviewSession"]:
        _announce()
        portrait = Image.open(io.BytesIO(portrait_jpeg)).convert("RGB")  # decoded once, shared read-only
        yield _PreviewSession(portrait, self._looks)


@functools.cache
def _announce() -> None:
    """Said once per process, when the first preview image is made: not before an error that
    ends a command first, which is then its one line."""
    log.warning(
        "images come from the offline PREVIEW renderer (restyled portraits, not a generative model, $0): "
        "set REPLICATE_API_TOKEN to generate real images"
    )


class _PreviewSession:
    def __init__(self, portrait: Image.Image, looks: Mapping[str, PreviewLook]) -> None:
        self._portrait = prepare_portrait(portrait)  # once, not once per shot
        self._looks = looks

    async def generate(self, job: ShotJob, progress: ShotProgress) -> GeneratedImage:
        """Render the shot. Nothing is created or paid, so there is no step to report."""
        look = self._looks[job.shot_id]
        # Pillow releases the GIL in its C loops, so threads render shots in parallel.
        data = await asyncio.to_thread(self._render, look, job.seed)
        return GeneratedImage(
            data=data,
            width=OUTPUT_SIZE[0],
            height=OUTPUT_SIZE[1],
            request_payload={
                "backend": PreviewBackend.name,
                "model": PreviewBackend.model,
                "prompt": job.prompt,
                "seed": job.seed,
                "look": {"style": look.style, "framing": look.framing, "light": look.light},
            },
        )

    def _render(self, look: PreviewLook, seed: int) -> bytes:
        buffer = io.BytesIO()
        render_preview(self._portrait, look, seed).save(buffer, "JPEG", quality=JPEG_QUALITY)
        return buffer.getvalue()

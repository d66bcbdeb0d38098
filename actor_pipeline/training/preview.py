"""The $0 stand-in trainer of the preview backend: it "trains" at once and paints validation
images from the portrait, so a demo run without a token shows the whole graph. It learns
nothing; its figures say only that the plumbing works."""

import hashlib
import io
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from PIL import Image

from actor_pipeline.render.preview import PreviewLook, render_preview
from actor_pipeline.training.settings import TrainingSettings
from actor_pipeline.training.types import Painted, TrainingState

_LOOK = PreviewLook(style="photo", framing="medium", light="daylight")


class PreviewTrainer:
    """``Trainer`` that creates nothing and costs nothing."""

    name = "preview"

    def __init__(self, settings: TrainingSettings, portrait_jpeg: bytes) -> None:
        self.settings = settings
        self._portrait = portrait_jpeg

    def price_per_second_usd(self) -> float:
        return 0.0

    def price_per_image_usd(self) -> float:
        return 0.0

    @asynccontextmanager
    async def session(self) -> AsyncIterator["_PreviewSession"]:
        yield _PreviewSession(self._portrait)


class _PreviewSession:
    def __init__(self, portrait_jpeg: bytes) -> None:
        self._portrait = portrait_jpeg

    async def account(self) -> str:
        return "preview"

    async def ensure_destination(self, destination: str) -> None:
        return None

    async def upload(self, data: bytes, filename: str) -> str:
        return f"preview://bundle/{hashlib.sha256(data).hexdigest()[:16]}/{filename}"

    async def create(self, input_: Mapping[str, Any], destination: str) -> TrainingState:
        return _trained(f"preview-{uuid.uuid4().hex[:12]}", str(input_["input_images"]))

    async def find(self, input_images: str, since: datetime) -> TrainingState | None:
        return None  # nothing is ever created elsewhere

    async def find_bundle(self, input_: Mapping[str, Any], bundle_sha256: str, since: datetime) -> TrainingState | None:
        return None  # the stand-in keeps no account: nothing is paid to lose

    async def get(self, training_id: str) -> TrainingState:
        return _trained(training_id)

    async def cancel(self, training_id: str) -> TrainingState:
        return _trained(training_id)

    async def paint(self, prompt: str, seed: int, weights_url: str, since: datetime) -> Painted:
        with Image.open(io.BytesIO(self._portrait)) as portrait:
            image = render_preview(portrait, _LOOK, seed, (768, 768))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        return Painted(buffer.getvalue(), None)


def _trained(training_id: str, input_images: str | None = None) -> TrainingState:
    """A stand-in training: done as soon as it is asked for, at no cost."""
    return TrainingState(
        id=training_id,
        status="succeeded",
        created_at=datetime.now(UTC),
        input_images=input_images,
        logs="preview: nothing is trained\n",
        output={"version": f"preview/lora:{training_id}", "weights": f"preview://lora/{training_id}"},
        predict_time_s=0.0,
    )

"""Resources: where images come from (generator), where they go (storage), debug output."""

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import dagster as dg

from actor_pipeline.catalog.model import Catalog
from actor_pipeline.generation.preview_backend import PreviewBackend
from actor_pipeline.generation.types import ImageBackend
from actor_pipeline.outputs.debug import DebugWriter
from actor_pipeline.storage.base import Storage
from actor_pipeline.storage.local import LocalStorage

log = logging.getLogger(__name__)

OUTPUT_DIR_ENV = "ACTOR_PIPELINE_OUTPUT_DIR"
DEBUG_DIR_ENV = "ACTOR_PIPELINE_DEBUG_DIR"
_announced: set[str] = set()


def _announce_once(message: str) -> None:
    if message not in _announced:
        _announced.add(message)
        log.warning(message)


class ImageGeneratorResource(dg.ConfigurableResource):
    """Makes the images. ``auto`` uses Replicate when ``REPLICATE_API_TOKEN`` is set, otherwise
    the offline preview renderer."""

    backend: Literal["auto", "preview", "replicate"] = "auto"
    max_concurrency: int = 8

    def resolved_backend(self) -> str:
        if self.backend != "auto":
            return self.backend
        if os.environ.get("REPLICATE_API_TOKEN"):
            return "replicate"
        _announce_once(
            "REPLICATE_API_TOKEN is not set: using the offline PREVIEW renderer (restyled portraits, "
            "not a generative model, $0). Set REPLICATE_API_TOKEN to generate real images."
        )
        return "preview"

    def create_backend(self, catalog: Catalog) -> ImageBackend:
        chosen = self.resolved_backend()
        if chosen == "preview":
            return PreviewBackend(catalog)
        raise NotImplementedError("the Replicate backend is not wired in yet")


class StorageResource(dg.ConfigurableResource):
    """Keeps the training sets. ``auto`` is S3 when a bucket is configured, else a local folder."""

    backend: Literal["auto", "local", "s3"] = "auto"
    local_dir: str = "output"

    def create_storage(self) -> Storage:
        return LocalStorage(self.local_dir)

    def s3_reader(self) -> Callable[[str], bytes] | None:
        """Reads ``s3://`` portrait sources, when S3 is configured."""
        return None


class DebugResource(dg.ConfigurableResource):
    """With a directory, also writes the seed's debug files (images, payloads, grid) there."""

    directory: str | None = None

    def writer(self) -> DebugWriter | None:
        return DebugWriter(self.directory) if self.directory else None


@dataclass(frozen=True)
class PipelineSettings:
    """The knobs a user turns from the CLI, the Python API or the environment."""

    backend: str = "auto"
    storage: str = "auto"
    output_dir: str = "output"
    debug_dir: str | None = None
    max_concurrency: int = 8

    @classmethod
    def from_env(cls) -> "PipelineSettings":
        return cls(
            output_dir=os.environ.get(OUTPUT_DIR_ENV) or "output",
            debug_dir=os.environ.get(DEBUG_DIR_ENV) or None,
        )

    def resources(self) -> dict[str, Any]:
        return {
            "generator": ImageGeneratorResource(backend=self.backend, max_concurrency=self.max_concurrency),  # type: ignore[arg-type]
            "storage": StorageResource(backend=self.storage, local_dir=self.output_dir),  # type: ignore[arg-type]
            "debug": DebugResource(directory=self.debug_dir),
        }

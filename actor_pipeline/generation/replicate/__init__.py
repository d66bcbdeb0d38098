"""The Replicate image backend (``black-forest-labs/flux-kontext-pro``)."""

from actor_pipeline.generation.replicate.backend import ReplicateBackend
from actor_pipeline.generation.replicate.settings import ASPECT_RATIOS, ReplicateSettings

__all__ = ["ASPECT_RATIOS", "ReplicateBackend", "ReplicateSettings"]

"""The five assets of an actor's training set."""

from actor_pipeline.defs.assets.grid import debug_grid
from actor_pipeline.defs.assets.images import training_image
from actor_pipeline.defs.assets.manifest import training_manifest
from actor_pipeline.defs.assets.portrait import normalized_portrait
from actor_pipeline.defs.assets.prompts import prompt_set

ALL_ASSETS = [normalized_portrait, prompt_set, training_image, debug_grid, training_manifest]
GROUP = "training_set"

__all__ = ["ALL_ASSETS", "GROUP", "debug_grid", "normalized_portrait", "prompt_set", "training_image", "training_manifest"]

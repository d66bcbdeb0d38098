"""The six assets of an actor's training set, its trained LoRA and the LoRA's validation (made
only when asked for), and the inbox's rejected files."""

import dagster as dg

from actor_pipeline.defs.assets.bundle import lora_bundle
from actor_pipeline.defs.assets.grid import debug_grid
from actor_pipeline.defs.assets.images import training_image
from actor_pipeline.defs.assets.inbox import inbox_rejects
from actor_pipeline.defs.assets.manifest import training_manifest
from actor_pipeline.defs.assets.portrait import normalized_portrait
from actor_pipeline.defs.assets.prompts import prompt_set
from actor_pipeline.defs.assets.training import lora_validation, trained_lora

ALL_ASSETS: list[dg.AssetsDefinition | dg.AssetSpec] = [
    normalized_portrait,
    prompt_set,
    training_image,
    debug_grid,
    lora_bundle,
    training_manifest,
    trained_lora,
    lora_validation,
    inbox_rejects,
]

__all__ = [
    "ALL_ASSETS",
    "debug_grid",
    "inbox_rejects",
    "lora_bundle",
    "lora_validation",
    "normalized_portrait",
    "prompt_set",
    "training_image",
    "trained_lora",
    "training_manifest",
]

"""Asset jobs: the three stages of an actor's set (they cannot share a run: their partitions
differ), plus the job the nightly schedule reruns failed shots with."""

import dagster as dg

from actor_pipeline.defs.assets import (
    debug_grid,
    lora_bundle,
    normalized_portrait,
    prompt_set,
    training_image,
    training_manifest,
)

prepare_actor = dg.define_asset_job(
    "prepare_actor",
    selection=[normalized_portrait, prompt_set],
    description="Stage 1 of an actor's set: normalize the portrait and plan the prompts.",
)
make_training_images = dg.define_asset_job(
    "make_training_images",
    selection=[training_image],
    description="Stage 2: generate an actor's shots, all in one run (a partition range).",
)
finish_training_set = dg.define_asset_job(
    "finish_training_set",
    selection=[debug_grid, lora_bundle, training_manifest],
    description="Stage 3: draw the contact sheet, zip the LoRA bundle and write the manifest, failed shots included.",
)
retry_failed_images = dg.define_asset_job(
    "retry_failed_images",
    selection=[training_image],
    description="Regenerate failed shots only (one run per range of consecutive failed shots).",
)

ALL_JOBS = [prepare_actor, make_training_images, finish_training_set, retry_failed_images]

"""Asset jobs: the three stages of an actor's set (their partitions differ, so a run holds one
stage's assets; ``make_training_images`` may record the other stages' materializations itself, see
``TrainingImageConfig``). ``make_training_images`` also reruns failed shots (the nightly schedule's
runs)."""

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
    description="Stage 2: generate an actor's shots, all in one run (a partition range); also reruns failed shots.",
)
finish_training_set = dg.define_asset_job(
    "finish_training_set",
    selection=[debug_grid, lora_bundle, training_manifest],
    description="Stage 3: draw the contact sheet, zip the LoRA bundle and write the manifest, failed shots included.",
)
ALL_JOBS = [prepare_actor, make_training_images, finish_training_set]

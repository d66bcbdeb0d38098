"""How an actor's LoRA is trained and validated on Replicate, validated when constructed."""

import hashlib
import json
import re
from typing import Any

from pydantic import Field, field_validator

from actor_pipeline.generation.replicate.settings import MODEL_PATTERN, CheckedSettings
from actor_pipeline.training.record import VALIDATION_PRICE_USD

DEFAULT_TRAINER = "ostris/flux-dev-lora-trainer"
# Pinned: a trainer's newer version may change its inputs or its results. Check the current ones
# with GET /v1/models/ostris/flux-dev-lora-trainer (its latest_version) before moving the pin.
DEFAULT_TRAINER_VERSION = "b6af14222e6bd9be257cbc1ea4afda3cd0503e1133083b9d1de0364d8568e6ef"
_VERSION_ID = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


class TrainingSettings(CheckedSettings):
    """The trainer, its inputs, the destination model, what a training may cost and how long it
    may run, and the validation that measures the likeness afterwards. Any field in the training
    config changes the training's fingerprint: asking again with a changed one trains again."""

    trainer: str = Field(DEFAULT_TRAINER, description="the trainer model, as 'owner/name'")
    trainer_version: str = Field(
        DEFAULT_TRAINER_VERSION,
        description="the trainer's version id (64 hex digits), pinned: another trainer or version is a setting",
    )
    owner: str | None = Field(
        None, description="the destination model's owner; unset: the account of the API token"
    )
    model_name: str = Field(
        "actor-{actor_id}-lora",
        description="the destination model's name ({actor_id} is replaced, lowercased); created private if missing",
    )
    hardware: str = Field("gpu-t4", description="the destination model's hardware (models.create requires one)")
    steps: int = Field(1000, ge=3, le=6000, description="training steps (the trainer takes 3 to 6000)")
    lora_rank: int = Field(16, ge=1, le=128, description="the LoRA's rank (1 to 128): higher learns more detail, slower")
    learning_rate: float = Field(4e-4, gt=0, le=1, description="the optimizer's learning rate")
    batch_size: int = Field(1, ge=1, le=16, description="images per training step")
    resolution: str = Field(
        "512,768,1024", description="comma-separated sizes every image is trained at (the trainer's input)"
    )
    min_images: int = Field(
        10, ge=1, description="the fewest bundle images a training is started with (the trainer's recommended minimum)"
    )
    price_per_second_usd: float = Field(
        0.001528,
        ge=0,
        description="dollars per second of the trainer's hardware (an H100 for ostris/flux-dev-lora-trainer), "
        "times the training's metrics.predict_time, for the cost ledger",
    )
    deadline_s: float = Field(
        3600.0, gt=0, description="a training still running this long after its create is canceled (and recorded)"
    )
    poll_interval_s: float = Field(5.0, gt=0, description="seconds between reads of a training in progress")
    validation_model: str = Field(
        "black-forest-labs/flux-dev-lora", description="the model that runs the trained LoRA (its lora_weights input)"
    )
    validation_images: int = Field(
        4, ge=0, le=12, description="images made with the trained LoRA from held-out prompts to measure the likeness"
    )
    validation_price_per_image_usd: float = Field(
        VALIDATION_PRICE_USD, ge=0, description="dollars per validation image, for the cost ledger"
    )
    lora_scale: float = Field(1.0, ge=-1, le=3, description="how strongly the validation images apply the LoRA")
    max_cost_usd: float | None = Field(
        None,
        ge=0,
        description="the most a new training and its validation may cost: one whose worst case (deadline_s x "
        "price_per_second_usd, plus the validation images) is more is refused before anything is paid; unset: no cap",
    )

    @field_validator("trainer", "validation_model")
    @classmethod
    def _owner_and_name(cls, model: str) -> str:
        if not MODEL_PATTERN.fullmatch(model):
            raise ValueError(f"{model!r} is not an 'owner/name' model reference: use e.g. {DEFAULT_TRAINER!r}")
        return model

    @field_validator("trainer_version")
    @classmethod
    def _version_id(cls, version: str) -> str:
        if not _VERSION_ID.fullmatch(version):
            raise ValueError(
                f"trainer_version {version!r} is not a version id: use the 64 hex digits of one of the trainer's "
                "versions (its page on replicate.com, Versions)"
            )
        return version

    @field_validator("resolution")
    @classmethod
    def _sizes(cls, resolution: str) -> str:
        if not re.fullmatch(r"\d+(,\d+)*", resolution):
            raise ValueError(f"resolution {resolution!r} is refused: give sizes in pixels separated by commas, e.g. '512,768,1024'")
        return resolution

    def destination(self, actor_id: str, account: str) -> str:
        """The destination model, ``owner/name``, of an actor's trainings."""
        name = self.model_name.replace("{actor_id}", actor_id).lower()
        if not _NAME.fullmatch(name):
            raise ValueError(f"model_name {self.model_name!r} gives {name!r}, not a Replicate model name")
        return f"{self.owner or account}/{name}"

    def trainer_input(self, trigger: str) -> dict[str, Any]:
        """The trainer's inputs besides the images: our captions are complete, so no autocaption."""
        return {
            "trigger_word": trigger,
            "autocaption": False,
            "steps": self.steps,
            "lora_rank": self.lora_rank,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "resolution": self.resolution,
        }

    def fingerprint(self, bundle_sha256: str, trigger: str) -> str:
        """Identifies a training's inputs: the same bundle and training config give the same LoRA."""
        payload = {"bundle": bundle_sha256, "trainer": self.trainer, "version": self.trainer_version, **self.trainer_input(trigger)}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

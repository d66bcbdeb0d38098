"""Training the actor's LoRA from its bundle, and measuring whether it learned the face (issue 22).

Plain Python, no Dagster: ``train_lora`` (journaled, never twice), ``validate_lora`` (the likeness),
the trainers (``ReplicateTrainer``; ``PreviewTrainer``, a $0 stand-in) and ``TrainingSettings``.
"""

from actor_pipeline.training.preview import PreviewTrainer
from actor_pipeline.training.record import TrainingHistory, TrainingJournal, TrainingRecord, TrainingStatus
from actor_pipeline.training.replicate import ReplicateTrainer
from actor_pipeline.training.settings import TrainingSettings
from actor_pipeline.training.train import TrainedLora, train_lora
from actor_pipeline.training.types import Trainer
from actor_pipeline.training.validation import Likeness, load_likeness, validate_lora

__all__ = [
    "Likeness",
    "PreviewTrainer",
    "ReplicateTrainer",
    "TrainedLora",
    "Trainer",
    "TrainingHistory",
    "TrainingJournal",
    "TrainingRecord",
    "TrainingSettings",
    "TrainingStatus",
    "load_likeness",
    "train_lora",
    "validate_lora",
]

"""actor-pipeline: one portrait in, a LoRA-ready character training set out.

The seed's API stays importable from here: ``ActorTrainingDataGenerator``,
``get_actor_training_prompts`` and ``get_actor_descriptor``; and ``TrainingClient``, whose
``train_actor`` trains the actor's LoRA from its set.
"""

from actor_pipeline.api import ActorTrainingDataGenerator, TrainingClient
from actor_pipeline.catalog.descriptors import get_actor_descriptor
from actor_pipeline.catalog.prompts import get_actor_training_prompts
from actor_pipeline.errors import CatalogError, ConfigurationError, InputError, PortraitError

__all__ = [
    "ActorTrainingDataGenerator",
    "CatalogError",
    "ConfigurationError",
    "InputError",
    "PortraitError",
    "TrainingClient",
    "get_actor_descriptor",
    "get_actor_training_prompts",
]

"""The shot catalog, actor descriptors and per-actor prompt sets."""

from actor_pipeline.catalog.descriptors import get_actor_descriptor
from actor_pipeline.catalog.model import Catalog, Category, Shot, load_catalog
from actor_pipeline.catalog.prompts import PromptSet, build_prompt_set, get_actor_training_prompts

__all__ = [
    "Catalog",
    "Category",
    "PromptSet",
    "Shot",
    "build_prompt_set",
    "get_actor_descriptor",
    "get_actor_training_prompts",
    "load_catalog",
]

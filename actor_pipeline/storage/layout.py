"""Where every artifact of an actor lives, identical for every storage backend.

The training set keeps the seed's layout
``{user_id}/custom-actors/{actor_id}/training_data/actor_{actor_id}_td_{NN}.jpg`` with the
manifest, the grid and the normalized portrait beside the images. Pipeline bookkeeping (the staged
source portrait, the prompt set, per-shot records, the trainings) sits in a sibling ``pipeline/``
folder so the training folder holds only what a trainer or a person wants to see; the trained
LoRA's validation images and their contact sheet sit in ``lora/``.
"""

from dataclasses import dataclass

from actor_pipeline.identifiers import validate_id

REGISTRY_PREFIX = "_registry/actors/"
PREDICTION_PREFIX = "_predictions/"  # storage.prediction_index


def registration_key(actor_id: str) -> str:
    """Registrations are indexed by actor id alone: a partition key is all an asset gets."""
    return f"{REGISTRY_PREFIX}{validate_id(actor_id)}.json"


@dataclass(frozen=True)
class ActorLayout:
    user_id: str
    actor_id: str

    def __post_init__(self) -> None:
        validate_id(self.user_id, "user id")
        validate_id(self.actor_id, "actor id")

    @property
    def root(self) -> str:
        return f"{self.user_id}/custom-actors/{self.actor_id}"

    @property
    def training_dir(self) -> str:
        return f"{self.root}/training_data"

    def image(self, index: int) -> str:
        return f"{self.training_dir}/actor_{self.actor_id}_td_{index:02d}.jpg"

    @property
    def manifest(self) -> str:
        return f"{self.training_dir}/manifest.json"

    @property
    def grid(self) -> str:
        return f"{self.training_dir}/training_data_grid.jpg"

    def bundle(self, layout: str) -> str:
        """The LoRA bundle (a zip) in the given layout ("flat" or "kohya")."""
        return f"{self.training_dir}/actor_{self.actor_id}_lora_{layout}.zip"

    @property
    def bundle_report(self) -> str:
        return f"{self.root}/pipeline/bundle.json"

    @property
    def quality_verdict(self) -> str:
        """What the set's last quality pass decided (``generation.budget.QualityVerdict``)."""
        return f"{self.root}/pipeline/quality.json"

    @property
    def portrait(self) -> str:
        return f"{self.training_dir}/normalized_portrait.jpg"

    @property
    def source_portrait(self) -> str:
        return f"{self.root}/pipeline/source_portrait"

    @property
    def prompt_set(self) -> str:
        return f"{self.root}/pipeline/prompt_set.json"

    def shot_record(self, shot_id: str) -> str:
        return f"{self.root}/pipeline/shots/{shot_id}.json"

    @property
    def training_history(self) -> str:
        """Every LoRA training of the actor that ended (``training.record.TrainingHistory``)."""
        return f"{self.root}/pipeline/trainings.json"

    @property
    def likeness(self) -> str:
        """The trained LoRA's validation (``training.validation.Likeness``)."""
        return f"{self.root}/pipeline/likeness.json"

    def validation_image(self, index: int) -> str:
        return f"{self.root}/lora/validation_{index:02d}.jpg"

    @property
    def validation_sheet(self) -> str:
        return f"{self.root}/lora/validation_sheet.jpg"

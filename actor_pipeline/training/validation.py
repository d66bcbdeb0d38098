"""Did the LoRA learn the face? A few images made with it from held-out prompts (scenes no
training caption describes), put through the quality checks' identity check against the
portrait, summed up as the likeness: the median identity distance and how many images pass.

Images already made for the same training are reused, so a rerun pays only for the missing ones.
"""

import io
import logging
import statistics
from collections.abc import Sequence

from PIL import Image
from pydantic import BaseModel, Field

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.catalog.model import Category
from actor_pipeline.outputs.bundle import BundleReport
from actor_pipeline.outputs.grid import Tile, render_grid
from actor_pipeline.quality import DEFAULT_THRESHOLDS, CheckName, Outcome, check_set
from actor_pipeline.storage.lease import hold_actor
from actor_pipeline.storage.prediction_index import index_predictions, validation_of
from actor_pipeline.training.record import TrainingJournal, TrainingRecord
from actor_pipeline.training.train import Maker, load_bundle, refuse_over_cap
from actor_pipeline.training.types import PaintFailed, Trainer

log = logging.getLogger(__name__)

# Scenes none of the catalog's captions describe: what the LoRA must generalize to.
HELD_OUT_SCENES = (
    "waiting at a rainy bus stop at night, neon reflections on the wet street, 35mm photo",
    "reading a map on a windy mountain ridge at sunrise, wide landscape photo",
    "laughing at a crowded street-food market, handheld candid photo",
    "sitting in a vintage train compartment, soft window light, film photo",
    "standing in a snowy forest clearing at dusk, cinematic photo",
    "working at a pottery wheel in a sunlit studio, documentary photo",
    "on a ferry deck in the wind, overcast sky, travel photo",
    "in a library aisle between tall shelves, warm lamp light, portrait photo",
)
_SEED = 7100  # validation image n uses _SEED + n: the same training gives the same images
TRAINING_META = "training-id"


class ValidationImage(BaseModel):
    prompt: str
    seed: int
    key: str | None = None
    prediction_id: str | None = None
    distance: float | None = Field(None, description="identity distance to the portrait; None: not measured")
    passed: bool | None = Field(None, description="within the identity threshold; None: not measured")
    note: str = ""


class Likeness(BaseModel):
    """The trained LoRA's validation, beside its training."""

    training_id: str
    images: list[ValidationImage]
    measured: int = Field(description="images whose face was found and compared with the portrait")
    passed: int = Field(description="measured images within the identity threshold")
    median_distance: float | None = Field(None, description="median identity distance of the measured images")
    max_distance: float = Field(description="the identity threshold (dlib: under 0.6 is the same person)")
    sheet_key: str | None = None
    predictions: int = Field(0, description="the predictions that made this training's stored validation images, whichever run made them")
    cost_usd: float = 0.0

    def summary(self) -> str:
        if not self.measured:
            why = "; ".join(dict.fromkeys(image.note for image in self.images if image.note)) or "no reason recorded"
            return f"likeness not measured ({len(self.images)} image(s): {why})"
        return (
            f"likeness: {self.passed}/{self.measured} image(s) within {self.max_distance:g}, "
            f"median identity distance {self.median_distance:.2f}"
        )


def held_out_prompts(report: BundleReport, count: int) -> list[str]:
    """``count`` prompts with the trigger and class, from scenes no caption of the bundle holds."""
    captions = [image.caption.lower() for image in report.images]
    scenes = [scene for scene in HELD_OUT_SCENES if not any(scene.split(",")[0] in caption for caption in captions)]
    return [f"{report.trigger} {report.class_phrase}, {scene}" for scene in scenes[:count]]


def load_likeness(actor: ActorContext) -> Likeness | None:
    try:
        return Likeness.model_validate_json(actor.storage.get(actor.layout.likeness))
    except FileNotFoundError:
        return None


async def validate_lora(
    actor: ActorContext,
    trainer: Trainer,
    training: TrainingRecord,
    maker: Maker,
    *,
    identity: bool = True,
) -> Likeness:
    """Make the validation images of ``training`` (those not made yet), measure them against the
    portrait, draw their contact sheet, and store the likeness."""
    assert training.training_id is not None and training.weights_url is not None
    say = maker.say
    storage, actor_id, layout = actor.storage, actor.actor_id, actor.layout
    prompts = held_out_prompts(load_bundle(actor).report, trainer.settings.validation_images)
    images: list[ValidationImage] = []
    made: dict[str, bytes] = {}
    since = training.ended_at or training.started_at  # no image can be made with the weights before
    with hold_actor(storage, actor_id, maker.name, wait_s=maker.lease_wait_s):
        # An earlier training's images are made again.
        kept = [storage.head(layout.validation_image(index)) for index in range(len(prompts))]
        kept = [k if k is not None and k.metadata.get(TRAINING_META) == training.training_id else None for k in kept]
        refuse_over_cap(trainer, "the LoRA's validation", kept.count(None), training=False)
        validated = validation_of(str(training.training_id))
        async with trainer.session() as session:
            for index, (prompt, stored) in enumerate(zip(prompts, kept, strict=True)):
                key, seed = layout.validation_image(index), _SEED + index
                entry = ValidationImage(prompt=prompt, seed=seed)
                if stored is not None:
                    made[key] = storage.get(key)
                    entry.prediction_id = stored.metadata.get("prediction-id") or None
                else:
                    try:
                        painted = await session.paint(prompt, seed, training.weights_url, since)
                    except PaintFailed as exc:
                        entry.note = str(exc)
                        images.append(entry)
                        continue
                    made[key] = _as_jpeg(painted.data)
                    meta = {TRAINING_META: training.training_id, "prediction-id": painted.prediction_id or ""}
                    storage.put(key, made[key], "image/jpeg", meta)
                    entry.prediction_id = painted.prediction_id
                    how = "found in Replicate's list, made by an earlier run" if painted.adopted else "made with the LoRA"
                    say(f"{actor_id}: validation image {index + 1}/{len(prompts)} {how}")
                # A kept image's too: a run may have died between storing the image and indexing it.
                index_predictions(storage, layout, validated, [entry.prediction_id] if entry.prediction_id else [])
                entry.key = key
                images.append(entry)
        _measure(images, made, storage.get(layout.portrait), actor.registration.actor_type, identity)
        measured = [image.distance for image in images if image.distance is not None]
        # Each image's prediction, whichever run made or found it: a run that died after storing
        # images never counted them.
        paid_ids = list(dict.fromkeys(image.prediction_id for image in images if image.key and image.prediction_id))
        paid = len(paid_ids)
        likeness = Likeness(
            training_id=training.training_id,
            images=images,
            measured=len(measured),
            passed=sum(bool(image.passed) for image in images),
            median_distance=round(statistics.median(measured), 4) if measured else None,
            max_distance=DEFAULT_THRESHOLDS.identity_max_distance_photoreal,
            sheet_key=layout.validation_sheet,
            predictions=paid,
            cost_usd=round(paid * trainer.price_per_image_usd(), 6),
        )
        storage.put(layout.validation_sheet, _sheet(actor_id, storage.get(layout.portrait), images, made), "image/jpeg")
        storage.put(layout.likeness, likeness.model_dump_json(indent=2).encode(), "application/json")
        # The likeness is the latest training's only: the training's record keeps what it was billed.
        TrainingJournal(storage, layout).add_validation(training.weights_url, paid_ids, trainer.price_per_image_usd())
    say(f"{actor_id}: {likeness.summary()}")
    return likeness


def _measure(images: Sequence[ValidationImage], made: dict[str, bytes], portrait: bytes, actor_type: str, identity: bool) -> None:
    """The quality checks' identity check on each made image, as on a photoreal shot."""
    keyed = {image.key: made[image.key] for image in images if image.key}
    checked = check_set(keyed, portrait, dict.fromkeys(keyed, Category.PHOTOREAL), actor_type, identity=identity)
    for image in images:
        if image.key is None:
            continue
        result = next(r for r in checked.shots[image.key].results if r.check is CheckName.IDENTITY)
        if result.outcome is Outcome.NOT_MEASURED:
            image.note = image.note or result.reason
            continue
        image.distance = result.measured.get("distance")
        image.passed = result.outcome is Outcome.PASSED
        image.note = result.reason


def _sheet(actor_id: str, portrait: bytes, images: Sequence[ValidationImage], made: dict[str, bytes]) -> bytes:
    tiles = [Tile("Portrait (input)", "portrait", Image.open(io.BytesIO(portrait)))]
    for index, image in enumerate(images):
        picture = Image.open(io.BytesIO(made[image.key])) if image.key else None
        badge = "" if image.passed is None else "passed" if image.passed else "failed"
        detail = f"identity {image.distance:.2f}" if image.distance is not None else ""
        tiles.append(Tile(f"LoRA {index + 1}", "validation", picture, image.note if picture is None else "", badge, detail))
    return render_grid(f"{actor_id} · trained LoRA · held-out prompts", tiles)


def _as_jpeg(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        if image.format == "JPEG":
            return data
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, "JPEG", quality=92)
        return buffer.getvalue()

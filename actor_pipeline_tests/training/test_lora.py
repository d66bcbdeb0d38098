"""The trained LoRA in-process, on the preview backend's $0 stand-in (no token): the whole graph
runs, the likeness is measured by the quality checks' identity check, and the UI shows the
training and the likeness on the actor's assets; nothing trains unless asked."""

from pathlib import Path

import dagster as dg
import pytest

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.commands.generate import GenerationRequest, generate
from actor_pipeline.commands.train import train
from actor_pipeline.defs.assets import lora_validation, trained_lora, training_manifest
from actor_pipeline.defs.assets.training import LIKENESS_PASSED_TAG, TRAINING_ID_TAG
from actor_pipeline.defs.settings import PipelineSettings
from actor_pipeline.outputs.manifest import Manifest
from actor_pipeline.registry import NewActor
from actor_pipeline.training.train import load_bundle
from actor_pipeline.training.validation import HELD_OUT_SCENES, held_out_prompts

ACTOR = "lora-1"


@pytest.fixture
def made(tmp_path: Path, portrait_file: Path, instance: dg.DagsterInstance) -> PipelineSettings:
    """A complete set on the preview backend; the settings it was made with."""
    preview = {"backend": "preview", "identity_check": False}
    settings = PipelineSettings.configure(generator=preview, storage={"local_dir": str(tmp_path / "out")})
    generate(GenerationRequest(NewActor(actor_id=ACTOR, portrait=str(portrait_file))), settings, instance)
    return settings


def materialization(instance: dg.DagsterInstance, key: dg.AssetKey) -> dg.AssetMaterialization:
    [record] = instance.fetch_materializations(dg.AssetRecordsFilter(key, [ACTOR]), limit=1).records
    assert record.asset_materialization is not None
    return record.asset_materialization


def test_nothing_trains_unless_asked(made: PipelineSettings, instance: dg.DagsterInstance) -> None:
    assert not instance.fetch_materializations(dg.AssetRecordsFilter(trained_lora.key, [ACTOR]), limit=1).records
    for asset in (trained_lora, lora_validation):
        assert asset.automation_conditions_by_key.get(asset.key) is None, "no automation may start a training"


def test_the_preview_trains_at_no_cost_and_the_ui_shows_the_lora_and_its_likeness(
    made: PipelineSettings, instance: dg.DagsterInstance
) -> None:
    measured = PipelineSettings.configure(
        generator={"backend": "preview"}, trainer={"identity_check": True}, storage={"local_dir": made.storage.local_dir}
    )
    result = train(ACTOR, measured, instance=instance)

    assert result.record.cost_usd == 0.0 and result.record.weights_url
    likeness = result.likeness
    assert likeness is not None and likeness.cost_usd == 0.0 and len(likeness.images) == 4
    # The stand-in paints the portrait itself: the identity check finds the same person.
    assert likeness.measured == likeness.passed == 4, likeness
    assert likeness.median_distance is not None and likeness.median_distance < likeness.max_distance

    actor = ActorContext.load(made.storage.create_storage(), ACTOR)
    manifest = Manifest.model_validate_json(actor.storage.get(actor.layout.manifest))
    assert manifest.lora is not None and manifest.lora.training_id == result.record.training_id
    assert manifest.lora.likeness is not None and manifest.lora.likeness.passed == 4

    trained = materialization(instance, trained_lora.key).metadata
    assert trained["training_id"].value == result.record.training_id and trained["cost_usd"].value == 0.0
    validation = materialization(instance, lora_validation.key).metadata
    assert validation["passed"].value == 4 and "thumbnail" in validation  # the contact sheet, inline
    assert str(validation["likeness"].value).startswith("likeness: 4/4")
    shown = materialization(instance, training_manifest.key).metadata
    assert str(shown["lora_likeness"].value).startswith("4/4 within")
    [run] = instance.get_runs(dg.RunsFilter(tags={TRAINING_ID_TAG: result.record.training_id or ""}))
    assert run.tags[LIKENESS_PASSED_TAG] == "4/4"


def test_validation_prompts_are_held_out_from_every_training_caption(made: PipelineSettings) -> None:
    report = load_bundle(ActorContext.load(made.storage.create_storage(), ACTOR)).report
    prompts = held_out_prompts(report, len(HELD_OUT_SCENES))
    assert len(prompts) >= 4
    captions = {image.caption for image in report.images}
    for prompt in prompts:
        assert prompt.startswith(f"{report.trigger} {report.class_phrase}, ")
        scene = prompt.split(", ", 1)[1]
        assert prompt not in captions and not any(scene in caption for caption in captions)

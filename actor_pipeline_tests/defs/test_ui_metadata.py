"""What the Dagster UI shows about a set, read back from the instance as the UI reads it: a
thumbnail and an openable file on each materialization, an observation with the journal's state
on each shot that did not succeed, made / failed / cost tags on the run that made images, an
observation of ``inbox_rejects`` for a bad inbox file, the images run named on the
``prepare_actor`` run it follows, and a portrait typed wrong in the Launchpad failing in one line."""

import base64
import io
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from PIL import Image

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.defs.assets import debug_grid, inbox_rejects, normalized_portrait, training_image
from actor_pipeline.defs.assets.reporting import (
    COST_TAG,
    FAILED_TAG,
    LEDGER_TAG,
    MADE_TAG,
    link,
    shot_preview,
    unfinished_shot,
)
from actor_pipeline.defs.follow_up import IMAGES_RUN_TAG
from actor_pipeline.defs.partitions import actor_image_range, actors_partitions, image_key, shot_range
from actor_pipeline.defs.runs import ACTOR_TAG, next_stage_requests, planned_partitions
from actor_pipeline.defs.sensors import portrait_inbox
from actor_pipeline.generation.journal import ShotRecord, StoredImage
from actor_pipeline.generation.types import ShotStatus, Usage
from actor_pipeline.outputs.thumbnails import INLINE_MARKDOWN_CHARS
from actor_pipeline.storage.folder import FolderStorage
from actor_pipeline_tests.defs.pipeline import Pipeline
from actor_pipeline_tests.replicate_emulator import ReplicateEmulator

RUN_TAGS = (MADE_TAG, FAILED_TAG, COST_TAG, LEDGER_TAG)


def latest_materialization(pipeline: Pipeline, key: dg.AssetKey, partition: str) -> dg.AssetMaterialization:
    [record] = pipeline.instance.fetch_materializations(dg.AssetRecordsFilter(key, [partition]), limit=1).records
    materialization = record.asset_materialization
    assert materialization is not None
    return materialization


def observations(pipeline: Pipeline, key: dg.AssetKey, partition: str | None = None) -> list[dg.AssetObservation]:
    found = pipeline.instance.fetch_observations(
        dg.AssetRecordsFilter(key, [partition] if partition else None), limit=100
    )
    return [r.event_log_entry.asset_observation for r in found.records if r.event_log_entry.asset_observation]


def picture(metadata: dict[str, dg.MetadataValue]) -> Image.Image:
    markdown = metadata["thumbnail"].value
    assert isinstance(markdown, str)
    image = Image.open(io.BytesIO(base64.b64decode(markdown.split(";base64,", 1)[1].rstrip(")"))))
    image.load()
    return image


def run_tags(result: dg.ExecuteInProcessResult, pipeline: Pipeline) -> dict[str, str]:
    run = pipeline.instance.get_run_by_id(result.run_id)
    assert run is not None
    return {key: run.tags[key] for key in RUN_TAGS if key in run.tags}


def journal(pipeline: Pipeline, shot_id: str) -> ShotRecord:
    actor = ActorContext.load(pipeline.storage, "alice")
    record = actor.journal.load(actor.prompt_set.shot(shot_id))
    assert record is not None
    return record


def test_a_set_shows_thumbnails_files_failures_and_costs(
    replicate_pipeline: Pipeline, emulator: ReplicateEmulator, portrait_bytes: bytes
) -> None:
    pipeline = replicate_pipeline
    pipeline.register(portrait_bytes)
    assert pipeline.run("prepare_actor", partition_key="alice").success
    emulator.behaviour.failing = ("woodcut print",)  # words of that shot's prompt

    made = pipeline.run("make_training_images", tags=actor_image_range("alice"))
    assert not made.success
    # Replicate bills succeeded predictions only ($0.04 each with the default price).
    assert run_tags(made, pipeline) == {MADE_TAG: "16", FAILED_TAG: "1", COST_TAG: "0.64", LEDGER_TAG: "0.64"}

    failed = journal(pipeline, "woodcut")
    [observed] = observations(pipeline, training_image.key, str(image_key("alice", "woodcut")))
    assert {k: v.value for k, v in observed.metadata.items()} == {
        "status": "failed",
        "error": failed.error,
        "attempts": 1,
        "prediction_id": failed.prediction_id,
        "cost_usd": 0.0,
    }
    assert failed.prediction_id and "failed" in (failed.error or "")
    assert observations(pipeline, training_image.key, str(image_key("alice", "charcoal"))) == []

    shot = latest_materialization(pipeline, training_image.key, str(image_key("alice", "charcoal")))
    stored = journal(pipeline, "charcoal").image
    assert stored is not None
    assert_opens(shot.metadata, pipeline.storage.get(stored.key))
    assert len(shot.metadata["thumbnail"].value) < INLINE_MARKDOWN_CHARS  # shown inline, not behind a click
    assert picture(shot.metadata).size == (128, 69)
    assert stored.thumbnail == shot.metadata["thumbnail"].value  # made once, kept with the shot's record

    # Only the failed shot again: this run's cost is its one prediction; the ledger is the actor's.
    emulator.behaviour.failing = ()
    again = pipeline.run("make_training_images", tags=shot_range("alice", "woodcut", "woodcut"))
    assert again.success
    assert run_tags(again, pipeline) == {MADE_TAG: "1", FAILED_TAG: "0", COST_TAG: "0.04", LEDGER_TAG: "0.68"}

    assert pipeline.run("finish_training_set", partition_key="alice").success
    portrait = latest_materialization(pipeline, normalized_portrait.key, "alice")
    assert picture(portrait.metadata).size == (96, 128)
    assert_opens(portrait.metadata, pipeline.storage.get(ActorContext.load(pipeline.storage, "alice").layout.portrait))
    grid = latest_materialization(pipeline, debug_grid.key, "alice")
    assert 128 < picture(grid.metadata).width <= 480  # larger than a shot's, behind a click
    assert_opens(grid.metadata, pipeline.storage.get(ActorContext.load(pipeline.storage, "alice").layout.grid))


def assert_opens(metadata: dict[str, Any], content: bytes) -> None:
    """The file is named by a path a user can open (browsers refuse file:// links)."""
    assert "url" not in metadata
    path = metadata["path"]
    assert isinstance(path, dg.PathMetadataValue)
    assert Path(str(path.value)).is_absolute() and Path(str(path.value)).read_bytes() == content


def test_a_kept_thumbnail_is_shown_without_reading_the_image(tmp_path: Path) -> None:
    """A rerun's materializations show the thumbnails the records kept: no image is downloaded
    for them (17 GETs of S3 per materialization of a set)."""
    image = StoredImage(key="u/a/01.jpg", sha256="0" * 64, width=1392, height=752, bytes=1, thumbnail="![01 x](data:...)")
    unread = FolderStorage(tmp_path)  # holds no image: reading one would fail
    assert shot_preview(unread, image, "01 x") == {"thumbnail": dg.MetadataValue.md("![01 x](data:...)")}
    assert shot_preview(unread, image.model_copy(update={"thumbnail": None}), "01 x") == {}  # kept before: made from storage


def test_only_local_files_are_named_by_path() -> None:
    assert link("file:///srv/out/u1/a%20b.jpg") == {"path": dg.MetadataValue.path("/srv/out/u1/a b.jpg")}
    presigned = "https://bucket.s3.amazonaws.com/u1/a.jpg?X-Amz-Signature=abc"
    assert link(presigned) == {"url": dg.MetadataValue.url(presigned)}


def test_an_interrupted_or_pending_shot_is_observed_with_its_state() -> None:
    common: dict[str, Any] = {"index": 3, "fingerprint": "f", "prompt": "p", "seed": 1, "backend": "b", "model": "m"}
    stopped = ShotRecord(
        shot_id="charcoal",
        status=ShotStatus.IN_PROGRESS,
        attempts=2,
        prediction_id="pred-2",
        error="stopped by SIGTERM before it finished; a rerun continues it",
        usage=Usage(predictions_created=2, predictions_succeeded=1, cost_usd=0.04),
        **common,
    )
    pending = ShotRecord(
        shot_id="woodcut", status=ShotStatus.PENDING, error="not started: the run was stopped", **common
    )
    key = str(image_key("alice", "charcoal"))
    assert {k: v.value for k, v in unfinished_shot(training_image.key, key, stopped).metadata.items()} == {
        "status": "interrupted",  # a rerun resumes the attempt: nothing is paid twice
        "error": stopped.error,
        "attempts": 2,
        "prediction_id": "pred-2",
        "cost_usd": 0.04,
    }
    observed = unfinished_shot(training_image.key, key, pending)
    assert observed.partition == key and observed.metadata["status"].value == "pending"
    assert observed.metadata["attempts"].value == 0 and observed.metadata["prediction_id"].value == ""


def test_a_bad_inbox_file_is_observed_on_inbox_rejects_once(pipeline: Pipeline, portrait_bytes: bytes) -> None:
    (pipeline.inbox / "u1").mkdir(parents=True)
    (pipeline.inbox / "u1/notes.txt").write_text("hello")
    (pipeline.inbox / "stray.jpg").write_bytes(portrait_bytes)
    (pipeline.inbox / "u1/bob.jpg").write_bytes(portrait_bytes)

    first = inbox_tick(pipeline)
    assert [r.tags[ACTOR_TAG] for r in first.run_requests or []] == ["bob"]  # good files are not held up
    rejected = {str(o.metadata["file"].value): str(o.metadata["problem"].value) for o in first.asset_events}
    inbox = pipeline.inbox.resolve()
    assert set(rejected) == {str(inbox / "u1/notes.txt"), str(inbox / "stray.jpg")}
    assert rejected[str(inbox / "u1/notes.txt")].startswith("unsupported file type '.txt': portraits must be")
    assert rejected[str(inbox / "stray.jpg")].startswith("not where the inbox looks: put portraits at")
    assert len(observations(pipeline, inbox_rejects.key)) == 2

    second = inbox_tick(pipeline, first.cursor)
    assert not second.run_requests and not second.asset_events
    assert len(observations(pipeline, inbox_rejects.key)) == 2


def test_the_prepare_run_names_the_images_run_that_follows(pipeline: Pipeline, portrait_bytes: bytes) -> None:
    pipeline.register(portrait_bytes)
    prepared = pipeline.run("prepare_actor", partition_key="alice")
    [request] = next_stage_requests(prepared.run_id, planned_partitions(pipeline.instance, prepared.run_id))
    images = pipeline.execute(request)  # what advance_training_set requests, launched as the daemon does
    assert images.success

    run = pipeline.instance.get_run_by_id(prepared.run_id)
    assert run is not None and run.tags[IMAGES_RUN_TAG] == images.run_id
    said = [e.message for e in pipeline.instance.all_logs(prepared.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)]
    assert said[-1] == (
        f"the images run follows: make_training_images run {images.run_id} makes the shots, the contact sheet, "
        "the bundle and the manifest"
    )


@pytest.mark.parametrize(
    ("portrait", "message"),
    [
        ("{tmp}/typo.jpg", "portrait file not found: {tmp}/typo.jpg: check the path"),
        (
            "htps://example.com/a.jpg",
            "portrait source scheme htps: is not supported: give a local path, an http(s) URL or an s3:// URL "
            "(write a local file name containing ':' as ./name)",
        ),
    ],
)
def test_a_portrait_typed_wrong_in_the_launchpad_fails_in_one_line(
    pipeline: Pipeline, tmp_path: Path, portrait: str, message: str
) -> None:
    pipeline.instance.add_dynamic_partitions(actors_partitions.name, ["bob"])  # "Add new partition"
    config = {"portrait": portrait.format(tmp=tmp_path)}
    result = pipeline.run(
        "prepare_actor", partition_key="bob", run_config={"ops": {"normalized_portrait": {"config": config}}}
    )
    assert not result.success
    [failure] = result.get_step_failure_events()  # prompt_set is skipped, not failed a second time
    data = failure.step_failure_data
    assert failure.step_key == "normalized_portrait" and data is not None and data.error is not None
    assert data.user_failure_data is not None and data.user_failure_data.description == message.format(tmp=tmp_path)
    # What the UI shows first: the error's one line (Dagster's frames follow it under "Stack Trace").
    assert data.error.message == f"dagster._core.definitions.events.Failure: {message.format(tmp=tmp_path)}\n"
    assert data.error.cause is None
    assert pipeline.instance.get_dynamic_partitions(actors_partitions.name) == []

def inbox_tick(pipeline: Pipeline, cursor: str | None = None) -> dg.SensorResult:
    """A tick of the inbox sensor, and what the daemon then records of its asset events."""
    with dg.build_sensor_context(
        instance=pipeline.instance,
        cursor=cursor,
        resources={"inbox": pipeline.resources["inbox"]},
    ) as context:
        result = portrait_inbox(context)
    assert isinstance(result, dg.SensorResult)
    for event in result.asset_events:
        pipeline.instance.report_runless_asset_event(event)
    return result

"""The sensors, invoked as the daemon would (``build_sensor_context`` with an instance and
resources), and the runs they request executed in-process."""

from pathlib import Path

import dagster as dg
import pytest

from actor_pipeline.defs.assets import ALL_ASSETS, lora_validation, trained_lora, training_image, training_manifest
from actor_pipeline.defs.assets.training import LIKENESS_PASSED_TAG, TRAINING_ID_TAG
from actor_pipeline.defs.partitions import CATALOG, actor_image_range, image_key
from actor_pipeline.defs.runs import ACTOR_TAG
from actor_pipeline.defs.sensors import SOURCE_TAG, advance_training_set, portrait_inbox, report_failed_run
from actor_pipeline.outputs.manifest import Manifest
from actor_pipeline.registry import load_registration
from actor_pipeline_tests.defs.pipeline import Pipeline, build_pipeline
from actor_pipeline_tests.replicate_emulator import ReplicateEmulator
from actor_pipeline_tests.support.backends import FlakyBackend, generator_for


def inbox_tick(pipeline: Pipeline, cursor: str | None = None) -> dg.SensorResult:
    # Contexts are entered and exited: an unexited one leaves the instance set as Dagster's current one.
    with dg.build_sensor_context(
        instance=pipeline.instance,
        cursor=cursor,
        resources={key: pipeline.resources[key] for key in ("inbox", "storage")},
    ) as context:
        result = portrait_inbox(context)
    assert isinstance(result, dg.SensorResult)
    for request in result.dynamic_partitions_requests or []:  # what the daemon applies after a tick
        pipeline.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys or []))
    return result


# Sensors log through ``context.log``, a console logger that writes to stderr (and, under the
# daemon, to the tick's log in the UI); it does not propagate to Python's root logger.


def after(pipeline: Pipeline, result: dg.ExecuteInProcessResult) -> list[dg.RunRequest]:
    """What the run-status sensors request once ``result``'s run has finished."""
    run = result.dagster_run
    status = dg.DagsterEventType.RUN_SUCCESS if result.success else dg.DagsterEventType.RUN_FAILURE
    [event] = [e.dagster_event for e in pipeline.instance.all_logs(run.run_id, of_type=status) if e.dagster_event]
    with dg.build_run_status_sensor_context(
        sensor_name="test",
        dagster_event=event,
        dagster_instance=pipeline.instance,
        dagster_run=run,
        resources={"storage": pipeline.resources["storage"]},
    ) as context:
        if result.success:
            return list(advance_training_set(context) or [])
        return list(report_failed_run(context.for_run_failure()) or [])


def test_the_inbox_sensor_only_lists_and_one_run_makes_the_whole_set(
    pipeline: Pipeline, portrait_bytes: bytes
) -> None:
    (pipeline.inbox / "u1").mkdir(parents=True)
    (pipeline.inbox / "u1/alice.jpg").write_bytes(portrait_bytes)
    (pipeline.inbox / "u1/alice.json").write_text('{"actor_sex": "female"}')
    pipeline.backend.fail = {"woodcut"}

    first = inbox_tick(pipeline)
    [request] = first.run_requests or []
    assert request.job_name == "make_training_images" and request.partition_key is None
    assert request.run_key and request.run_key.startswith("inbox:u1/alice.jpg@")
    assert {k: request.tags[k] for k in actor_image_range("alice")} == actor_image_range("alice")
    assert request.tags[ACTOR_TAG] == "alice" and request.tags[SOURCE_TAG].endswith("inbox/u1/alice.jpg")
    assert [list(r.partition_keys or []) for r in first.dynamic_partitions_requests or []] == [["alice"]]
    assert "train" not in request.run_config["ops"][training_image.op.name]["config"]  # the sidecar did not ask
    assert not pipeline.storage.list("_registry/")  # the tick read no portrait and wrote nothing

    made = pipeline.execute(request)  # fetches, normalizes and registers once, then makes the set
    assert not made.success and len(pipeline.backend.calls) == 17
    registration = load_registration(pipeline.storage, "alice")
    assert (registration.user_id, registration.descriptor) == ("u1", "woman")
    assert registration.portrait_source.endswith("inbox/u1/alice.jpg")
    run = made.run_id
    materialized = {
        key.path[-1]: sorted(pipeline.instance.get_materialized_partitions(key))
        for key in (a.key for a in ALL_ASSETS)
        if key != training_image.key
    }
    assert materialized == {
        "normalized_portrait": ["alice"],
        "prompt_set": ["alice"],
        "debug_grid": ["alice"],
        "lora_bundle": ["alice"],
        "training_manifest": ["alice"],
        "trained_lora": [],  # the LoRA is trained only when asked for
        "lora_validation": [],
        "inbox_rejects": [],
    }
    latest = pipeline.instance.get_latest_materialization_event(dg.AssetKey("training_manifest"))
    assert latest is not None and latest.run_id == run
    manifest = Manifest.model_validate_json(pipeline.storage.get(registration.layout.manifest))
    assert manifest.totals.generated == 16 and [f.shot_id for f in manifest.failed] == ["woodcut"]
    assert after(pipeline, made) == []  # the run finished its set: nothing more to request

    second = inbox_tick(pipeline, first.cursor)
    assert not second.run_requests and second.skip_reason
    assert "no new portraits" in (second.skip_reason.skip_message or "")


def drop(pipeline: Pipeline, portrait: bytes, sidecar: str) -> dg.RunRequest:
    """Drop alice's portrait and sidecar in the inbox: the request of the tick that finds them."""
    (pipeline.inbox / "u1").mkdir(parents=True)
    (pipeline.inbox / "u1/alice.jpg").write_bytes(portrait)
    (pipeline.inbox / "u1/alice.json").write_text(sidecar)
    [request] = inbox_tick(pipeline).run_requests or []
    return request


def test_a_sidecar_asking_to_train_has_the_same_run_train_and_validate_the_lora(
    pipeline: Pipeline, portrait_bytes: bytes
) -> None:
    request = drop(pipeline, portrait_bytes, '{"actor_sex": "female", "train": true}')
    assert request.run_config["ops"][training_image.op.name]["config"]["train"] == {}
    made = pipeline.execute(request)
    assert made.success and len(pipeline.backend.calls) == 17
    for asset in (training_manifest, trained_lora, lora_validation):
        latest = pipeline.instance.get_latest_materialization_event(asset.key)
        assert latest is not None and latest.run_id == made.run_id, asset.key
        assert latest.dagster_event and latest.dagster_event.partition == "alice"
    manifest = Manifest.model_validate_json(
        pipeline.storage.get(load_registration(pipeline.storage, "alice").layout.manifest)
    )
    assert manifest.totals.generated == 17 and not manifest.failed  # the set is complete
    assert manifest.lora is not None and manifest.lora.status == "succeeded" and manifest.lora.likeness is not None
    run = pipeline.instance.get_run_by_id(made.run_id)
    assert run and run.tags[TRAINING_ID_TAG] == manifest.lora.training_id and LIKENESS_PASSED_TAG in run.tags
    assert after(pipeline, made) == []


@pytest.mark.parametrize(
    ("training", "fail", "problem"),
    [
        # Refused before paying: a bundle below the trainer's minimum.
        ({"min_images": 18}, set(), "alice: trained_lora failed: the LoRA bundle of 'alice' holds 17 image(s), fewer "
         "than the trainer's minimum of 18"),
        # As `generate --train`: not trained on a set with gaps.
        (None, {"woodcut"}, "alice: the LoRA was not trained, 1 shot(s) not made"),
    ],
)
def test_a_training_that_fails_leaves_the_set_and_fails_the_run_in_one_line(
    tmp_path: Path,
    instance: dg.DagsterInstance,
    flaky: FlakyBackend,
    portrait_bytes: bytes,
    training: dict[str, int] | None,
    fail: set[str],
    problem: str,
) -> None:
    pipeline = build_pipeline(tmp_path, instance, generator_for(flaky), flaky, training=training)
    flaky.fail = fail
    made = pipeline.execute(drop(pipeline, portrait_bytes, '{"train": true}'))

    assert not made.success
    [failure] = made.get_step_failure_events()
    error = failure.step_failure_data.error if failure.step_failure_data else None
    assert error and problem in error.message.splitlines()[0]
    made_now = {a.key.path[-1]: sorted(pipeline.instance.get_materialized_partitions(a.key)) for a in ALL_ASSETS}
    assert made_now["debug_grid"] == made_now["lora_bundle"] == made_now["training_manifest"] == ["alice"]
    assert made_now["trained_lora"] == made_now["lora_validation"] == []
    # A training tried and failed shows on the asset's page too; one not tried, in the run's only.
    records = pipeline.instance.fetch_observations(dg.AssetRecordsFilter(trained_lora.key, ["alice"]), limit=1).records
    shown = [str(r.asset_observation.metadata["error"].value) for r in records if r.asset_observation]
    assert len(shown) == (1 if training else 0) and all(line in error.message for line in shown)
    manifest = Manifest.model_validate_json(
        pipeline.storage.get(load_registration(pipeline.storage, "alice").layout.manifest)
    )
    assert manifest.totals.generated == 17 - len(fail) and manifest.lora is None


def test_a_bad_portrait_fails_its_run_in_one_line_and_leaves_no_partition(
    pipeline: Pipeline, portrait_bytes: bytes
) -> None:
    (pipeline.inbox / "u1").mkdir(parents=True)
    (pipeline.inbox / "u1/broken.png").write_bytes(b"not a png")
    (pipeline.inbox / "u1/bob.jpg").write_bytes(portrait_bytes)
    first = inbox_tick(pipeline)
    runs = {r.tags[ACTOR_TAG]: pipeline.execute(r) for r in first.run_requests or []}
    assert runs["bob"].success and not runs["broken"].success
    [failure] = [e for e in runs["broken"].get_step_failure_events() if e.step_key == "training_image"]
    message = failure.step_failure_data.error.message if failure.step_failure_data and failure.step_failure_data.error else ""
    assert "broken.png" in message and "not in a recognized image format" in message
    assert pipeline.instance.get_dynamic_partitions("actors") == ["bob"]  # no orphan left to go red
    assert not inbox_tick(pipeline, first.cursor).run_requests  # reported once: not retried every tick


def test_the_chain_makes_a_set_and_reports_failed_shots(
    pipeline: Pipeline, portrait_bytes: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.register(portrait_bytes)
    pipeline.backend.fail = {"woodcut", "gouache"}

    prepared = pipeline.run("prepare_actor", partition_key="alice")
    [images] = after(pipeline, prepared)
    assert images.job_name == "make_training_images" and images.partition_key is None
    assert dict(images.tags) == {**actor_image_range("alice"), ACTOR_TAG: "alice"}

    made = pipeline.execute(images)
    assert not made.success and len(pipeline.backend.calls) == 17
    assert after(pipeline, made) == []  # the images run finished the set itself
    report = capsys.readouterr().err
    assert "(make_training_images) failed: " in report
    assert (
        "actor alice: 2 of 17 shot(s) failed: woodcut (failed after 1 attempt(s): injected failure for woodcut)"
        in report
    )
    assert "gouache (failed after 1 attempt(s)" in report and "retry-failed --actor-id alice" in report

    # The set is finished anyway, listing the failures, as the CLI does.
    manifest = Manifest.model_validate_json(
        pipeline.storage.get(load_registration(pipeline.storage, "alice").layout.manifest)
    )
    assert sorted(f.shot_id for f in manifest.failed) == ["gouache", "woodcut"]


def test_rerunning_failed_partitions_as_the_ui_does_pays_only_for_them_and_refreshes_the_set(
    replicate_pipeline: Pipeline, emulator: ReplicateEmulator, portrait_bytes: bytes
) -> None:
    pipeline = replicate_pipeline
    pipeline.register(portrait_bytes)
    pipeline.run("prepare_actor", partition_key="alice")
    emulator.behaviour.failing = ("woodcut print", "gouache painting")  # words of those two prompts
    assert not pipeline.run("make_training_images", tags=actor_image_range("alice")).success
    emulator.behaviour.failing = ()
    before = emulator.account.counters()

    # The UI launches one run per range of selected partitions (BackfillPolicy.single_run).
    for shot_id in ("woodcut", "gouache"):
        rerun = dg.materialize(
            ALL_ASSETS,
            selection=[training_image],
            partition_key=str(image_key("alice", shot_id)),
            instance=pipeline.instance,
            resources=pipeline.resources,
        )
        [finish] = after(pipeline, rerun)
        assert (finish.job_name, finish.partition_key) == ("finish_training_set", "alice")
    assert emulator.account.counters().predictions_created - before.predictions_created == 2
    pipeline.execute(finish)
    manifest = Manifest.model_validate_json(
        pipeline.storage.get(load_registration(pipeline.storage, "alice").layout.manifest)
    )
    assert manifest.totals.generated == len(CATALOG.ids) and not manifest.failed


def test_a_crashed_image_run_is_reported_and_not_finished(
    pipeline: Pipeline, portrait_bytes: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.register(portrait_bytes)  # but never prepared: the image run cannot start
    made = pipeline.run("make_training_images", tags=actor_image_range("alice"))
    assert not made.success
    assert after(pipeline, made) == []
    report = capsys.readouterr().err
    assert "has no normalized portrait yet: materialize normalized_portrait first" in report
    assert "actor alice: 17 of 17 shot(s) failed" in report and "has no prompt set yet" in report

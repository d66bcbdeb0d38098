"""What the Dagster UI shows of issue 19, read back from the instance: the usable figures on the
run's tags and the manifest's metadata, the systemic line in the run's log, and the spending cap
set in the generator's config."""

from pathlib import Path

import dagster as dg

from actor_pipeline.defs.assets import training_image, training_manifest
from actor_pipeline.defs.assets.images import image_run_config
from actor_pipeline.defs.assets.reporting import (
    COST_PER_USABLE_TAG,
    QC_FAILED_TAG,
    QC_PASSED_TAG,
    SYSTEMIC_TAG,
    USABLE_TAG,
)
from actor_pipeline.defs.partitions import actor_image_range, image_key
from actor_pipeline.defs.resources import ImageGeneratorResource
from actor_pipeline_tests.defs.pipeline import Pipeline, build_pipeline
from actor_pipeline_tests.defs.test_ui_metadata import latest_materialization, observations
from actor_pipeline_tests.replicate_emulator import ReplicateEmulator
from actor_pipeline_tests.support.backends import FlakyBackend

SYSTEMIC = "near_duplicate failed on 16 of 17 shots"


def make_set(pipeline: Pipeline, portrait: bytes) -> dg.ExecuteInProcessResult:
    """The actor's whole set in one run, as the inbox and the CLI make it."""
    pipeline.register(portrait)
    assert pipeline.run("prepare_actor", partition_key="alice").success
    return pipeline.run("make_training_images", tags=actor_image_range("alice"), run_config=image_run_config(finish={}))


def test_a_systemic_failure_shows_on_the_run_its_log_and_the_manifest(
    replicate_pipeline: Pipeline, emulator: ReplicateEmulator, portrait_bytes: bytes
) -> None:
    emulator.behaviour.near_identical = True
    made = make_set(replicate_pipeline, portrait_bytes)
    assert made.success
    run = replicate_pipeline.instance.get_run_by_id(made.run_id)
    assert run is not None
    assert {key: run.tags.get(key) for key in (QC_PASSED_TAG, QC_FAILED_TAG, USABLE_TAG, COST_PER_USABLE_TAG)} == {
        QC_PASSED_TAG: "1", QC_FAILED_TAG: "16", USABLE_TAG: "1", COST_PER_USABLE_TAG: "0.68"
    }
    assert run.tags[SYSTEMIC_TAG] == "near_duplicate"
    logged = [e.user_message for e in replicate_pipeline.instance.all_logs(made.run_id) if SYSTEMIC in e.user_message]
    assert len(logged) == 1

    manifest = latest_materialization(replicate_pipeline, training_manifest.key, "alice").metadata
    assert (manifest["qc_passed"].value, manifest["qc_failed"].value, manifest["bundle_images"].value) == (1, 16, 1)
    assert SYSTEMIC in str(manifest["systemic"].value)


def test_the_generators_spending_cap_leaves_the_rest_pending(
    tmp_path: Path, instance: dg.DagsterInstance, emulator: ReplicateEmulator, portrait_bytes: bytes
) -> None:
    generator = ImageGeneratorResource(
        backend="replicate", replicate_api_token=dg.EnvVar("REPLICATE_API_TOKEN"), max_cost_usd=0.2
    )
    pipeline = build_pipeline(tmp_path, instance, generator, FlakyBackend())
    made = make_set(pipeline, portrait_bytes)
    assert not made.success  # the shots not made are FAILED partitions, to rerun
    assert emulator.account.counters().predictions_created == 5
    [pending] = observations(pipeline, training_image.key, str(image_key("alice", "gouache")))
    assert pending.metadata["status"].value == "pending" and "spending cap of $0.20" in str(pending.metadata["error"].value)

"""What a finished run planned, read from its ASSET_MATERIALIZATION_PLANNED events through
Dagster's public API, whether Dagster writes one event per partition (its default) or one per
range."""

import dagster as dg
import pytest

from actor_pipeline.defs.assets import normalized_portrait, prompt_set, training_image
from actor_pipeline.defs.partitions import CATALOG, image_key, shot_range
from actor_pipeline.defs.runs import RANGE_END_TAG, RANGE_START_TAG, planned_partitions
from actor_pipeline_tests.defs.pipeline import Pipeline


@pytest.fixture(params=[False, True], ids=["event per partition", "event per run"])
def one_event_per_run(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    if request.param:
        monkeypatch.setenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")
    return request.param


def planned_events(pipeline: Pipeline, run_id: str) -> int:
    kind = dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    return len(pipeline.instance.get_records_for_run(run_id, of_type=kind).records)


def test_a_ranged_image_run_planned_each_shot_in_its_range(
    pipeline: Pipeline, portrait_bytes: bytes, one_event_per_run: bool
) -> None:
    for actor in ("alice", "bob", "carol"):
        pipeline.register(portrait_bytes, actor)
    shots = CATALOG.ids[2:6]
    # Never prepared, so the run fails at once: what it planned is recorded all the same.
    one_actor = pipeline.run("make_training_images", tags=shot_range("alice", shots[0], shots[-1]))
    # As Dagster reads a range over two dimensions: actors alice..bob by the shots between the ends.
    two_actors = pipeline.run(
        "make_training_images",
        tags={RANGE_START_TAG: str(image_key("alice", shots[0])), RANGE_END_TAG: str(image_key("bob", shots[-1]))},
    )

    assert planned_partitions(pipeline.instance, one_actor.run_id) == {
        training_image.key: {str(image_key("alice", s)) for s in shots}
    }
    assert planned_partitions(pipeline.instance, two_actors.run_id) == {
        training_image.key: {str(image_key(a, s)) for a in ("alice", "bob") for s in shots}
    }
    assert planned_events(pipeline, one_actor.run_id) == (1 if one_event_per_run else len(shots))


@pytest.mark.usefixtures("one_event_per_run")
def test_a_per_actor_run_planned_its_actor(pipeline: Pipeline, portrait_bytes: bytes) -> None:
    pipeline.register(portrait_bytes)
    prepared = pipeline.run("prepare_actor", partition_key="alice")
    assert planned_partitions(pipeline.instance, prepared.run_id) == {
        normalized_portrait.key: {"alice"},
        prompt_set.key: {"alice"},
    }

"""The nightly retry: one run per range of failed shots, bounded attempts, only they paid for."""

from datetime import UTC, datetime

import dagster as dg
import pytest

from actor_pipeline.defs.partitions import actor_image_range, image_key
from actor_pipeline.defs.schedules import nightly_retry
from actor_pipeline.unfinished import DEFAULT_MAX_ATTEMPTS
from actor_pipeline_tests.defs.pipeline import Pipeline


def nightly(pipeline: Pipeline) -> list[dg.RunRequest] | dg.SkipReason:
    # Entered and exited: an unexited context leaves the instance set as Dagster's current one.
    with dg.build_schedule_context(
        instance=pipeline.instance,
        resources={"storage": pipeline.resources["storage"]},
        scheduled_execution_time=datetime(2026, 1, 2, 3, tzinfo=UTC),
    ) as context:
        return nightly_retry(context)  # type: ignore[return-value]


def test_failed_shots_are_retried_in_ranges_and_only_they_are_paid_for(
    scheduled_pipeline: Pipeline, portrait_bytes: bytes
) -> None:
    pipeline = scheduled_pipeline
    pipeline.register(portrait_bytes)
    pipeline.run("prepare_actor", partition_key="alice")
    pipeline.backend.fail = {"charcoal", "woodcut", "gouache"}  # charcoal and woodcut are adjacent
    pipeline.run("make_training_images", tags=actor_image_range("alice"))
    pipeline.backend.fail.clear()
    pipeline.backend.calls.clear()

    requests = nightly(pipeline)
    assert isinstance(requests, list)
    ranges = [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"]) for r in requests
    ]
    assert ranges == [
        (str(image_key("alice", "charcoal")), str(image_key("alice", "woodcut"))),
        (str(image_key("alice", "gouache")), str(image_key("alice", "gouache"))),
    ]
    for request in requests:
        assert pipeline.run("make_training_images", tags=dict(request.tags)).success
    assert sorted(pipeline.backend.calls) == ["charcoal", "gouache", "woodcut"]
    assert isinstance(nightly(pipeline), dg.SkipReason)


def test_a_shot_that_keeps_failing_stops_at_the_attempt_limit(
    scheduled_pipeline: Pipeline, portrait_bytes: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline = scheduled_pipeline
    pipeline.register(portrait_bytes)
    pipeline.run("prepare_actor", partition_key="alice")
    pipeline.backend.fail = {"gouache"}
    pipeline.run("make_training_images", tags=actor_image_range("alice"))
    for _ in range(DEFAULT_MAX_ATTEMPTS - 1):
        [request] = nightly(pipeline)  # type: ignore[misc]
        assert isinstance(request, dg.RunRequest)
        pipeline.run("make_training_images", tags=dict(request.tags))
    assert pipeline.backend.calls.count("gouache") == DEFAULT_MAX_ATTEMPTS

    assert isinstance(nightly(pipeline), dg.SkipReason)
    assert f"gouache (failed after {DEFAULT_MAX_ATTEMPTS} attempt(s)" in capsys.readouterr().err

"""The images run that follows a ``prepare_actor`` run names itself on it, so that run's page in
the UI says which run makes the set. The sensor that requests it cannot: Dagster gives a run its
id only when the daemon launches the request, after the sensor has returned."""

import dagster as dg

IMAGES_RUN_TAG = "actor_pipeline/images_run"
# Dagster's tag of a sensor-launched run (documented, with no public constant).
RUN_KEY_TAG = "dagster/run_key"
_IMAGES = ":images:"


def images_run_key(run_id: str, actor_id: str) -> str:
    """The run key of the images run that follows run ``run_id`` for ``actor_id``: unique, so a
    repeated sensor evaluation launches it once, and naming the run it follows."""
    return f"{run_id}{_IMAGES}{actor_id}"


def name_on_the_run_it_follows(instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
    """Tag the run ``run`` follows (if its run key names one) with ``run``'s id, and say so in that
    run's log."""
    followed_id, found, _ = run.tags.get(RUN_KEY_TAG, "").partition(_IMAGES)
    followed = instance.get_run_by_id(followed_id) if found else None
    if followed is None or followed.tags.get(IMAGES_RUN_TAG) == run.run_id:  # a retried step says it once
        return
    instance.add_run_tags(followed_id, {IMAGES_RUN_TAG: run.run_id})
    instance.report_engine_event(
        f"the images run follows: {run.job_name} run {run.run_id} makes the shots, the contact sheet, "
        "the bundle and the manifest",
        dagster_run=followed,
    )

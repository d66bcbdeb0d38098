"""Growth: what stays quick with N registered actors (default 5,000) on the cluster's instance
(Postgres, started as ``make cluster`` starts it; ``--sqlite``: the CLI's default instance) and a
local output folder.

Sets up N actors the way the pipeline leaves them (registered, portrait normalized, prompts
planned: ``start_actor`` + ``plan_prompts``; a ``actors`` partition each; every shot's
``training_image`` partition materialized, as a runless event), their portraits still in the
inbox, then times, best of ``--repeat``:

- the inbox sensor's tick once every portrait is taken in (it lists the whole inbox);
- ``actor-pipeline status`` for one actor (``actor_status``);
- the actor list (the ``actors`` partition keys) and the asset page's partition status
  (``get_status_by_partition`` over N x 17 image keys);
- the nightly retry's plan over every actor (one status query, then journals only for the
  unfinished).

The set-up writes the materializations with the event log's batch insert (what a run uses for a
step's many materializations): one runless event at a time takes ~0.1 s on SQLite.

    .venv/bin/python benchmarks/bench_growth.py [--actors 5000] [--sqlite]
"""

import argparse
import io
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import dagster as dg
from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
from dagster._core.events.log import EventLogEntry
from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID
from PIL import Image

from actor_pipeline.catalog import load_catalog
from actor_pipeline.cluster.processes import free_port
from actor_pipeline.cluster.topology import DEPLOY, Cluster, Ports
from actor_pipeline.commands.instance import open_instance
from actor_pipeline.commands.status import actor_status
from actor_pipeline.defs.inbox_resource import InboxResource
from actor_pipeline.defs.partitions import actors_partitions, image_key, image_partitions
from actor_pipeline.defs.retries import retry_plan
from actor_pipeline.defs.sensors import portrait_inbox
from actor_pipeline.defs.settings import PipelineSettings
from actor_pipeline.registry import NewActor
from actor_pipeline.stages import start_actor

USER = "growth"


def best_of(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actors", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sqlite", action="store_true", help="the CLI's SQLite instance instead of Postgres")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-growth-"))
    postgres = Cluster(work / "cluster", Ports(postgres=free_port(), pgbouncer=free_port()))
    try:
        if not args.sqlite:
            (work / "cluster" / "logs").mkdir(parents=True)
            postgres.start_postgres(time.monotonic() + 60)
            home = work / "home"
            home.mkdir()
            shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
            os.environ.update({k: v for k, v in postgres.service_env().items() if k.startswith(("PG", "ACTOR_PIPELINE_CELERY_"))})
            os.environ["DAGSTER_HOME"] = str(home)
        run(work, args.actors, args.repeat, "sqlite" if args.sqlite else "postgres")
    finally:
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, count: int, repeat: int, storage_name: str) -> None:
    settings = PipelineSettings.configure(generator={"backend": "preview"}, storage={"local_dir": str(work / "out")})
    storage = settings.storage.create_storage()
    catalog = load_catalog()
    actors = [f"actor-{n:05d}" for n in range(count)]
    portrait = io.BytesIO()
    Image.new("RGB", (320, 400), (120, 90, 80)).save(portrait, "JPEG")  # small: set-up time, not measured
    inbox = work / "inbox" / USER
    inbox.mkdir(parents=True)
    started = time.perf_counter()
    for actor in actors:
        start_actor(storage, NewActor(actor_id=actor, portrait=str(inbox / f"{actor}.jpg"), user_id=USER), portrait.getvalue()).plan_prompts(catalog)
        (inbox / f"{actor}.jpg").write_bytes(portrait.getvalue())
    print(f"set-up: {count} actors registered and prepared in {time.perf_counter() - started:.0f} s")

    instance = open_instance(settings.resolved_instance_dir)
    started = time.perf_counter()
    instance.add_dynamic_partitions(actors_partitions.name, actors)
    for actor in actors:
        instance.event_log_storage.store_event_batch(
            [materialization(str(image_key(actor, shot))) for shot in catalog.ids]
        )
    print(f"set-up: {count} partitions and {count * len(catalog.ids)} materializations in "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip

    resource = InboxResource(location=str(work / "inbox"), max_per_tick=count)
    with dg.build_sensor_context(instance=instance, resources={"inbox": resource}) as context:
        first = portrait_inbox(context)
    assert len(first.run_requests or []) == count, "the first tick takes in every portrait"

    def steady_tick() -> None:
        with dg.build_sensor_context(instance=instance, resources={"inbox": resource}, cursor=first.cursor) as context:
            result = portrait_inbox(context)
        assert not result.run_requests

    keys = [str(image_key(actor, shot)) for actor in actors for shot in catalog.ids]
    figures = {
        "inbox sensor tick, every portrait already taken in": best_of(repeat, steady_tick),
        "status of one actor (actor_status)": best_of(repeat, lambda: actor_status(actors[count // 2], settings)),
        "actor list (the actors partition keys)": best_of(
            repeat, lambda: instance.get_dynamic_partitions(actors_partitions.name)
        ),
        f"partition status of all {len(keys)} image keys (the asset page)": best_of(
            repeat, lambda: instance.get_status_by_partition(dg.AssetKey("training_image"), keys, image_partitions)
        ),
        "nightly retry plan over every actor": best_of(repeat, lambda: retry_plan(instance, storage, None, 3)),
    }
    print(f"{count} actors on {storage_name} ({type(instance.run_storage).__name__}), best of {repeat}:")
    for what, seconds in figures.items():
        print(f"  {what}: {seconds:.2f} s")


def materialization(partition: str) -> EventLogEntry:
    """What ``report_runless_asset_event`` stores for a materialization of one partition."""
    event = DagsterEvent(
        event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
        event_specific_data=StepMaterializationData(dg.AssetMaterialization("training_image", partition=partition)),
        job_name=RUNLESS_JOB_NAME,
    )
    return EventLogEntry(
        user_message="", level=logging.INFO, job_name=RUNLESS_JOB_NAME, run_id=RUNLESS_RUN_ID, error_info=None,
        timestamp=time.time(), step_key=None, dagster_event=event,
    )  # fmt: skip


if __name__ == "__main__":
    main()

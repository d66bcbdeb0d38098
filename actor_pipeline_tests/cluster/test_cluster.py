"""Issue 20: the production topology as it runs. Postgres behind PgBouncer, Redis, the gRPC code
server, the webserver, the daemon and dagster-celery workers (``actor_pipeline.cluster``, what
``make cluster`` starts), with the set stored in S3 (moto) and Replicate emulated; every process is
stopped at the end (process groups). In one deployment:

1. a portrait dropped in the inbox becomes a set (the daemon's sensor, a run on a Celery worker)
   with one shot failed by the model; that shot is rerun through the webserver's GraphQL (as the
   UI's Materialize of one partition) and the set is 17/17, paid 17;
2. a second actor's run is killed mid-run (its Celery pool process SIGKILLed with 8 predictions
   in flight, as the OOM killer would, then the whole worker lost with its state folder); run
   monitoring fails the run, run retries launch it again, and a worker with an EMPTY state folder
   finishes the set: it adopts the predictions from Replicate's list, so 17 are created and paid;
3. a run retry that Dagster's retry daemon missed (its cursor set past the failure, as a race in
   it leaves it) is set off by the ``orphaned_runs`` sensor.

One deployment for all three: starting and stopping one costs about 15 s and 10 CPU-s.
"""

import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from actor_pipeline.cluster.processes import free_port, wait_for
from actor_pipeline.cluster.topology import Cluster, Ports, Worker, missing_services, tail
from actor_pipeline.defs.liveness import NUDGED_TAG
from actor_pipeline.samples import SAMPLE_PORTRAIT
from actor_pipeline_tests.replicate_emulator import Behaviour, ReplicateEmulator
from actor_pipeline_tests.support.s3 import S3Env

pytestmark = pytest.mark.e2e

SHOTS = 17
USER = "u1"
FAILING = "woodcut print"  # in the woodcut shot's prompt only
# Dagster's run-retry daemon's cursor of failure events (DagsterEventType.RUN_FAILURE's value).
RETRY_CURSOR = "EVENT_LOG_CONSUMER_CURSOR-PIPELINE_FAILURE"
NEVER = 2**62  # a cursor past every event
# How often the retry daemon reads the event log (Dagster's EventLogConsumerDaemon, 5 s by default).
RETRY_DAEMON_INTERVAL_S = 5
TIMEOUT_S = 120  # from a drop or a launch to the manifest it leads to, on a busy 2-core machine
_S3_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY", "AWS_ACCESS_SECRET", "AWS_REGION", "AWS_USER_FILES_BUCKET",
                 "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_EC2_METADATA_DISABLED")  # fmt: skip


@pytest.fixture
def emulator() -> Iterator[ReplicateEmulator]:
    with ReplicateEmulator(behaviour=Behaviour(latency_s=0.5, failing=(FAILING,))) as running:
        yield running


@pytest.fixture
def cluster(tmp_path: Path, s3_env: S3Env, emulator: ReplicateEmulator) -> Iterator[Cluster]:
    """The topology with one worker, ``a``, of one process (so the test knows which to kill)."""
    if missing := missing_services():
        pytest.skip(f"the cluster's services cannot be had here: {'; '.join(missing)}")
    env = {
        **emulator.env(),
        **{name: os.environ[name] for name in _S3_VARIABLES},
        "ACTOR_PIPELINE_INBOX": str(tmp_path / "inbox"),
        "ACTOR_PIPELINE_OUTPUT_DIR": str(tmp_path / "out"),  # the daemon's and code server's state folder
        "ACTOR_PIPELINE_QC_IDENTITY": "0",
    }
    running = Cluster(tmp_path / "cluster", Ports(free_port(), free_port(), free_port(), free_port(), free_port()), env)
    try:
        running.start([Worker("a", processes=1, state_dir=tmp_path / "state-a")])
        yield running
    finally:
        logs = running.root / "logs"
        running.stop()
        kept = Path(__file__).resolve().parents[2] / "test-artifacts" / "cluster-logs"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(logs, kept)  # what each service said, for a failure's report


def test_inbox_rerun_a_lost_worker_and_a_missed_retry_in_the_production_topology(
    cluster: Cluster, emulator: ReplicateEmulator, s3_env: S3Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = Bucket(s3_env)

    # --- 1. inbox drop -> a set with one failed shot -> that shot rerun -> 17/17 -------------
    drop(tmp_path / "inbox", "cast-a")
    manifest = bucket.wait_manifest("cast-a", cluster, lambda m: len(m["failed"]) == 1)
    assert [f["shot_id"] for f in manifest["failed"]] == ["woodcut"], manifest["failed"]
    emulator.behaviour.failing = ()
    launch_images_run(cluster, "cast-a|woodcut")
    manifest = bucket.wait_manifest("cast-a", cluster, lambda m: not m["failed"])
    assert sum(image["status"] == "succeeded" for image in manifest["images"]) == SHOTS
    counters = settled(emulator)
    assert (counters.predictions_created, counters.paid) == (SHOTS + 1, SHOTS), counters
    assert manifest["ledger"]["predictions_created"] == SHOTS + 1, manifest["ledger"]

    # --- 2. a run killed mid-run, resumed by a worker with an empty state folder ------------
    killed = kill_mid_run(cluster, emulator, tmp_path / "inbox", "cast-b")
    wait_for("Celery to record the task as failed", lambda: celery_state(cluster, killed) == "FAILURE", 30)
    cluster.lose_service("worker-a")  # and the machine is gone, state folder and all
    cluster.start_worker(Worker("b", processes=2, state_dir=tmp_path / "state-b"))

    manifest = bucket.wait_manifest("cast-b", cluster, lambda m: not m["failed"], timeout_s=TIMEOUT_S + 30)
    assert sum(image["status"] == "succeeded" for image in manifest["images"]) == SHOTS
    after = settled(emulator)
    created, paid = after.predictions_created - counters.predictions_created, after.paid - counters.paid
    assert (created, paid) == (SHOTS, SHOTS), f"cast-b: {created} created, {paid} paid"
    assert manifest["ledger"]["predictions_created"] == SHOTS, manifest["ledger"]

    # The killed run was failed, then run retries launched it again. Failed by run monitoring (the
    # Celery task's state) or, on one machine, by the orphaned_runs sensor that sees the dead pid:
    # whichever looks first (a fresh-clone CI run saw the sensor win).
    failed_by = ("Celery task failed", "died before the run ended")
    messages = run_messages(cluster, killed["runId"])
    assert any(reason in message for message in messages for reason in failed_by), messages[-5:]
    retry = wait_for("the retry run to end", lambda: ended_retry(cluster, "cast-b", killed["runId"]), 30)
    assert retry["status"] == "SUCCESS", retry
    assert (tmp_path / "state-b" / USER / "cast-b").is_dir(), "worker b did not make cast-b's shots"

    # --- 3. a run retry Dagster's retry daemon missed, set off by the orphaned_runs sensor ---
    # The daemon reads failures from the event log after a cursor, and can read a failure event
    # before the run's status says FAILURE: the cursor then passes it and the run is never retried
    # (a CI run waited for part 2's retry in vain). Here its cursor is set past the failure, as
    # the race leaves it; the sensor reports the failure again, and the daemon retries the run.
    for name, value in cluster.service_env().items():
        monkeypatch.setenv(name, value)
    instance = dg.DagsterInstance.get()  # the cluster's, on Postgres
    counters = settled(emulator)
    pin_retry_cursor(instance, NEVER)  # the daemon reads no failure
    killed = kill_mid_run(cluster, emulator, tmp_path / "inbox", "cast-c", worker="b")
    failed = wait_for(
        "run monitoring to fail the run",
        lambda: instance.get_records_for_run(killed["runId"], of_type=dg.DagsterEventType.RUN_FAILURE).records,
        60,
    )
    pin_retry_cursor(instance, failed[-1].storage_id)  # past it; the sensor's nudge comes 30 s after the failure

    manifest = bucket.wait_manifest("cast-c", cluster, lambda m: not m["failed"], timeout_s=TIMEOUT_S + 60)
    assert sum(image["status"] == "succeeded" for image in manifest["images"]) == SHOTS
    assert instance.get_run_by_id(killed["runId"]).tags.get(NUDGED_TAG) == "true"  # type: ignore[union-attr]
    retry = wait_for("the retry run to end", lambda: ended_retry(cluster, "cast-c", killed["runId"]), 30)
    assert retry["status"] == "SUCCESS", retry
    assert settled(emulator).paid - counters.paid == SHOTS


# --- helpers --------------------------------------------------------------------------------


def kill_mid_run(
    cluster: Cluster, emulator: ReplicateEmulator, inbox: Path, actor: str, worker: str = "a"
) -> dict[str, Any]:
    """Drop ``actor``'s portrait and SIGKILL ``worker``'s pool processes once 8 of its predictions
    are in flight (as the OOM killer would): Celery records the task as failed. Returns the run."""
    emulator.behaviour.latency_s = 3.0  # 8 predictions in flight at the kill
    drop(inbox, actor)
    wait_for(f"8 predictions of {actor} in flight", lambda: in_flight(emulator) >= 8, TIMEOUT_S)
    (killed,) = runs(cluster, actor)
    for pool in cluster.pool_processes(worker):  # the one running the task, and any idle one
        os.kill(pool, signal.SIGKILL)
    return killed


def pin_retry_cursor(instance: dg.DagsterInstance, value: int) -> None:
    """Set the retry daemon's cursor of failures to ``value`` and see it still there one daemon
    interval later: each iteration writes back the cursor it read when it began, so one under way
    as the test sets it undoes the change (a run left the cursor at ``NEVER`` and its nudged
    failure was never read). Later iterations may only move it on, past new failures."""

    def held() -> bool:
        instance.daemon_cursor_storage.set_cursor_values({RETRY_CURSOR: str(value)})
        time.sleep(RETRY_DAEMON_INTERVAL_S + 1)
        stored = int(instance.daemon_cursor_storage.get_cursor_values({RETRY_CURSOR})[RETRY_CURSOR])
        return stored == value or value < stored < NEVER

    wait_for("the retry daemon to keep the cursor the test set", held, 60)


def drop(inbox: Path, actor: str) -> None:
    folder = inbox / USER
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{actor}.json").write_text('{"actor_type": "human", "actor_sex": "female"}')
    shutil.copy(SAMPLE_PORTRAIT, folder / f".{actor}.jpg")
    (folder / f".{actor}.jpg").rename(folder / f"{actor}.jpg")  # whole, as the README says


class Bucket:
    def __init__(self, s3: S3Env) -> None:
        self.s3, self.client = s3, s3.client()

    def manifest(self, actor: str) -> dict[str, Any] | None:
        key = f"{USER}/custom-actors/{actor}/training_data/manifest.json"
        try:
            return json.loads(self.client.get_object(Bucket=self.s3.bucket, Key=key)["Body"].read())
        except self.client.exceptions.NoSuchKey:
            return None

    def wait_manifest(
        self, actor: str, cluster: Cluster, done: Any, timeout_s: float = TIMEOUT_S
    ) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            found = self.manifest(actor)
            return found if found and done(found) else None

        try:
            return wait_for(f"{actor}'s manifest", ready, timeout_s, interval_s=0.5)
        except TimeoutError as exc:
            logs = "\n".join(f"--- {s.name}\n{tail(s.log, 15)}" for s in cluster.services.values())
            raise AssertionError(f"{exc}; runs: {runs(cluster, actor)}\n{logs}") from None


def launch_images_run(cluster: Cluster, partition: str) -> None:
    """What the UI's Materialize of one ``training_image`` partition launches."""
    mutation = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
    params = {
        "selector": {
            "repositoryLocationName": "actor_pipeline",
            "repositoryName": "__repository__",
            "jobName": "make_training_images",
        },
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
        "runConfigData": {},
    }
    launched = cluster.graphql(mutation, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched


def runs(cluster: Cluster, actor: str) -> list[dict[str, Any]]:
    query = """query($actor: String!) { runsOrError(filter: {tags: [{key: "actor_pipeline/actor", value: $actor}]}) {
        ... on Runs { results { runId jobName status tags { key value } } } } }"""
    return cluster.graphql(query, {"actor": actor})["runsOrError"]["results"]


def ended_retry(cluster: Cluster, actor: str, parent_id: str) -> dict[str, Any] | None:
    """The one retry of run ``parent_id``, once it has ended."""
    retries = [r for r in runs(cluster, actor) if tags(r).get("dagster/parent_run_id") == parent_id]
    assert len(retries) <= 1, retries
    return retries[0] if retries and retries[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED") else None


def run_messages(cluster: Cluster, run_id: str) -> list[str]:
    query = """query($id: ID!) { runOrError(runId: $id) { ... on Run { eventConnection(afterCursor: null) {
        events { ... on MessageEvent { message } } } } } }"""
    events = cluster.graphql(query, {"id": run_id})["runOrError"]["eventConnection"]["events"]
    return [event.get("message") or "" for event in events]


def tags(run: dict[str, Any]) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in run["tags"]}


def celery_state(cluster: Cluster, run: dict[str, Any]) -> str:
    from celery import Celery

    task_id = tags(run).get("dagster-celery/task_id")
    backend = cluster.service_env()["ACTOR_PIPELINE_CELERY_BACKEND"]
    return Celery(backend=backend).AsyncResult(task_id).state if task_id else "UNKNOWN"


def in_flight(emulator: ReplicateEmulator) -> int:
    return sum(p["status"] in ("starting", "processing") for p in emulator.account.predictions())


def settled(emulator: ReplicateEmulator) -> Any:
    wait_for("every prediction to end", lambda: in_flight(emulator) == 0, 30)
    return emulator.account.counters()

"""The cluster's shipped settings (``deploy/cluster/``) and how ``make cluster-stop`` stops what
``make cluster`` recorded, without starting any server."""

import json
import signal
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes import ConfigurableClassData
from dagster_celery.launcher import CeleryRunLauncher

from actor_pipeline.cluster.__main__ import main
from actor_pipeline.cluster.processes import pid_running, running_in_session
from actor_pipeline.cluster.topology import STATE_FILE, stop_recorded

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_the_cluster_instance_is_the_shipped_one_on_postgres_with_celery_and_run_monitoring() -> None:
    cluster, sqlite = load(DEPLOY / "cluster" / "dagster.yaml"), load(DEPLOY / "dagster.yaml")
    # One actor generating per worker process: as many as the runs that may run at once.
    pool = cluster["concurrency"]["pools"].pop("default_limit")
    assert pool == cluster["concurrency"]["runs"]["max_concurrent_runs"] == 6
    sqlite["concurrency"]["pools"].pop("default_limit")
    own = {"storage", "run_launcher", "run_monitoring"}
    assert {k: v for k, v in cluster.items() if k not in own} == {k: v for k, v in sqlite.items() if k not in own}
    postgres = load(DEPLOY / "dagster.postgres.yaml")["storage"]["postgres"]["postgres_db"]
    assert cluster["storage"]["postgres"]["postgres_db"] == postgres | {"port": {"env": "PGPORT"}}
    launcher = cluster["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_celery.launcher", "CeleryRunLauncher")
    # The workers listen where the launcher sends runs, and store results where monitoring reads them.
    worker = load(DEPLOY / "cluster" / "celery.yaml")["execution"]["config"]
    assert worker == {key: launcher["config"][key] for key in ("broker", "backend")}
    monitoring = cluster["run_monitoring"]
    assert monitoring["enabled"] is True
    # A worker lost whole leaves its run STARTED until this fails it: within the hour its
    # predictions' outputs live, so the retry adopts them at no cost.
    assert monitoring["max_runtime_seconds"] < 3600
    assert cluster["run_retries"] == {"enabled": True, "max_retries": 2, "retry_on_asset_or_op_failure": False}


def test_the_cluster_instance_and_its_run_launcher_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broker = "redis://127.0.0.1:1/0"
    monkeypatch.setenv("ACTOR_PIPELINE_CELERY_BROKER", broker)
    monkeypatch.setenv("ACTOR_PIPELINE_CELERY_BACKEND", "redis://127.0.0.1:1/1")
    (tmp_path / "dagster.yaml").write_text((DEPLOY / "cluster" / "dagster.yaml").read_text())
    config, _ = dagster_instance_config(str(tmp_path))  # the instance schema (storage is built later)
    launcher = config["run_launcher"]
    data = ConfigurableClassData(launcher["module"], launcher["class"], yaml.safe_dump(launcher["config"]))
    built = data.rehydrate(CeleryRunLauncher)  # the launcher's own schema, and its Celery app
    assert built.broker == broker and built.supports_check_run_worker_health


def test_the_code_server_serves_the_location_the_project_names() -> None:
    (entry,) = load(DEPLOY / "cluster" / "workspace.yaml")["load_from"]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dg"]["project"]
    assert entry["grpc_server"]["location_name"] == project["code_location_name"]


def test_cluster_stop_stops_every_recorded_session_when_their_supervisor_is_gone(tmp_path: Path) -> None:
    sleepers = [
        subprocess.Popen(["sh", "-c", "sleep 300 & sleep 300"], start_new_session=True) for _ in range(2)
    ]  # each a group of two, as a service and the helpers it starts
    try:
        services = {"worker-a": sleepers[0].pid, "daemon": sleepers[1].pid}
        # The process that started them was killed with -9 (its pid no longer runs).
        (tmp_path / STATE_FILE).write_text(json.dumps({"supervisor": 2**22 + 1, "services": services, "pgdata": ""}))
        assert sorted(stop_recorded(tmp_path)) == ["daemon", "worker-a"]
        assert not any(running_in_session(pid) for pid in services.values())
        assert not (tmp_path / STATE_FILE).exists()
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()


def test_cluster_down_with_nothing_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["down", "--dir", str(tmp_path)]) == 0
    assert "no cluster running" in capsys.readouterr().out


def test_cluster_stop_stops_a_running_cluster_through_the_process_that_started_it(tmp_path: Path) -> None:
    """``make cluster-stop`` SIGTERMs ``make cluster``'s process, which stops its services itself."""
    supervisor = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / STATE_FILE).write_text(json.dumps({"supervisor": supervisor.pid, "services": {}, "pgdata": ""}))
        stop_recorded(tmp_path)  # returns once it has exited
        assert not pid_running(supervisor.pid)
        assert supervisor.wait(1) == -signal.SIGTERM
    finally:
        supervisor.kill()
        supervisor.wait()

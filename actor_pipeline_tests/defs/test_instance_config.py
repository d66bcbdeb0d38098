"""The shipped instance configuration (``deploy/dagster.yaml`` and its Postgres variant)."""

import os
import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml

from actor_pipeline.commands.instance import open_instance
from actor_pipeline.defs.runs import ACTOR_TAG
from actor_pipeline.defs.settings import PipelineSettings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_the_sqlite_config_queues_runs_limits_the_pool_and_retries_crashes(
    shipped_instance: dg.DagsterInstance,
) -> None:
    instance = shipped_instance
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert instance.run_coordinator.dequeue_interval_seconds == 1  # type: ignore[attr-defined]
    assert (instance.run_retries_enabled, instance.run_retries_max_retries) == (True, 2)
    assert instance.run_retries_retry_on_asset_or_op_failure is False  # failed shots are rerun, not whole runs
    assert instance.run_monitoring_enabled  # notices crashed run workers, so they are retried
    concurrency = instance.get_concurrency_config()
    assert concurrency.pool_config.default_pool_limit == 3  # the "replicate" pool
    assert concurrency.run_queue_config
    assert {"key": ACTOR_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in (
        concurrency.run_queue_config.tag_concurrency_limits or []
    )
    assert type(instance.run_storage).__name__ == "SqliteRunStorage"


def _load_failure(folder: Path, config: str) -> Exception:
    """Why an instance configured by ``config`` does not load. Dagster checks the file against its
    instance schema first (``DagsterInvalidConfigError``), then builds the storage it names."""
    folder.mkdir()
    (folder / "dagster.yaml").write_text(config)
    with pytest.raises(Exception) as failed:
        dg.DagsterInstance.from_config(str(folder))
    return failed.value


def test_the_postgres_variant_differs_only_in_storage_and_names_the_psycopg2_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = (DEPLOY / "dagster.postgres.yaml").read_text()
    # Past the schema, loading stops at the storage: for want of the dagster-postgres extra or, where
    # it is installed, of a database at these.
    for name, value in {"PGHOST": "127.0.0.1", "PGUSER": "nobody", "PGPASSWORD": "-", "PGDATABASE": "none"}.items():
        monkeypatch.setenv(name, value)
    failure = _load_failure(tmp_path / "shipped", config)
    assert not isinstance(failure, dg.DagsterInvalidConfigError), failure
    misspelt = _load_failure(tmp_path / "misspelt", config.replace("scheme:", "schem:"))  # the check is not vacuous
    assert isinstance(misspelt, dg.DagsterInvalidConfigError) and '"schem"' in str(misspelt), misspelt

    sqlite = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    postgres = yaml.safe_load(config)
    assert {k: v for k, v in postgres.items() if k != "storage"} == sqlite
    database = postgres["storage"]["postgres"]["postgres_db"]
    assert database["scheme"] == "postgresql+psycopg2"  # SQLAlchemy 2.1 would pick psycopg 3 otherwise
    assert all(
        database[key] == {"env": var}
        for key, var in [
            ("hostname", "PGHOST"),
            ("username", "PGUSER"),
            ("password", "PGPASSWORD"),
            ("db_name", "PGDATABASE"),
        ]
    )


def _children() -> dict[int, str]:
    """This process's live children and their command lines, from /proc."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid() and fields[0] != "Z":
                found[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # exited meanwhile
            continue
    return found


def test_the_cli_opens_the_ui_instance_folder_with_its_config_but_captures_no_compute_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "state" / "dagster"  # where `make ui` puts the shipped config
    home.mkdir(parents=True)
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    before, during = _children(), []

    @dg.asset
    def probe() -> None:
        during.append({pid: cmd for pid, cmd in _children().items() if pid not in before})

    with open_instance(PipelineSettings.configure(storage={"state_dir": str(tmp_path / "state")}).resolved_instance_dir) as instance:
        assert Path(instance.root_directory) == home
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"  # dagster.yaml applies
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 3
        assert type(instance.compute_log_manager).__name__ == "NoOpComputeLogManager"
        assert dg.materialize([probe], instance=instance).success
    # DagsterInstance.from_config on this folder would start `tail -F` and watch_orphans here.
    assert during == [{}]

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "elsewhere"))
    with open_instance(PipelineSettings.configure(storage={"state_dir": str(tmp_path / "state")}).resolved_instance_dir) as instance:
        assert Path(instance.root_directory) == tmp_path / "elsewhere"
        assert type(instance.compute_log_manager).__name__ == "NoOpComputeLogManager"

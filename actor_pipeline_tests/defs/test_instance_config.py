"""The shipped instance configuration (``deploy/dagster.yaml`` and its Postgres variant)."""

import shutil
from pathlib import Path

import dagster as dg
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config_schema

from actor_pipeline.defs.runs import ACTOR_TAG

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_the_sqlite_config_queues_runs_limits_the_pool_and_retries_crashes(tmp_path: Path) -> None:
    shutil.copy(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
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


def test_the_postgres_variant_differs_only_in_storage_and_names_the_psycopg2_driver() -> None:
    sqlite = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    postgres = yaml.safe_load((DEPLOY / "dagster.postgres.yaml").read_text())
    assert validate_config(dagster_instance_config_schema(), postgres).success
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

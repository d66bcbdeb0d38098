"""Fixtures and plugins shared by the whole suite."""

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from actor_pipeline.generation import preview_backend
from actor_pipeline.samples import SAMPLE_PORTRAIT
from actor_pipeline.storage.folder import FolderStorage
from actor_pipeline_tests.replicate_emulator import Behaviour, ReplicateEmulator
from actor_pipeline_tests.support.backends import FlakyBackend

# Moto's S3 server, the fault proxy and the AWS environment (one moto per worker), and ``made_once``.
pytest_plugins = ["actor_pipeline_tests.support.s3", "actor_pipeline_tests.support.made_once"]
# Helper modules that assert: their failures are reported like a test's own.
pytest.register_assert_rewrite("actor_pipeline_tests.defs.pipeline", "actor_pipeline_tests.durability.harness")


RAM_DISK = Path("/dev/shm")

# Where PYTHONDONTWRITEBYTECODE is set (container images often set it), every process the suite
# starts (xdist's workers, the CLIs, Dagster's servers and run workers) would compile the package
# anew and pytest rewrite every test module in each worker: about 8 % of the suite's CPU. The
# suite writes its bytecode (to the git-ignored __pycache__ folders), from here on and in them.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
    sys.dont_write_bytecode = False


def pytest_configure(config: pytest.Config) -> None:
    """Temporary files (``tmp_path``, Dagster's instances, the servers and browser the tests start)
    go to RAM where Linux mounts a tmpfs, unless ``TMPDIR`` or ``--basetemp`` says otherwise: the
    shot journal fsyncs every step of every shot, and on a disk each fsync waits for the device
    (a tenth of the suite's time). What fsync guarantees cannot be tested by killing processes."""
    if "TMPDIR" not in os.environ and config.option.basetemp is None and os.access(RAM_DISK, os.W_OK):
        os.environ["TMPDIR"] = str(RAM_DISK)  # for the processes the tests start, xdist's workers first
        tempfile.tempdir = None  # read TMPDIR again


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment() -> Iterator[None]:
    """Tests must never pick up a developer's token, bucket or instance from the environment.
    Session-wide, so module-scoped fixtures are isolated too; a test's own ``monkeypatch``
    changes are undone after it, back to this."""
    with pytest.MonkeyPatch.context() as patch:
        for name in (
            "REPLICATE_API_TOKEN",
            "AWS_USER_FILES_BUCKET",
            "ACTOR_PIPELINE_CATALOG",
            "ACTOR_PIPELINE_STATE_DIR",
            "ACTOR_PIPELINE_MAX_CONCURRENCY",
            "DAGSTER_HOME",
        ):
            patch.delenv(name, raising=False)
        # Identity checks load dlib's models (seconds per run, where the extra is installed):
        # only the tests about them turn them on.
        patch.setenv("ACTOR_PIPELINE_QC_IDENTITY", "0")
        yield


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long tests first (the UI's and the cluster's, then the interrupted CLI's), each
    followed by a short one. xdist hands each worker two tests to start with, then (with ``make
    test``'s ``--maxschedchunk=1``) one at a time in this order: the long ones start together on
    different workers and overlap the rest instead of ending the run alone."""
    long = sorted(
        (item for item in items if item.get_closest_marker("e2e") or "durability" in item.path.parts),
        key=lambda item: not item.get_closest_marker("e2e"),
    )
    short = [item for item in items if item not in long]
    paired = [item for pair in zip(long, short, strict=False) for item in pair]
    items[:] = paired + long[len(paired) // 2 :] + short[len(paired) // 2 :]


@pytest.fixture(autouse=True)
def _fresh_notices() -> None:
    """Each test sees the once-per-process preview notice afresh."""
    preview_backend._announce.cache_clear()


@pytest.fixture
def portrait_bytes() -> bytes:
    return SAMPLE_PORTRAIT.read_bytes()


@pytest.fixture
def portrait_file(tmp_path: Path, portrait_bytes: bytes) -> Path:
    path = tmp_path / "portrait.jpg"
    path.write_bytes(portrait_bytes)
    return path


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[ReplicateEmulator]:
    """The Replicate emulator, with the environment pointing the real client at it."""
    with ReplicateEmulator(behaviour=Behaviour(latency_s=0.05)) as running:
        for name, value in running.env().items():
            monkeypatch.setenv(name, value)
        yield running


@pytest.fixture
def storage(tmp_path: Path) -> FolderStorage:
    return FolderStorage(tmp_path / "store")


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """An in-memory instance: a fifth less CPU per run than ``instance_for_test``'s SQLite files,
    whose own behaviour the tests of the shipped instance cover (``defs/test_instance_config``)."""
    with dg.DagsterInstance.ephemeral() as test_instance:
        yield test_instance


@pytest.fixture
def sqlite_instance() -> Iterator[dg.DagsterInstance]:
    """A temporary instance on SQLite files, for code that reopens the instance from its reference
    (a schedule's evaluation context)."""
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def flaky() -> FlakyBackend:
    return FlakyBackend()

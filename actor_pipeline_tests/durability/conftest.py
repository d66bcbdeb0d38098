"""Fixtures of the durability suite (issue 9): the emulator, the CLIs a test starts (every process
group killed when the test ends), and a ``Harness`` on local storage, on S3 behind the fault proxy,
or on a small disk."""

import os
import pickle
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from actor_pipeline.samples import SAMPLE_PORTRAIT
from actor_pipeline_tests.durability.harness import (
    HOLDINGS_FILE,
    BucketStore,
    FolderStore,
    Harness,
    Processes,
    SmallDisk,
)
from actor_pipeline_tests.durability.launcher import Launcher, start_launcher
from actor_pipeline_tests.replicate_emulator import Behaviour, ReplicateEmulator
from actor_pipeline_tests.support.made_once import MadeOnce
from actor_pipeline_tests.support.s3 import FaultProxy, S3Env

LATENCY_S = 3.0  # long enough to catch 8 predictions in flight between two polls
# What s3_env and isolated_aws_env set (fault_proxy repoints AWS_ENDPOINT_URL at the proxy).
_S3_VARIABLES = (
    "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY", "AWS_ACCESS_SECRET", "AWS_REGION", "AWS_USER_FILES_BUCKET",
    "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_EC2_METADATA_DISABLED",
)  # fmt: skip


@pytest.fixture
def emulator() -> Iterator[ReplicateEmulator]:
    """The emulator, with predictions that take ``LATENCY_S``. The CLI gets its ``env()``; this
    process's environment is left alone."""
    with ReplicateEmulator(behaviour=Behaviour(latency_s=LATENCY_S)) as running:
        yield running


@pytest.fixture(scope="session")
def launcher(run_folder: Path) -> Iterator[Launcher]:
    """This worker's connection to the process that starts the CLIs, one for the test run: it
    imports their libraries once. It ends after pytest (xdist's workers' parent) has."""
    pytest_pid = os.getppid() if os.environ.get("PYTEST_XDIST_WORKER") else os.getpid()
    connection = Launcher(start_launcher(run_folder, pytest_pid))
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def processes(emulator: ReplicateEmulator, launcher: Launcher) -> Iterator[Processes]:
    """The CLIs a test starts; their groups are killed at its end (before the emulator stops,
    which is why this fixture depends on it)."""
    started = Processes(launcher)
    try:
        yield started
    finally:
        started.reap_all()


@pytest.fixture(scope="session")
def made_set(made_once: MadeOnce, launcher: Launcher) -> Path:
    """A folder with the actor's complete set, made once for the test run by the CLI against an
    emulator at L = 0.05 s (``Harness.start_from`` copies it): tests that start from a made set
    then skip making it, about 2 CPU-s each."""

    def make(folder: Path) -> None:
        with ReplicateEmulator(behaviour=Behaviour(latency_s=0.05)) as running:
            made = Processes(launcher)
            portrait = folder / "portrait.jpg"
            portrait.write_bytes(SAMPLE_PORTRAIT.read_bytes())
            try:
                harness = Harness(running, made, folder, portrait, folder / "out", FolderStore(folder / "out"))
                harness.generate().wait().assert_ended_cleanly(0, with_message=False)
            finally:
                made.reap_all()
            (folder / HOLDINGS_FILE).write_bytes(pickle.dumps(running.account.holdings()))

    return made_once("durability-made-set", make)


@pytest.fixture
def harness(emulator: ReplicateEmulator, processes: Processes, tmp_path: Path, portrait_file: Path) -> Harness:
    """Local storage: the set goes to ``tmp_path/out``."""
    out = tmp_path / "out"
    return Harness(emulator, processes, tmp_path, portrait_file, out, FolderStore(out))


@pytest.fixture
def s3_harness(
    emulator: ReplicateEmulator,
    processes: Processes,
    tmp_path: Path,
    portrait_file: Path,
    s3_env: S3Env,
    fault_proxy: FaultProxy,
) -> Harness:
    """S3 storage: moto behind ``fault_proxy`` (which a test can take down), a fresh bucket."""
    s3_vars = {name: os.environ[name] for name in _S3_VARIABLES}
    assert s3_vars["AWS_ENDPOINT_URL"] == fault_proxy.url  # the CLI must go through the proxy
    return Harness(emulator, processes, tmp_path, portrait_file, tmp_path / "out", BucketStore(s3_env), s3_vars)


@pytest.fixture
def small_disk(tmp_path: Path, processes: Processes) -> Iterator[SmallDisk]:
    """A 32 MiB tmpfs (a full run needs ~2 MiB), skipped where mounting is not permitted. Always
    unmounted, after every CLI that might hold a file open on it has been killed."""
    path = tmp_path / "small-disk"
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m,mode=0755", "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root or CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield SmallDisk(path, 32)
    finally:
        processes.reap_all()
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)  # busy: detach now, free later


@pytest.fixture
def disk_harness(
    emulator: ReplicateEmulator, processes: Processes, tmp_path: Path, portrait_file: Path, small_disk: SmallDisk
) -> Harness:
    """Local storage on ``small_disk``; the state folder stays on the roomy disk."""
    out = small_disk.path / "out"
    return Harness(emulator, processes, tmp_path, portrait_file, out, FolderStore(out))

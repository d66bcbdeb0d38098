"""The durability suite's harness (issue 9): ``Harness`` drives the real ``actor-pipeline`` CLI
in processes of its own (``CliProcess``, each in its own session, forked by ``Launcher``)
against the Replicate emulator running in this process, and reads what it stored
(``FolderStore``, or ``BucketStore`` straight from moto); ``SmallDisk`` is a tmpfs to fill.

Every wait polls a condition (emulator counters, stored objects) and is bounded.
"""

import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from actor_pipeline.catalog import build_prompt_set, get_actor_descriptor, load_catalog
from actor_pipeline_tests.durability.launcher import Launcher
from actor_pipeline_tests.replicate_emulator import Counters, Fault, ReplicateEmulator
from actor_pipeline_tests.replicate_emulator.account import Problem
from actor_pipeline_tests.support.s3 import S3Env

ACTOR, USER = "dur", "default"
HOLDINGS_FILE = "holdings.pickle"  # in a made_set folder: the emulator's account as the set left it
SHOTS = 17
PRICE_USD = 0.04  # flux-kontext-pro, per output image
TRAINING_DIR = f"{USER}/custom-actors/{ACTOR}/training_data"
MANIFEST_KEY = f"{TRAINING_DIR}/manifest.json"
_IMAGE_KEY = re.compile(rf"{re.escape(TRAINING_DIR)}/actor_{ACTOR}_td_\d\d\.jpg")
_IN_FLIGHT = ("starting", "processing")
_POLL_S = 0.05
START_TIMEOUT_S = 60.0  # a CLI reaching its first predictions (imports, Dagster, portrait), on a busy machine
RUN_TIMEOUT_S = 120.0  # a CLI run from start to exit
# Variables of the developer's own setup that must not reach the CLI under test.
_STRIPPED_PREFIXES = ("REPLICATE_", "AWS_", "ACTOR_PIPELINE_")
_STRIPPED_NAMES = ("DAGSTER_HOME",)
_PROGRESS_LINE = re.compile(r"^\d\d:\d\d:\d\d ")  # the CLI's timestamped progress log


def summary(counters: Counters) -> str:
    """The emulator's counters that matter here, short enough for an assertion message."""
    twice = sum(n > 1 for n in counters.predictions_per_shot.values())
    return (
        f"created={counters.predictions_created} paid={counters.paid} shots paid more than once={twice}"
        f" download_requests={counters.download_requests} cancel_requests={counters.cancel_requests}"
    )


@dataclass(frozen=True)
class Finished:
    """A CLI run that ended: its exit code and everything it wrote."""

    argv: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    @property
    def message(self) -> str:
        """The last line on stderr: the one line that says how the run ended."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""

    def describe(self) -> str:
        """For assertion messages: the command, its exit code and the tail of its output."""
        tail = "\n".join(self.stderr.splitlines()[-25:])
        return (
            f"`{' '.join(self.argv)}` exited {self.code}\n"
            f"--- stdout (head) ---\n{self.stdout[:1500]}\n--- stderr (tail) ---\n{tail}"
        )

    def json(self) -> Any:
        try:
            return json.loads(self.stdout)
        except ValueError:
            pytest.fail(f"stdout is not one JSON document\n{self.describe()}")

    def assert_ended_cleanly(self, code: int, *, with_message: bool = True) -> None:
        """Exit ``code`` and no traceback; ``with_message``: the last stderr line is a message
        saying how the run ended, not a line of progress."""
        assert self.code == code, f"expected exit {code}\n{self.describe()}"
        assert "Traceback" not in self.stderr, f"a traceback on stderr\n{self.describe()}"
        if with_message:
            assert self.message, f"nothing on stderr says how the run ended\n{self.describe()}"
            assert not _PROGRESS_LINE.match(self.message), (
                f"the last stderr line is progress, not a message\n{self.describe()}"
            )


class CliProcess:
    """One ``actor-pipeline`` process, in its own session (process group), started by ``launcher``."""

    def __init__(self, launcher: Launcher, argv: list[str], env: dict[str, str], cwd: Path, log_stem: Path) -> None:
        self.argv = tuple(argv)
        self._launcher = launcher
        # Files, not pipes: nobody reads while the test polls, and a full pipe would stall the CLI.
        self._stdout_path, self._stderr_path = log_stem.with_suffix(".out"), log_stem.with_suffix(".err")
        self._launch = launcher.start(list(argv), env, cwd, self._stdout_path, self._stderr_path)
        self.pid = launcher.pid(self._launch)

    def running(self) -> bool:
        return self._launcher.returncode(self._launch) is None

    def send(self, signum: signal.Signals) -> None:
        """Deliver ``signum`` to the CLI process, as ``kill -TERM`` does."""
        if self.running():  # its pid may be another process's once it has been reaped
            os.kill(self.pid, signum)

    def kill_group(self, signum: signal.Signals = signal.SIGKILL) -> None:
        """Signal the whole group: ``kill -9`` of everything the CLI started, or a terminal's Ctrl-C."""
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass

    def stderr_so_far(self) -> str:
        return self._stderr_path.read_text(errors="replace")

    def wait(self, timeout: float = RUN_TIMEOUT_S) -> Finished:
        """The finished run; fails the test (after killing the group) if it runs past ``timeout``."""
        try:
            code = self._launcher.wait(self._launch, timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
            self._launcher.wait(self._launch, 10)
            pytest.fail(f"`{' '.join(self.argv)}` did not end within {timeout:g} s\n{self._tail()}")
        return Finished(
            self.argv,
            code,
            self._stdout_path.read_text(errors="replace"),
            self._stderr_path.read_text(errors="replace"),
        )

    def reap(self) -> None:
        """Kill the group if anything of it is left, and wait for the exit status."""
        self.kill_group()
        try:
            self._launcher.wait(self._launch, 10)
        except subprocess.TimeoutExpired:
            pass

    def _tail(self) -> str:
        return "--- stderr (tail) ---\n" + "\n".join(self.stderr_so_far().splitlines()[-25:])


class Processes:
    """Every CLI a test started through ``launcher``; ``reap_all`` leaves none behind."""

    def __init__(self, launcher: Launcher) -> None:
        self.launcher = launcher
        self.started: list[CliProcess] = []

    def reap_all(self) -> None:
        for process in self.started:
            process.reap()


class Store(Protocol):
    """Where the CLI puts the set, seen from the test (not through any fault injection)."""

    def keys(self) -> set[str]: ...

    def read(self, key: str) -> bytes | None: ...


class FolderStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def keys(self) -> set[str]:
        folder = self.root / TRAINING_DIR
        if not folder.is_dir():
            return set()
        return {p.relative_to(self.root).as_posix() for p in folder.glob("*") if p.is_file()}

    def read(self, key: str) -> bytes | None:
        path = self.root / key
        return path.read_bytes() if path.is_file() else None


class BucketStore:
    """The bucket read straight from moto, so it stays visible while the proxy is down."""

    def __init__(self, s3: S3Env) -> None:
        self.s3, self.client = s3, s3.client()

    def keys(self) -> set[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.s3.bucket, Prefix=TRAINING_DIR)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def read(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.s3.bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None


class Harness:
    """One actor (``dur``) made by the real CLI against ``emulator``, into ``store``."""

    actor = ACTOR
    shots = SHOTS

    def __init__(
        self,
        emulator: ReplicateEmulator,
        processes: Processes,
        workdir: Path,
        portrait: Path,
        out: Path,
        store: Store,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.emulator, self.processes, self.workdir, self.portrait = emulator, processes, workdir, portrait
        self.out, self.store = out, store
        self.state_dir = workdir / "state"  # outside --out, so a full --out leaves it writable
        self.env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(_STRIPPED_PREFIXES) and name not in _STRIPPED_NAMES
        }
        self.env.update(emulator.env())
        self.env["ACTOR_PIPELINE_STATE_DIR"] = str(self.state_dir)
        self.env["ACTOR_PIPELINE_QC_IDENTITY"] = "0"  # dlib's models cost seconds per run; not what these test
        self.env.update(extra_env or {})
        self._download_faults = (0, 0)  # (injected, download_requests before)

    def start_from(self, made: Path) -> None:
        """Begin where ``made_set`` (``made``) left the actor: its storage and state folders
        copied here, and the emulator holding what it held then."""
        shutil.copytree(made / "out", self.out)
        shutil.copytree(made / "state", self.state_dir)
        self.emulator.account.restore(pickle.loads((made / HOLDINGS_FILE).read_bytes()))

    # --- running the CLI ------------------------------------------------------------------------

    def start(self, *argv: str) -> CliProcess:
        log_stem = self.workdir / f"cli-{len(self.processes.started) + 1:02d}-{argv[0]}"
        process = CliProcess(self.processes.launcher, list(argv), self.env, self.workdir, log_stem)
        self.processes.started.append(process)
        return process

    def generate(self, *extra: str) -> CliProcess:
        """``generate`` for the actor; called again with the same ``extra`` it is the same command."""
        return self.start("generate", str(self.portrait), "--actor-id", ACTOR, "--out", str(self.out), *extra)

    def retry_failed(self, *extra: str) -> CliProcess:
        return self.start("retry-failed", "--actor-id", ACTOR, "--out", str(self.out), *extra)

    def status(self) -> CliProcess:
        return self.start("status", "--actor-id", ACTOR, "--out", str(self.out), "--json")

    # --- waiting ----------------------------------------------------------------------------------

    def wait_until(
        self,
        condition: Callable[[], bool],
        what: str,
        timeout: float = START_TIMEOUT_S,
        watch: CliProcess | None = None,
    ) -> None:
        """Poll ``condition`` until it holds; fail after ``timeout`` or once ``watch`` has exited."""
        deadline = time.monotonic() + timeout
        while not condition():
            if watch is not None and not watch.running():
                finished = watch.wait(1)
                if condition():  # it held just before the exit
                    return
                pytest.fail(f"the CLI exited before {what}\n{finished.describe()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {timeout:g} s; {summary(self.emulator.account.counters())}")
            time.sleep(_POLL_S)

    def summary(self, counters: Counters | None = None) -> str:
        return summary(counters or self.emulator.account.counters())

    def in_flight(self) -> int:
        """Predictions created and not yet ended, as Replicate shows them now."""
        return sum(p["status"] in _IN_FLIGHT for p in self.emulator.account.predictions())

    def wait_in_flight(self, count: int, watch: CliProcess) -> None:
        self.wait_until(lambda: self.in_flight() >= count, f"{count} predictions in flight", watch=watch)

    def wait_images(self, count: int, watch: CliProcess) -> None:
        self.wait_until(lambda: len(self.images()) >= count, f"{count} images stored", watch=watch)

    def settled(self) -> Counters:
        """The emulator's counters once no prediction is running: the final bill so far."""
        slowest = max([self.emulator.behaviour.latency_s, *self.emulator.behaviour.slow.values()])
        self.wait_until(lambda: self.in_flight() == 0, "end of every prediction", timeout=slowest + 15)
        return self.emulator.account.counters()

    # --- shaping the emulator -------------------------------------------------------------------

    def stagger(self, first: int, slow_s: float) -> None:
        """Shots after the ``first`` ones (catalog order) take ``slow_s``: with every shot in flight
        at once, ``first`` images are stored well before the others end."""
        descriptor = get_actor_descriptor("human", None)
        shots = build_prompt_set(load_catalog(), ACTOR, descriptor).shots
        self.emulator.behaviour.slow = {shot.prompt: slow_s for shot in shots[first:]}

    def fail_downloads_forever(self, count: int = 5000) -> None:
        """Every output download answers 503 (until ``clear_download_faults``)."""
        self._download_faults = (count, self.emulator.account.counters().download_requests)
        self.emulator.account.inject("download", *[Fault(503)] * count)

    def clear_download_faults(self) -> None:
        """Use up the injected faults that are left: each download request takes one, in order, even
        for an unknown output; then check a real output downloads."""
        injected, before = self._download_faults
        left = injected - (self.emulator.account.counters().download_requests - before)
        for _ in range(max(0, left)):
            try:
                self.emulator.account.download("drained")
            except Problem:
                pass
        done = [p["id"] for p in self.emulator.account.predictions() if p["status"] == "succeeded"]
        if done:
            try:
                self.emulator.account.download(done[0])
            except Problem as problem:
                pytest.fail(f"harness: download faults are still queued ({problem.status})")

    # --- what was stored ---------------------------------------------------------------------------

    def images(self) -> set[str]:
        return {key for key in self.store.keys() if _IMAGE_KEY.fullmatch(key)}

    def manifest(self) -> dict[str, Any] | None:
        raw = self.store.read(MANIFEST_KEY)
        return json.loads(raw) if raw is not None else None

    @property
    def registration_path(self) -> Path:
        return self.out / "_registry" / "actors" / f"{ACTOR}.json"

    def shot_record_path(self, shot_id: str) -> Path:
        return self.out / USER / "custom-actors" / ACTOR / "pipeline" / "shots" / f"{shot_id}.json"

    # --- the goal of every row ---------------------------------------------------------------------

    def assert_paid_once_and_stored(self) -> Counters:
        """Paid = 17 and created = 17 across every run so far, 17 images stored, and the manifest's
        ledger equal to what the emulator billed."""
        counters = self.settled()
        assert counters.paid == SHOTS, f"paid for {counters.paid} predictions, not {SHOTS}: {summary(counters)}"
        created = counters.predictions_created
        assert created == SHOTS, f"{created} predictions created, not {SHOTS}: {summary(counters)}"
        images = self.images()
        assert len(images) == SHOTS, f"{len(images)} images stored: {sorted(images)}"
        manifest = self.manifest()
        assert manifest is not None, "no manifest stored"
        succeeded = [image["shot_id"] for image in manifest["images"] if image["status"] == "succeeded"]
        assert len(succeeded) == SHOTS, f"the manifest lists {len(succeeded)} succeeded shots"
        ledger = manifest["ledger"]
        assert ledger["predictions_created"] == counters.predictions_created, f"ledger {ledger} vs {summary(counters)}"
        assert ledger["cost_usd"] == pytest.approx(PRICE_USD * counters.paid), f"ledger {ledger}, paid {counters.paid}"
        return counters


@dataclass(frozen=True)
class SmallDisk:
    """A tmpfs mounted for one test."""

    path: Path
    size_mb: int

    def fill(self) -> Path:
        """Write a file until the disk refuses more bytes (ENOSPC); return it, to free the space."""
        filler = self.path / "filler.bin"
        chunk = b"\0" * (1 << 20)
        with filler.open("wb", buffering=0) as handle:
            try:
                while True:
                    handle.write(chunk)
            except OSError:
                pass
        # Whatever the chunk size, nothing is left: top up byte by byte.
        with filler.open("ab", buffering=0) as handle:
            try:
                while True:
                    handle.write(b"\0" * 512)
            except OSError:
                pass
        return filler

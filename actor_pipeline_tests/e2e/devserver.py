"""Run ``dg dev`` (webserver, daemon, code server) on a temporary instance, as ``make ui`` does,
and stop every process it started. Used by the end-to-end tests and the latency benchmark.

``Deployment`` is what the UI tests share: the shipped instance with a local inbox and output,
within a time budget. The browser side lives in ``conftest.py`` (the ``page`` fixture).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from actor_pipeline.samples import SAMPLE_PORTRAIT

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"  # screenshots and the servers' logs of the UI tests
DG = Path(sys.executable).with_name("dg")  # dagster-dg-cli, beside this interpreter
SHIPPED_INSTANCE_CONFIG = REPO / "deploy" / "dagster.yaml"
# Variables that would point the server at real services or another instance.
_SCRUBBED = (
    "REPLICATE_API_TOKEN",
    "REPLICATE_BASE_URL",
    "AWS_USER_FILES_BUCKET",
    "DAGSTER_HOME",
    "ACTOR_PIPELINE_CATALOG",
)
T = TypeVar("T")
USER = "u1"  # the user id the UI tests' actors belong to
BUDGET_S = 150  # per UI test by default, start-up and shutdown included


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float, interval_s: float = 0.25) -> T:
    """Poll ``probe`` until it returns something truthy; ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            found = probe()
        except OSError:  # e.g. connection refused while the server starts
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


@dataclass
class DagsterDev:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": dict(variables or {})}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.load(response)
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def wait_until_loaded(self, timeout_s: float) -> None:
        """Wait for the webserver, then for every code location to be LOADED (not failed)."""
        wait_for("the webserver's /server_info", lambda: self._get("/server_info"), timeout_s)
        query = """{ workspaceOrError { ... on Workspace { locationEntries {
            name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""

        def loaded() -> bool:
            self._check_alive()
            entries = self.graphql(query)["workspaceOrError"]["locationEntries"]
            for entry in entries:
                if entry["locationOrLoadError"] and entry["locationOrLoadError"]["__typename"] == "PythonError":
                    raise RuntimeError(
                        f"code location {entry['name']} failed to load: {entry['locationOrLoadError']['message']}"
                    )
            return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)

        wait_for("the code location to load", loaded, timeout_s)

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _get(self, path: str) -> bytes:
        self._check_alive()
        with urllib.request.urlopen(f"{self.url}{path}", timeout=5) as response:
            return response.read()

    def _check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"dg dev exited with {self.process.returncode}:\n{self.log_tail()}")


def instance_home(path: Path, config: Path = SHIPPED_INSTANCE_CONFIG) -> Path:
    """A fresh ``DAGSTER_HOME`` holding the shipped instance configuration."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(config, path / "dagster.yaml")
    return path


@contextmanager
def dagster_dev(
    home: Path, env: Mapping[str, str], log_path: Path, workspace: Path | None = None, timeout_s: float = 90
) -> Iterator[DagsterDev]:
    """``dg dev`` on a loopback port in a new process session, loaded and ready; on exit every
    process of the session is stopped (SIGTERM, then SIGKILL). Without ``workspace`` it serves
    the project as ``[tool.dg]`` in pyproject.toml declares it (what ``make ui`` runs)."""
    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED} | {"DAGSTER_HOME": str(home), **env}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(DG), "dev", *(["-w", str(workspace)] if workspace else []), "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO,
            env=child_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = DagsterDev(process, port, log_path)
    try:
        server.wait_until_loaded(timeout_s)
        yield server
    finally:
        stop_session(process)


def stop_session(process: subprocess.Popen[bytes], grace_s: float = 20) -> None:
    """SIGTERM the process group, wait, SIGKILL whatever of the session is left; raise if
    anything still runs."""
    session = process.pid
    _signal_group(session, signal.SIGTERM)
    if not _session_ends(session, grace_s):
        _signal_group(session, signal.SIGKILL)
        for pid in running_in_session(session):  # in case one left the group
            _kill(pid)
        _session_ends(session, 5)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)  # reap it
    left = running_in_session(session)
    if left:
        raise RuntimeError(f"processes of the dg dev session still run after SIGKILL: {left}")


def _session_ends(session: int, timeout_s: float) -> bool:
    try:
        wait_for("the session's processes to exit", lambda: not running_in_session(session), timeout_s)
    except TimeoutError:
        return False
    return True


def running_in_session(session: int) -> list[int]:
    """Live (not zombie) processes whose session id is ``session``, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        state, sid = fields[0], int(fields[3])
        if sid == session and state != "Z":
            members.append(int(stat.parent.name))
    return members


def _signal_group(group: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(group, sig)


def _kill(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class Deployment:
    """``dg dev`` on the shipped instance configuration, with a local inbox and output; the test
    that runs it must end, shutdown included, within ``budget_s`` of creating it."""

    def __init__(self, tmp_path: Path, name: str, env: Mapping[str, str] = {}, budget_s: float = BUDGET_S) -> None:
        self.tmp_path, self.name, self.budget_s, self.started = tmp_path, name, budget_s, time.monotonic()
        self.inbox, self.out = tmp_path / "inbox", tmp_path / "out"
        self.env = {"ACTOR_PIPELINE_OUTPUT_DIR": str(self.out), "ACTOR_PIPELINE_INBOX": str(self.inbox), **env}

    @contextmanager
    def running(self) -> Iterator[DagsterDev]:
        with dagster_dev(
            instance_home(self.tmp_path / "home"), self.env, ARTIFACTS / f"{self.name}-dagster-dev.log"
        ) as server:
            yield server
        elapsed = time.monotonic() - self.started
        assert elapsed < self.budget_s, f"{self.name} took {elapsed:.0f} s, over its {self.budget_s:.0f} s budget"
        # What `make ui` prints: code server, daemon and run workers load the definitions.
        leaked = [w for w in ("BetaWarning", "PreviewWarning", "SupersessionWarning") if w in server.log_tail(10**6)]
        assert not leaked, f"{leaked} in {server.log_path}"

    def drop(self, actor: str) -> None:
        """Drop the sample portrait (and a sidecar) in the inbox, as ``actor`` of ``USER``."""
        (self.inbox / USER).mkdir(parents=True, exist_ok=True)
        (self.inbox / USER / f"{actor}.json").write_text('{"actor_type": "human", "actor_sex": "female"}')
        shutil.copy(SAMPLE_PORTRAIT, self.inbox / USER / f"{actor}.jpg")

    def manifest(self, actor: str) -> Path:
        return self.out / USER / "custom-actors" / actor / "training_data" / "manifest.json"

    def wait_for_manifest(
        self, server: DagsterDev, actor: str, complete: bool = False, timeout_s: float = 90
    ) -> dict[str, Any]:
        """The actor's manifest once written (with ``complete``: once it lists no failed shot)."""
        path = self.manifest(actor)

        def ready() -> dict[str, Any] | None:
            manifest = json.loads(path.read_text()) if path.exists() else None
            return manifest if manifest and (not complete or not manifest["failed"]) else None

        try:
            return wait_for(f"{actor}'s {'complete ' if complete else ''}manifest", ready, timeout_s)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; dg dev's log ends with:\n{server.log_tail()}") from None

"""Run ``dg dev`` (webserver, daemon, code server) on a temporary instance, as ``make ui`` does,
and stop every process it started. Used by the end-to-end tests and the latency benchmark.

``Deployment`` is what the UI tests share: the shipped instance with a local inbox and output,
within a time budget. The browser side lives in ``conftest.py`` (the ``page`` fixture).
"""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actor_pipeline.cluster.processes import free_port, graphql, stop_session, wait_for
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
USER = "u1"  # the user id the UI tests' actors belong to
BUDGET_S = 150  # per UI test by default, start-up and shutdown included


@dataclass
class DagsterDev:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return graphql(self.url, query, variables)

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
            [
                str(DG), "dev", *(["-w", str(workspace)] if workspace else []),
                "-h", "127.0.0.1", "-p", str(port), "--log-level", "warning",  # as `make ui` runs it
            ],
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
        stop_session(process, what="the dg dev session")


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
        # What `make ui` prints: code server, daemon and run workers load the definitions; the
        # sensor daemon's ticks (two lines per sensor every 5 s at info) stay out.
        printed = server.log_tail(10**6)
        unwanted = ("BetaWarning", "PreviewWarning", "SupersessionWarning", "Checking for new runs for sensor")
        leaked = [w for w in unwanted if w in printed]
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

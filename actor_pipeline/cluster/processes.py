"""Processes started in sessions of their own, and stopped with everything they started.

Dagster's servers start helpers (the code server's gRPC child, run workers, ``tail -F``), and one
started in the background from a shell ignores SIGINT and SIGTERM; so each service runs in a new
session (``start_new_session``) and is stopped by signalling its process group, then by killing
whatever of the session is left (a member that left the group included), found in /proc.
"""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


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


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def graphql(url: str, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """POST a query to the webserver at ``url``; its ``data``, or ``RuntimeError`` naming the errors."""
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": dict(variables or {})}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.load(response)
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


def stop_session(
    process: subprocess.Popen[bytes], grace_s: float = 20, what: str = "the session", sig: signal.Signals = signal.SIGTERM
) -> None:
    """Stop the session ``process`` leads (``stop_by_session``) and reap it."""
    stop_by_session(process.pid, sig, grace_s, what)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def stop_by_session(session: int, sig: signal.Signals, grace_s: float, what: str) -> None:
    """``sig`` to the session's process group, wait, SIGKILL whatever of the session is left;
    raise if anything still runs. Needs only the session id: another process can stop it."""
    signal_group(session, sig)
    if not _session_ends(session, grace_s):
        kill_session(session)
    left = running_in_session(session)
    if left:
        raise RuntimeError(f"processes of {what} still run after SIGKILL: {left}")


def kill_session(session: int) -> None:
    """SIGKILL every process of the session (a machine lost), and wait briefly for them to go."""
    signal_group(session, signal.SIGKILL)
    for pid in running_in_session(session):  # in case one left the group
        _kill(pid)
    _session_ends(session, 5)


def _session_ends(session: int, timeout_s: float) -> bool:
    try:
        wait_for("the session's processes to exit", lambda: not running_in_session(session), timeout_s)
    except TimeoutError:
        return False
    return True


def _stats() -> dict[int, list[str]]:
    """Every live process's /proc stat fields after the command name."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            found[int(stat.parent.name)] = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
    return found


def running_in_session(session: int) -> list[int]:
    """Live (not zombie) processes whose session id is ``session``, from /proc."""
    return [pid for pid, fields in _stats().items() if int(fields[3]) == session and fields[0] != "Z"]


def pid_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def children(pid: int) -> list[int]:
    """Live (not zombie) children of ``pid``, from /proc."""
    return [child for child, fields in _stats().items() if int(fields[1]) == pid and fields[0] != "Z"]


def signal_group(group: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(group, sig)


def _kill(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)

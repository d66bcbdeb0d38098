"""Starts ``actor-pipeline`` processes from a launcher that has imported the CLI's libraries once.

A CLI started with ``python -m actor_pipeline.cli`` spends about 3 CPU-s importing Dagster,
SQLAlchemy and NumPy before it does anything, and the durability suite starts about sixty. The
launcher (``python -m actor_pipeline_tests.durability.launcher SOCKET PYTEST_PID``, one per test
run, which every xdist worker connects to: each would spend about 2.5 CPU-s starting its own)
imports them, and loads dlib's face models as every set's quality checks do (0.3-0.4 CPU-s each
time), then forks one child per CLI. Each child is what the suite needs a CLI to be: a process of
its own in a session of its own (``kill -9`` of its group, SIGTERM, SIGINT), with the test's
environment, working folder and output files, running ``actor_pipeline.cli`` as ``__main__``
and ending as the interpreter does (non-daemon threads joined, atexit handlers, streams
flushed). Only modules that read no environment variable on import are preloaded, and the
commands with the Dagster definitions they run, whose partitions are the default catalog's shots:
a CLI asked for another catalog (``--catalog``, which must be chosen before Dagster code is
imported) is refused, and left to the tests of real processes (``test_cli``).

Protocol, one JSON object a line over the launcher's Unix socket: a connection writes ``{"id", "argv", "env", "cwd", "stdout",
"stderr"}``; the launcher answers ``{"id", "pid"}`` once the child is in its own session, and
``{"id", "code"}`` when it has reaped it (``code`` as ``Popen.returncode``: minus the signal).
Launch ids are the connection's own.
"""

import atexit
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock

from actor_pipeline.catalog.model import CATALOG_ENV_VAR

# What the CLI imports before it reads its arguments, Dagster's SQLite storage, which every
# command opens, and what a set's checks import: none reads the environment on import
# (actor_pipeline.defs does: the catalog).
PRELOAD = (
    "actor_pipeline.cli",
    "dagster",
    "dagster._core.storage.runs.sqlite.sqlite_run_storage",
    "dagster._core.storage.event_log.sqlite.sqlite_event_log",
    "dagster._core.storage.schedules.sqlite.sqlite_schedule_storage",
    "dagster._core.storage.sqlite_storage",  # and what a run in process imports on first use
    "dagster._core.instance.factory",
    "dagster._core.execution.execute_in_process",
    "dagster._core.definitions.repository_definition.repository_data_builder",
    "dagster._core.storage.noop_compute_log_manager",
    "dagster._core.secrets.loader",
    "numpy",
    "PIL.Image",
    "replicate",
    "httpx",  # the client's transport, imported when the first request is sent
    "httpcore",
    "h11",
    "anyio._backends._asyncio",
    "boto3",
    "scipy.fftpack",  # what imagehash.phash imports on first use
    "imagehash",
    "tenacity",
)
# The commands, which import the definitions, which load the catalog (CATALOG_ENV_VAR, unset
# here): a quarter of the CPU a forked ``generate`` spent before its first step.
COMMANDS = tuple(
    f"actor_pipeline.commands.{name}" for name in ("generate", "train", "retry_failed", "status", "ledger", "archive")
)
REPO = Path(__file__).resolve().parents[2]  # where ``-m actor_pipeline_tests...`` is found


def start_launcher(folder: Path, pytest_pid: int) -> Path:
    """The socket of the test run's launcher in ``folder``, started there unless one answers: the
    first xdist worker to ask starts it, the others connect to it. It ends once ``pytest_pid``
    (the run's main pytest process) has."""
    path = folder / "cli-launcher.sock"
    with FileLock(folder / "cli-launcher.lock"):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.connect(str(path))
            return path
        except OSError:
            path.unlink(missing_ok=True)
        process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(path), str(pytest_pid)], cwd=REPO, stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        with process.stdout:
            if json.loads(process.stdout.readline() or "{}") != {"ready": True}:
                raise RuntimeError(f"the CLI launcher did not start (exit {process.wait(10)})")
    return path


class Launcher:
    """A connection to the run's launcher: children started and waited for by launch id."""

    def __init__(self, path: Path) -> None:
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.connect(str(path))
        self._requests = self._socket.makefile("w", encoding="utf-8")
        self._answers = self._socket.makefile("r", encoding="utf-8")
        self._changed = threading.Condition()
        self._pids: dict[int, int] = {}
        self._codes: dict[int, int] = {}
        self._launches = 0
        self._reader = threading.Thread(target=self._read, name="cli-launcher", daemon=True)
        self._reader.start()

    def start(self, argv: list[str], env: Mapping[str, str], cwd: Path, stdout: Path, stderr: Path) -> int:
        """Start ``actor-pipeline ARGV``; return its launch id once it runs in its own session."""
        if any(arg.startswith("--catalog") for arg in argv) or env.get(CATALOG_ENV_VAR):
            raise ValueError("the launcher's CLIs run the default catalog, loaded once: start this one as a process")
        with self._changed:
            self._launches += 1
            launch = self._launches
            request = {"id": launch, "argv": argv, "env": dict(env), "cwd": str(cwd)}
            self._requests.write(json.dumps(request | {"stdout": str(stdout), "stderr": str(stderr)}) + "\n")
            self._requests.flush()
            if not self._changed.wait_for(lambda: launch in self._pids or not self._reader.is_alive(), 30):
                raise RuntimeError("the CLI launcher did not start a process within 30 s")
            if launch not in self._pids:
                raise RuntimeError("the CLI launcher has gone")
            return launch

    def pid(self, launch: int) -> int:
        return self._pids[launch]

    def returncode(self, launch: int) -> int | None:
        with self._changed:
            return self._codes.get(launch)

    def wait(self, launch: int, timeout: float) -> int:
        """The exit code; ``subprocess.TimeoutExpired`` after ``timeout`` seconds, as ``Popen.wait``."""
        with self._changed:
            if not self._changed.wait_for(lambda: launch in self._codes, timeout):
                raise subprocess.TimeoutExpired(f"launch {launch}", timeout)
            return self._codes[launch]

    def close(self) -> None:
        """Leave the launcher (this connection's children are the tests' to end: ``Processes.reap_all``)."""
        self._socket.shutdown(socket.SHUT_RDWR)
        self._reader.join(10)
        for stream in (self._requests, self._answers, self._socket):
            stream.close()

    def _read(self) -> None:
        for line in self._answers:
            answer = json.loads(line)
            with self._changed:
                if "pid" in answer:
                    self._pids[answer["id"]] = answer["pid"]
                else:
                    self._codes[answer["id"]] = answer["code"]
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()


# --- the launcher process ---------------------------------------------------------------------


def _serve(listener: socket.socket, pytest_pid: int) -> None:
    """Fork a child per request of any connection; tell that connection each child's pid and,
    once reaped, its exit code. Ends when ``pytest_pid`` has."""
    woken_r, woken_w = os.pipe()
    os.set_blocking(woken_w, False)
    signal.set_wakeup_fd(woken_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so SIGCHLD wakes select()
    unread: dict[socket.socket, bytes] = {}  # each connection's partial request line
    launches: dict[int, tuple[socket.socket, int]] = {}  # pid -> (connection, launch id)
    while _alive(pytest_pid):
        ready, _, _ = select.select([listener, woken_r, *unread], [], [], 1.0)
        for source in ready:
            if source is listener:
                unread[listener.accept()[0]] = b""
            elif source == woken_r:
                os.read(woken_r, 512)
            elif data := source.recv(65536):
                *lines, unread[source] = (unread[source] + data).split(b"\n")
                for line in lines:
                    request = json.loads(line)
                    own = (listener.fileno(), woken_r, woken_w, *(c.fileno() for c in unread))
                    pid = _fork(request, own)
                    launches[pid] = (source, request["id"])
                    _answer(source, {"id": request["id"], "pid": pid})
            else:  # the worker left: nobody waits for its children's codes
                del unread[source]
                source.close()
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            connection, launch = launches.pop(pid, (None, 0))
            if connection in unread:
                _answer(connection, {"id": launch, "code": os.waitstatus_to_exitcode(status)})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _answer(connection: socket.socket, answer: dict[str, Any]) -> None:
    connection.sendall((json.dumps(answer) + "\n").encode())


def _fork(request: dict[str, Any], launcher_fds: tuple[int, ...]) -> int:
    """Fork the child; return its pid once it has its own session (as ``Popen`` with
    ``start_new_session`` returns after the child's ``setsid``). The child closes
    ``launcher_fds``; its standard streams replace the launcher's pipes."""
    in_session_r, in_session_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(in_session_r)
        for fd in launcher_fds:
            os.close(fd)
        os.setsid()
        os.close(in_session_w)
        _run_cli(request)  # never returns
    os.close(in_session_w)
    os.read(in_session_r, 1)  # EOF once the child has called setsid (or died)
    os.close(in_session_r)
    return pid


def _run_cli(request: dict[str, Any]) -> None:
    """In the child: become ``python -m actor_pipeline.cli ARGV`` and exit as it would."""
    import runpy
    import tempfile

    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code = 1
    try:
        stdin = os.open(os.devnull, os.O_RDONLY)
        stdout = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        stderr = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        tempfile.tempdir = None  # TMPDIR is the test's now
        sys.argv = [str(Path(sys.modules["actor_pipeline.cli"].__file__ or "cli.py")), *request["argv"]]
        try:
            runpy.run_module("actor_pipeline.cli", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as stop:
            if stop.code is None or isinstance(stop.code, int):
                code = stop.code or 0
            else:
                print(stop.code, file=sys.stderr)
        except KeyboardInterrupt:
            traceback.print_exc()
            _exit_as_the_interpreter_does(None)
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # the interpreter ends killed by SIGINT
            os.kill(os.getpid(), signal.SIGINT)
        except BaseException:
            traceback.print_exc()
    finally:
        _exit_as_the_interpreter_does(code)


def _exit_as_the_interpreter_does(code: int | None) -> None:
    """Join non-daemon threads, run atexit handlers, flush; then ``_exit(code)`` (unless None)."""
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if code is not None:
        os._exit(code)


if __name__ == "__main__":
    import importlib

    os.environ.pop(CATALOG_ENV_VAR, None)
    for module in PRELOAD + COMMANDS:
        importlib.import_module(module)
    from PIL import Image

    from actor_pipeline.quality.faces import preload_face_analyzer

    Image.init()  # every image plugin, as the first image a CLI saves imports them

    preload_face_analyzer()
    socket_path, parent = sys.argv[1], int(sys.argv[2])
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listening:
        listening.bind(socket_path)
        listening.listen()
        print(json.dumps({"ready": True}), flush=True)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # the starter has read its answer and closed the pipe
        _serve(listening, parent)

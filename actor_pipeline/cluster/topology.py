"""Dagster's production topology on one machine, on loopback: Postgres (run, event-log and
schedule storage) behind PgBouncer, Redis (the Celery broker and result backend), the code location as a gRPC
code server, ``dagster-webserver``, ``dagster-daemon``, and Celery workers started with
``dagster-celery`` that execute the runs (``deploy/cluster/dagster.yaml``'s CeleryRunLauncher).

Each service runs in a session of its own, logs to ``ROOT/logs/NAME.log`` and is listed with its
session id in ``ROOT/cluster.json``, so another process (``make cluster-stop``) can stop it.
Postgres keeps its data in a throwaway folder (removed on stop); everything else is in ROOT.
"""

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actor_pipeline.cluster.processes import (
    children,
    graphql,
    kill_session,
    pid_running,
    port_open,
    running_in_session,
    signal_group,
    stop_by_session,
    wait_for,
)

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "cluster"
BIN = Path(sys.executable).parent  # dagster, dagster-webserver, dagster-daemon, dagster-celery, celery
STATE_FILE = "cluster.json"
LOCATION = "actor_pipeline"
# Variables of the caller's own setup that would point the services at another instance.
_SCRUBBED = ("DAGSTER_HOME", "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGDATA")
# Postgres is stopped with SIGINT ("fast": clients disconnected) rather than SIGTERM, which
# waits for every client to leave.
_STOP_SIGNAL = {"postgres": signal.SIGINT}
_DAGSTER_SERVICES = ("worker-", "daemon", "webserver", "code-server")


@dataclass(frozen=True)
class Ports:
    webserver: int = 3000
    code_server: int = 4266
    postgres: int = 5433  # not 5432: a system Postgres may hold it
    pgbouncer: int = 6433  # what the Dagster processes connect to; not 6432, a system PgBouncer's
    redis: int = 6380  # not 6379, likewise


@dataclass(frozen=True)
class Worker:
    """A Celery worker with ``processes`` pool processes (each executes one run at a time),
    keeping its shot journal and spool in ``state_dir`` (its own disk, as on its own machine).
    It loads the definitions and what a run needs before forking (``worker_preload``), so no run
    pays for loading them."""

    name: str
    processes: int = 3
    state_dir: Path | None = None


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Cluster:
    """The topology rooted at ``root``. ``env`` is given to every service (the emulator, S3,
    the inbox...); a worker's own variables (its state folder) are given to it alone."""

    root: Path
    ports: Ports = field(default_factory=Ports)
    env: Mapping[str, str] = field(default_factory=dict)
    instance_config: Path = DEPLOY / "dagster.yaml"
    services: dict[str, Service] = field(default_factory=dict)
    _pgdata: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.webserver}"

    @property
    def home(self) -> Path:
        return self.root / "home"

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return graphql(self.url, query, variables)

    def service_env(self) -> dict[str, str]:
        """The environment every Dagster process of the cluster gets."""
        base = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        return base | {
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # dagster-celery runs `celery`
            "DAGSTER_HOME": str(self.home),
            "PGHOST": "127.0.0.1",
            "PGPORT": str(self.ports.pgbouncer),
            "PGUSER": "dagster",
            "PGPASSWORD": "dagster",  # trust authentication on loopback: any password
            "PGDATABASE": "dagster",
            "ACTOR_PIPELINE_CELERY_BROKER": f"redis://127.0.0.1:{self.ports.redis}/0",
            "ACTOR_PIPELINE_CELERY_BACKEND": f"redis://127.0.0.1:{self.ports.redis}/1",
            "ACTOR_PIPELINE_CODE_SERVER_HOST": "127.0.0.1",
            "ACTOR_PIPELINE_CODE_SERVER_PORT": str(self.ports.code_server),
            **self.env,
        }

    # --- starting -----------------------------------------------------------------------------

    def start(self, workers: Sequence[Worker] = (), timeout_s: float = 120) -> None:
        """Start every service, each once the ones it needs answer (the workers need only the
        databases, so they start alongside the code server); return once the webserver has
        loaded the code location and every worker is ready."""
        deadline = time.monotonic() + timeout_s
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.instance_config, self.home / "dagster.yaml")
        self.start_postgres(deadline)
        schema = self._create_schema()
        self._spawn("redis", [_redis_server(), "--bind", "127.0.0.1", "--port", str(self.ports.redis),
                              "--save", "", "--appendonly", "no", "--dir", str(self.root)])  # fmt: skip
        self._spawn("code-server", [str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1",
                                    "-p", str(self.ports.code_server), "-m", "actor_pipeline.definitions",
                                    "--location-name", LOCATION])  # fmt: skip
        self._wait("redis", lambda: port_open(self.ports.redis), deadline)
        self._wait("the instance's tables", lambda: _ended_well(schema), deadline)
        started = [self._spawn_worker(worker) for worker in workers]
        self._wait("the code server", lambda: port_open(self.ports.code_server), deadline)
        workspace = str(DEPLOY / "workspace.yaml")
        self._spawn("webserver", [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(self.ports.webserver),
                                  "-w", workspace])  # fmt: skip
        self._spawn("daemon", [str(BIN / "dagster-daemon"), "run", "-w", workspace])
        self._wait("the webserver to load the code location", self._location_loaded, deadline)
        for worker, service in zip(workers, started, strict=True):
            self._wait(f"worker {worker.name}", lambda s=service, w=worker: _worker_ready(s, w.name), deadline)

    def start_worker(self, worker: Worker, timeout_s: float = 90) -> Service:
        service = self._spawn_worker(worker)
        self._wait(f"worker {worker.name}", lambda: _worker_ready(service, worker.name), time.monotonic() + timeout_s)
        return service

    def _spawn_worker(self, worker: Worker) -> Service:
        env = {"ACTOR_PIPELINE_STATE_DIR": str(worker.state_dir)} if worker.state_dir else {}
        return self._spawn(
            f"worker-{worker.name}",
            [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
             "-y", str(DEPLOY / "celery.yaml"), "-n", worker.name, "-i", "actor_pipeline.cluster.worker_preload",
             # No start-up handshake with the other workers (a second's wait each): nothing uses it.
             "--", f"--concurrency={worker.processes}", "--without-mingle", "--without-gossip"],
            env,
        )  # fmt: skip

    def exited_services(self) -> list[str]:
        return [name for name, service in self.services.items() if service.process.poll() is not None]

    def pool_processes(self, name: str) -> list[int]:
        """The pids of worker ``name``'s pool processes (dagster-celery starts ``celery``, whose
        children they are)."""
        session = self.services[f"worker-{name}"].process.pid
        return [pool for celery in children(session) for pool in children(celery)]

    # --- stopping -----------------------------------------------------------------------------

    def stop_service(self, name: str, grace_s: float = 20) -> None:
        service = self.services.pop(name)
        stop_by_session(service.process.pid, _STOP_SIGNAL.get(name, signal.SIGTERM), grace_s, name)
        service.process.wait(timeout=5)
        self._record()

    def lose_service(self, name: str) -> None:
        """SIGKILL every process of the service at once, as when its machine is lost."""
        service = self.services.pop(name)
        kill_session(service.process.pid)
        service.process.wait(timeout=5)
        self._record()

    def stop(self) -> None:
        """Stop every service: the Dagster processes together, then the databases they wrote
        to; remove Postgres's data."""
        failures = []
        for wave in (_DAGSTER_SERVICES, ("redis", "pgbouncer"), ("postgres",)):  # each after its clients
            names = [name for name in self.services if name.startswith(wave)]
            for name in names:  # signalled together, so their shutdowns overlap
                signal_group(self.services[name].process.pid, _STOP_SIGNAL.get(name, signal.SIGTERM))
            for name in names:
                try:
                    self.stop_service(name)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    failures.append(f"{name}: {exc}")
        if self._pgdata is not None:
            shutil.rmtree(self._pgdata, ignore_errors=True)
            self._pgdata = None
        (self.root / STATE_FILE).unlink(missing_ok=True)
        if failures:
            raise RuntimeError("; ".join(failures))

    # --- inside -------------------------------------------------------------------------------

    def start_postgres(self, deadline: float) -> None:
        """A throwaway cluster: initdb in a fresh folder, trust authentication on loopback only,
        no fsync (its data is removed on stop). As root it runs as the ``postgres`` user, since
        Postgres refuses to run as root."""
        bindir = _postgres_bindir()
        self._pgdata = Path(tempfile.mkdtemp(prefix="actor-pipeline-pg-"))
        as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self._pgdata, "postgres", "postgres")
            as_user = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [*as_user, str(bindir / "initdb"), "-D", str(self._pgdata), "-U", "dagster", "--auth=trust", "-N",
             "-E", "UTF8", "--locale=C"],
            check=True, capture_output=True, cwd="/",
        )  # fmt: skip
        self._spawn("postgres", [*as_user, str(bindir / "postgres"), "-D", str(self._pgdata),
                                 "-h", "127.0.0.1", "-p", str(self.ports.postgres), "-k", str(self._pgdata),
                                 "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                                 "-c", "max_connections=200"], cwd="/")  # fmt: skip
        ready = [str(bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.ports.postgres), "-U", "dagster",
                 "-d", "postgres"]  # fmt: skip
        self._wait("Postgres", lambda: subprocess.run(ready, check=False).returncode == 0, deadline)
        subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.ports.postgres), "-U", "dagster", "dagster"],
            check=True, capture_output=True,
        )  # fmt: skip
        self._spawn("pgbouncer", [*as_user, _pgbouncer(), str(self._pgbouncer_config(self._pgdata))], cwd="/")
        self._wait("PgBouncer", lambda: port_open(self.ports.pgbouncer), deadline)

    def _pgbouncer_config(self, folder: Path) -> Path:
        """Dagster opens a new Postgres connection for every query (SQLAlchemy's NullPool, except
        in the webserver), and Postgres forks a process for each: without a pooler that was about
        30 % of the cluster's CPU in a cast (benchmarks/bench_cluster_cast.py). PgBouncer keeps
        the server connections; session pooling keeps LISTEN/NOTIFY (the event-log watcher)
        working. It drops the ``options`` startup parameter (the webserver's statement timeout),
        which it cannot pass on. Its files go in ``folder``, removed with Postgres's data."""
        users = folder / "pgbouncer-users.txt"
        users.write_text('"dagster" ""\n')
        config = folder / "pgbouncer.ini"
        config.write_text(
            f"[databases]\n* = host=127.0.0.1 port={self.ports.postgres}\n"
            f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {self.ports.pgbouncer}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {users}\npool_mode = session\n"
            "max_client_conn = 2000\ndefault_pool_size = 150\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
        )
        return config

    def _create_schema(self) -> Service:
        """``dagster instance migrate``, which creates the instance's tables in the new database.
        Every Dagster process creates them when it first opens the instance, and two doing it at
        once collide ("type run_tags already exists": a worker exited at start-up), so one
        process creates them before the workers, webserver and daemon start (the code server
        does not open the instance, and loads meanwhile)."""
        log = self.root / "logs" / "schema.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                [str(BIN / "dagster"), "instance", "migrate"], cwd=REPO, env=self.service_env(), stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        return Service("schema", process, log)  # not one of self.services: it ends by design

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str] = {}, cwd: str | Path = REPO) -> Service:
        log = self.root / "logs" / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv, cwd=cwd, env=self.service_env() | dict(env), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self.services[name] = service = Service(name, process, log)
        self._record()
        return service

    def _wait(self, what: str, probe: Any, deadline: float) -> None:
        def alive_and_ready() -> bool:
            for service in self.services.values():
                if service.process.poll() is not None:
                    raise RuntimeError(
                        f"{service.name} exited with {service.process.returncode} while waiting for {what}; "
                        f"its log {service.log} ends with:\n{tail(service.log)}"
                    )
            return bool(probe())

        wait_for(what, alive_and_ready, max(1.0, deadline - time.monotonic()), interval_s=0.2)

    def _location_loaded(self) -> bool:
        query = """{ workspaceOrError { ... on Workspace { locationEntries {
            name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
        entries = graphql(self.url, query)["workspaceOrError"]["locationEntries"]
        for entry in entries:
            error = entry["locationOrLoadError"]
            if entry["loadStatus"] == "LOADED" and error and error["__typename"] == "PythonError":
                raise RuntimeError(f"code location {entry['name']} failed to load: {error['message']}")
        return bool(entries) and all(
            e["loadStatus"] == "LOADED" and e["locationOrLoadError"]["__typename"] == "RepositoryLocation"
            for e in entries
        )

    def _record(self) -> None:
        """``cluster.json``: each running service's session id, for ``stop_recorded``."""
        running = {name: service.process.pid for name, service in self.services.items()}
        state = {"supervisor": os.getpid(), "services": running, "pgdata": str(self._pgdata or "")}
        (self.root / STATE_FILE).write_text(json.dumps(state))


def stop_recorded(root: Path, timeout_s: float = 60) -> list[str]:
    """Stop a cluster rooted at ``root`` from another process: through the process that started
    it (SIGTERM: it stops its services in order, then exits), or, where that one is gone (killed
    with -9), each service it recorded. The names of the services that were running."""
    path = root / STATE_FILE
    if not path.exists():
        return []
    recorded = json.loads(path.read_text())
    running = [name for name, session in recorded["services"].items() if running_in_session(session)]
    supervisor = recorded.get("supervisor")
    if supervisor and supervisor != os.getpid() and pid_running(supervisor):
        os.kill(supervisor, signal.SIGTERM)
        wait_for("the cluster to stop", lambda: not pid_running(supervisor), timeout_s)
        return running
    for name, session in sorted(recorded["services"].items(), key=lambda item: _stop_order(item[0])):
        if running_in_session(session):
            stop_by_session(session, _STOP_SIGNAL.get(name, signal.SIGTERM), 20, name)
    if recorded["pgdata"]:
        shutil.rmtree(recorded["pgdata"], ignore_errors=True)
    path.unlink(missing_ok=True)
    return running


def _stop_order(name: str) -> int:
    """The Dagster processes first (they write to the databases), then Redis and PgBouncer,
    Postgres last."""
    return 0 if name.startswith(_DAGSTER_SERVICES) else 2 if name == "postgres" else 1


def _postgres_bindir() -> Path:
    """Debian's ``postgresql`` puts initdb and postgres in /usr/lib/postgresql/VERSION/bin."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    if initdb := shutil.which("initdb"):
        return Path(initdb).parent
    raise FileNotFoundError("no Postgres server found: apt-get install postgresql (Debian's package)")


def _pgbouncer() -> str:
    # Debian installs it in /usr/sbin, which an unprivileged PATH may lack.
    if found := shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin"):
        return found
    raise FileNotFoundError("no pgbouncer found: apt-get install pgbouncer (Debian's package)")


def _redis_server() -> str:
    if found := shutil.which("redis-server"):
        return found
    raise FileNotFoundError("no redis-server found: apt-get install redis-server (Debian's package)")


def missing_services() -> list[str]:
    """What the cluster needs and this machine lacks: one line each, naming the package."""
    missing = []
    for probe in (_postgres_bindir, _pgbouncer, _redis_server):
        try:
            probe()
        except FileNotFoundError as exc:
            missing.append(str(exc))
    for module in ("dagster_celery", "dagster_postgres", "redis"):
        if importlib.util.find_spec(module) is None:
            missing.append(f"no Python module {module}: pip install -e '.[cluster]'")
    return missing


def _ended_well(service: Service) -> bool:
    """Whether the one-off ``service`` has ended; raises, with its log's end, if it failed."""
    code = service.process.poll()
    if code:
        raise RuntimeError(f"{service.name} exited with {code}; its log {service.log} ends with:\n{tail(service.log)}")
    return code == 0


def _worker_ready(service: Service, name: str) -> bool:
    log = _text(service.log)
    return f"{name}@" in log and " ready." in log


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(_text(path).splitlines()[-lines:])

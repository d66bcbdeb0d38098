"""``python -m actor_pipeline.cluster up|down``: ``make cluster`` and ``make cluster-stop``.

``up`` starts every service and the workers, prints where the UI is, and stops everything on
Ctrl-C or SIGTERM; ``down`` stops a cluster started from another shell, from its ``cluster.json``.
"""

import argparse
import signal
import sys
import threading
from pathlib import Path

from actor_pipeline.cluster.topology import Cluster, Ports, Worker, missing_services, stop_recorded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m actor_pipeline.cluster", description=__doc__)
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--dir", type=Path, default=Path("output/.cluster"), help="logs, instance home, cluster.json")
    parser.add_argument("--port", type=int, default=Ports.webserver, help="the webserver's port")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (each its own state folder)")
    parser.add_argument("--processes", type=int, default=3, help="pool processes per worker: runs at once")
    args = parser.parse_args(argv)
    root = args.dir.resolve()
    if args.command == "down":
        stopped = stop_recorded(root)
        print(f"stopped: {', '.join(stopped)}" if stopped else f"no cluster running from {root}")
        return 0
    if missing := missing_services():
        print("; ".join(missing), file=sys.stderr)
        return 2
    if (root / "cluster.json").exists():
        stop_recorded(root)  # what a previous `up` killed with -9 left running
    cluster = Cluster(root, Ports(webserver=args.port))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        names = [f"worker{n}" for n in range(1, args.workers + 1)]
        cluster.start([Worker(name, args.processes, root / f"{name}-state") for name in names])
        print(f"cluster up: UI on {cluster.url}, logs in {root / 'logs'}; Ctrl-C (or make cluster-stop) stops it")
        shared = {k: v for k, v in cluster.service_env().items() if k.startswith(("PG", "ACTOR_PIPELINE_CELERY_"))}
        exports = " ".join(f"{k}={v}" for k, v in {"DAGSTER_HOME": str(cluster.home), **shared}.items())
        print(f"the CLI on the same instance (its runs in this UI): export {exports}")
        while not stop.wait(2):
            if dead := cluster.exited_services():
                print(f"{', '.join(dead)} exited: stopping the cluster (logs in {root / 'logs'})", file=sys.stderr)
                return 1
    finally:
        print("stopping the cluster...", file=sys.stderr)
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

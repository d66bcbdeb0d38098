"""A cast at full speed: N portraits dropped in the inbox at once, made by the production topology
(``actor_pipeline.cluster``: Postgres + PgBouncer, Redis, code server, webserver, daemon, Celery workers)
against the Replicate emulator at L seconds per prediction, sets stored in a local folder.

Prints the throughput against the bound set by the configuration: at most ``pool`` actors
generate at once (the ``replicate`` pool, deploy/cluster/dagster.yaml), each with all its shots in
flight (``max_concurrency`` unset: 17), and Replicate's create limit (600/min), so

    bound (shots/s) = min(creates_per_minute / 60, pool * shots_in_flight / L)

then the predictions, reads and 429s the emulator counted, each actor's first image (seconds
after the drop) against the bound's first quarter, and the peak memory (sum of RSS) and CPU of
every process of the cluster, sampled from /proc.

    .venv/bin/python benchmarks/bench_cluster_cast.py [--actors 20] [--latency 5] [--workers 2 --processes 3]
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import yaml

from actor_pipeline.cluster.processes import free_port, running_in_session, wait_for
from actor_pipeline.cluster.topology import DEPLOY, Cluster, Ports, Service, Worker
from actor_pipeline.samples import SAMPLE_PORTRAIT
from actor_pipeline_tests.replicate_emulator import Behaviour, ReplicateEmulator

SHOTS = 17
USER = "cast"
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICK = os.sysconf("SC_CLK_TCK")


class Sampler(threading.Thread):
    """Every ``interval_s``: the summed RSS of the cluster's processes, and their CPU time
    (their own and that of their reaped children), from /proc; ``by_service`` on demand."""

    def __init__(self, cluster: Cluster, interval_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.cluster, self.interval_s = cluster, interval_s
        self.peak_rss, self.peak_cpu, self.cpu_s, self.peak_processes = 0, 0.0, 0.0, 0
        self.stop = threading.Event()

    def by_service(self) -> dict[str, float]:
        """CPU seconds so far of each service's processes, their reaped children's included
        (Postgres forks a backend per connection, and Dagster connects per query)."""
        return {name: self._sample([service])[1] for name, service in list(self.cluster.services.items())}

    def run(self) -> None:
        last_cpu, last_t = self._sample()[0], time.monotonic()
        while not self.stop.wait(self.interval_s):
            cpu, total, rss, count = self._sample()
            now = time.monotonic()
            self.peak_rss, self.peak_processes = max(self.peak_rss, rss), max(self.peak_processes, count)
            self.peak_cpu = max(self.peak_cpu, (cpu - last_cpu) / (now - last_t))
            self.cpu_s = max(self.cpu_s, total)
            last_cpu, last_t = cpu, now

    def _sample(self, services: list[Service] | None = None) -> tuple[float, float, int, int]:
        """CPU seconds of the live processes; the same plus their reaped children's (which a
        rate would count at once, when a child is reaped); summed RSS; how many processes."""
        cpu, children, rss, count = 0.0, 0.0, 0, 0
        for service in list(self.cluster.services.values()) if services is None else services:
            for pid in running_in_session(service.process.pid):
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
                except (OSError, IndexError):
                    continue
                cpu += (int(fields[11]) + int(fields[12])) / _TICK
                children += (int(fields[13]) + int(fields[14])) / _TICK
                rss += pages * _PAGE
                count += 1
        return cpu, cpu + children, rss, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actors", type=int, default=20)
    parser.add_argument("--latency", type=float, default=5.0, help="seconds per prediction")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--processes", type=int, default=3, help="pool processes per worker")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()

    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    pool = config["concurrency"]["pools"]["default_limit"]
    creates_per_s = 600 / 60
    bound = min(creates_per_s, pool * SHOTS / args.latency)
    total = args.actors * SHOTS
    bound_s = total / bound
    work = Path(tempfile.mkdtemp(prefix="bench-cast-"))
    env = {"ACTOR_PIPELINE_OUTPUT_DIR": str(work / "out"), "ACTOR_PIPELINE_INBOX": str(work / "inbox")}
    try:
        with ReplicateEmulator(behaviour=Behaviour(latency_s=args.latency)) as emulator:
            cluster = Cluster(work / "cluster", Ports(free_port(), free_port(), free_port(), free_port(), free_port()),
                              {**emulator.env(), **env})  # fmt: skip
            sampler = Sampler(cluster)
            try:
                cluster.start([Worker(f"w{n}", args.processes, work / f"state-w{n}") for n in range(1, args.workers + 1)])
                sampler.start()
                time.sleep(6)  # the sensors' first (cursor-initializing) ticks
                print(f"cluster up: {args.workers} workers x {args.processes} processes; pool {pool}; "
                      f"L = {args.latency} s; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
                before, own_before = sampler.by_service(), time.process_time()
                firsts = drop_and_watch(work, args.actors, args.timeout)
                spent = {name: cpu - before.get(name, 0.0) for name, cpu in sampler.by_service().items()}
                emulator_cpu = time.process_time() - own_before
            finally:
                sampler.stop.set()
                cluster.stop()
            counters = emulator.account.counters()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    wall = max(t for _, t in firsts.values())
    rate = total / wall
    quarter = bound_s / 4
    late = sorted(actor for actor, (first, _) in firsts.items() if first > quarter)
    print(f"bound: min({creates_per_s:.0f} creates/s, {pool} actors x {SHOTS} in flight / {args.latency} s) "
          f"= {bound:.1f} shots/s -> {total} shots in {bound_s:.0f} s")  # fmt: skip
    print(f"measured: {total} shots in {wall:.0f} s (drop -> last manifest) = {rate:.2f} shots/s, "
          f"{100 * rate / bound:.0f} % of the bound (target >= 85 %)")  # fmt: skip
    again = sum(n - 1 for n in counters.predictions_per_shot.values() if n > 1)
    print(f"predictions created {counters.predictions_created} for {total} shots (more: quality retakes, each a new "
          f"seed), paid {counters.paid}; the same prompt and seed made twice: {again}; peak in flight "
          f"{counters.peak_in_flight}; reads {counters.polls} polls, {counters.lists} lists; answered 429: "
          f"{counters.throttled}")  # fmt: skip
    first_images = [first for first, _ in firsts.values()]
    print(f"first image per actor: median {statistics.median(first_images):.0f} s, max {max(first_images):.0f} s "
          f"(bound's first quarter: {quarter:.0f} s; {len(late)} of {len(firsts)} actors later)")  # fmt: skip
    timeline = sorted(firsts.values())
    print("each actor, first image/manifest (s): " + " ".join(f"{first:.0f}/{last:.0f}" for first, last in timeline))
    print(f"all cluster processes: peak RSS {sampler.peak_rss / 2**20:.0f} MiB over {sampler.peak_processes} "
          f"processes, peak CPU {100 * sampler.peak_cpu:.0f} % (of one core; {os.cpu_count()} cores), "
          f"CPU time {sampler.cpu_s:.0f} s")  # fmt: skip
    report_cpu(spent, emulator_cpu, args.actors, wall, bound_s)


def report_cpu(spent: dict[str, float], emulator_cpu: float, actors: int, wall: float, bound_s: float) -> None:
    """Where the CPU of the cast went (drop -> last manifest), and what the cores allow: the
    emulator (this process) shares them, though Replicate's own work runs elsewhere."""
    cluster_cpu = sum(spent.values())
    kinds: dict[str, float] = {}
    for name, cpu in spent.items():
        kind = "workers" if name.startswith("worker-") else name
        kinds[kind] = kinds.get(kind, 0.0) + cpu
    split = ", ".join(f"{kind} {cpu:.0f}" for kind, cpu in sorted(kinds.items(), key=lambda item: -item[1]))
    cores = os.cpu_count() or 1
    cpu_bound_s = (cluster_cpu + emulator_cpu) / cores
    print(f"CPU during the cast: cluster {cluster_cpu:.0f} CPU-s ({split}) = {cluster_cpu / actors:.1f} per set; "
          f"emulator {emulator_cpu:.0f} CPU-s")  # fmt: skip
    print(f"the {cores} cores allow {cpu_bound_s:.0f} s at best: measured is {100 * cpu_bound_s / wall:.0f} % of that; "
          f"the rate bound ({bound_s:.0f} s) needs about {cluster_cpu / bound_s:.1f} cores for the cluster alone")  # fmt: skip


def drop_and_watch(work: Path, actors: int, timeout_s: float) -> dict[str, tuple[float, float]]:
    """Drop every portrait at once; per actor, (first image, manifest) in seconds after the drop."""
    inbox = work / "inbox" / USER
    inbox.mkdir(parents=True)
    names = [f"actor-{n:02d}" for n in range(1, actors + 1)]
    for name in names:  # copied under a hidden name, then renamed together: one drop
        shutil.copy(SAMPLE_PORTRAIT, inbox / f".{name}.jpg")
    dropped = time.monotonic()
    for name in names:
        (inbox / f".{name}.jpg").rename(inbox / f"{name}.jpg")
    firsts: dict[str, float] = {}
    done: dict[str, tuple[float, float]] = {}

    def progress() -> bool:
        now = time.monotonic() - dropped
        for name in names:
            folder = work / "out" / USER / "custom-actors" / name / "training_data"
            if name not in firsts and folder.is_dir() and any(folder.glob(f"actor_{name}_td_*.jpg")):
                firsts[name] = now
            if name not in done and (folder / "manifest.json").exists():
                done[name] = (firsts.get(name, now), now)
        return len(done) == len(names)

    wait_for("every manifest", progress, timeout_s, interval_s=0.2)
    return done


if __name__ == "__main__":
    main()

"""Inbox latency: a portrait dropped in the inbox -> its manifest written, under the real daemon.

Starts the Replicate emulator (``--latency`` seconds per prediction) and ``dg dev`` on a
temporary ``DAGSTER_HOME`` with the shipped ``deploy/dagster.yaml``, serving the shipped code
location (the Replicate backend talks to the emulator; quality checks as configured, identity
included where the faces extra is installed), then drops one portrait at a time at a random
moment and times it until its manifest exists. Target: <= L + 15 s, L being one prediction's
latency (20 s at 5 s per prediction). Each actor's line shows its run as
job[created/started/ended] in seconds after the drop.

    .venv/bin/python benchmarks/bench_inbox_latency.py [--actors 5] [--latency 5]
"""

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from actor_pipeline.samples import SAMPLE_PORTRAIT
from actor_pipeline_tests.e2e.devserver import dagster_dev, instance_home, wait_for
from actor_pipeline_tests.replicate_emulator import Behaviour, ReplicateEmulator

TARGET_OVER_LATENCY_S = 15.0  # the sensor daemon's 5 s wake-up, one run launch, the run's own work
_RUNS_QUERY = """
query Runs($after: Float) {
  runsOrError(filter: {createdAfter: $after}) {
    ... on Runs { results { jobName status creationTime startTime endTime } }
  }
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actors", type=int, default=5, help="portraits to drop, one after the other")
    parser.add_argument("--latency", type=float, default=5.0, help="seconds per prediction")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for one manifest")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-inbox-"))
    workspace = work / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: actor_pipeline.definitions\n"
        f"      working_directory: {REPO}\n      location_name: actor_pipeline\n"
    )
    rng = random.Random(5)
    walls: list[float] = []
    try:
        with (
            ReplicateEmulator(behaviour=Behaviour(latency_s=args.latency)) as emulator,
            dagster_dev(
                instance_home(work / "home"), _env(work, emulator), work / "dg-dev.log", workspace
            ) as server,
        ):
            print(
                f"dg dev ready on {server.url}; emulator at {args.latency} s per prediction; "
                f"load average {os.getloadavg()[0]:.1f}"
            )
            time.sleep(6)  # let the sensors take their first (cursor-initializing) ticks
            for number in range(1, args.actors + 1):
                time.sleep(rng.uniform(0, 5))  # a random phase against the daemon's 5 s loop
                actor = f"bench-{number:02d}"
                manifest = work / "out" / "bench" / "custom-actors" / actor / "training_data" / "manifest.json"
                (work / "inbox" / "bench").mkdir(parents=True, exist_ok=True)
                dropped = time.time()
                shutil.copy(SAMPLE_PORTRAIT, work / "inbox" / "bench" / f"{actor}.jpg")
                wait_for(f"{actor}'s manifest", manifest.exists, args.timeout, interval_s=0.1)
                wall = time.time() - dropped
                walls.append(wall)
                print(f"{actor}: {wall:5.1f} s  " + _stages(server.graphql(_RUNS_QUERY, {"after": dropped}), dropped))
            created = emulator.account.counters().predictions_created
            print(f"predictions created: {created} ({created / len(walls):.0f} per actor)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    target = args.latency + TARGET_OVER_LATENCY_S
    verdict = "OK" if max(walls) <= target else "OVER"
    print(
        f"drop -> manifest: median {statistics.median(walls):.1f} s, min {min(walls):.1f} s, "
        f"max {max(walls):.1f} s (target <= L + {TARGET_OVER_LATENCY_S:.0f} = {target:.0f} s: {verdict})"
    )


def _env(work: Path, emulator: ReplicateEmulator) -> dict[str, str]:
    return {**emulator.env(), "ACTOR_PIPELINE_OUTPUT_DIR": str(work / "out"), "ACTOR_PIPELINE_INBOX": str(work / "inbox")}


def _stages(data: dict, dropped: float) -> str:
    """Each run as job[created/started/ended], in seconds after the drop ("-": not yet)."""

    def at(timestamp: float | None) -> str:
        return f"{timestamp - dropped:.1f}" if timestamp else "-"

    runs = sorted(data["runsOrError"]["results"], key=lambda r: r["creationTime"])
    return "  ".join(f"{r['jobName']}[{at(r['creationTime'])}/{at(r['startTime'])}/{at(r['endTime'])}]" for r in runs)


if __name__ == "__main__":
    main()

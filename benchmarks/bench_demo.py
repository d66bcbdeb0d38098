"""Cold `actor-pipeline demo` wall time, including Python and Dagster start-up.

Each run is a fresh process with a fresh output folder (fresh Dagster instance, no reusable
images), so every one is a cold run. Target: <= 15 s on 2 cores.

    .venv/bin/python benchmarks/bench_demo.py [--runs 3]
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cli = Path(sys.executable).with_name("actor-pipeline")
    walls = []
    for run in range(1, args.runs + 1):
        out = Path(tempfile.mkdtemp(prefix="bench-demo-"))
        started = time.perf_counter()
        done = subprocess.run([str(cli), "demo", "--out", str(out)], capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        shutil.rmtree(out, ignore_errors=True)
        if done.returncode != 0:
            sys.exit(f"run {run} failed ({done.returncode}):\n{done.stderr}")
        images = json.loads(done.stdout)["total_training_images"]
        walls.append(wall)
        print(f"run {run}: {wall:.2f} s wall, {images} images")
    print(f"demo cold wall: median {statistics.median(walls):.2f} s, min {min(walls):.2f} s, max {max(walls):.2f} s "
          f"(target <= 15 s)")


if __name__ == "__main__":
    main()

"""Quality checks' speed: ``check_set`` on one actor's 17 preview shots, without and with identity.

Targets (issue 12): at most 3 s without identity and 10 s with identity on 2 cores. Renders the
17 offline previews of the sample portrait as JPEG (untimed), then times ``check_set`` with its
default workers (one thread per core). The first call of each kind is reported on its own: it
pays the lazy imports and, with identity, loading dlib's models (1-2 s, once per process).

CPU time is summed over threads. Everything runs in memory, so at every moment at least one thread
computes: on an idle machine wall time is at most the CPU time (less when both cores work). On a
busy machine wall time grows and CPU time hardly does, so the verdict falls back on CPU time and
says so.

    .venv/bin/python -m benchmarks.bench_quality [--repeats 3]
"""

import argparse
import importlib.util
import os
import statistics
import time
from collections.abc import Callable
from functools import partial

from PIL import Image

from actor_pipeline.catalog.model import load_catalog
from actor_pipeline.generation.preview_backend import JPEG_QUALITY
from actor_pipeline.quality import Outcome, SetReport, check_set
from actor_pipeline.quality.faces import INSTALL_HINT
from actor_pipeline.render.preview import render_preview
from actor_pipeline.samples import SAMPLE_PORTRAIT
from actor_pipeline_tests.quality.crafted import jpeg

TARGETS_S = {False: 3.0, True: 10.0}


def timed(call: Callable[[], SetReport]) -> tuple[float, float, SetReport]:
    wall, cpu = time.perf_counter(), time.process_time()
    report = call()
    return time.perf_counter() - wall, time.process_time() - cpu, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    portrait_bytes = SAMPLE_PORTRAIT.read_bytes()
    with Image.open(SAMPLE_PORTRAIT) as image:
        portrait = image.convert("RGB")
    shots = load_catalog().shots
    images = {s.id: jpeg(render_preview(portrait, s.preview, s.index), JPEG_QUALITY) for s in shots}
    categories = {s.id: s.category for s in shots}
    print(f"{len(images)} preview shots (1392x752 JPEG), {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    for identity in (False, True):
        # Looked up without loading anything, so that the first timed call pays the model loading.
        if identity and not all(importlib.util.find_spec(name) for name in ("dlib", "face_recognition_models")):
            print(f"with identity: not measured, the faces extra is not installed ({INSTALL_HINT})")
            return
        label = "with identity" if identity else "without identity"
        run = partial(check_set, images, portrait_bytes, categories, "human", identity=identity)
        first_wall, first_cpu, report = timed(run)
        walls, cpus = zip(*(timed(run)[:2] for _ in range(args.repeats)), strict=True)
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        target = TARGETS_S[identity]
        if first_wall <= target:
            verdict = "ok"
        elif first_cpu <= target:
            verdict = f"ok by CPU time (wall inflated: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
        else:
            verdict = "OVER TARGET"
        measured = sum(r.outcome is not Outcome.NOT_MEASURED for s in report.shots.values() for r in s.results)
        print(
            f"{label:17s} first call {first_wall:5.2f} s wall {first_cpu:5.2f} s cpu; "
            f"then median of {args.repeats}: {wall:5.2f} s wall {cpu:5.2f} s cpu "
            f"(target <= {target:.0f} s): {verdict}; {measured} results measured, "
            f"{len(report.to_regenerate)} shots to regenerate"
        )


if __name__ == "__main__":
    main()

"""Offline preview renderer speed: milliseconds per 1392x752 image for each look of the default catalog.

Renders the shipped sample portrait. One untimed pass first fills the renderer's caches (screens,
light maps, fonts), as the first shots of a run would; then each look is rendered ``--repeats``
times on one thread. Reports medians of wall time and of CPU time per look: the renderer is
single-threaded, so CPU time is what wall time would be on an otherwise idle machine.
Target: <= 150 ms wall per image on 2 cores.

    .venv/bin/python benchmarks/bench_preview.py [--repeats 5]
"""

import argparse
import statistics
import time

from PIL import Image

from actor_pipeline.catalog.model import load_catalog
from actor_pipeline.render.preview import PreviewLook, render_preview
from actor_pipeline.samples import SAMPLE_PORTRAIT

TARGET_MS = 150.0


def describe(look: PreviewLook) -> str:
    return f"photo/{look.framing}/{look.light}" if look.style == "photo" else look.style


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with Image.open(SAMPLE_PORTRAIT) as image:
        portrait = image.convert("RGB")
    looks = list(dict.fromkeys(shot.preview for shot in load_catalog().shots))
    for look in looks:
        render_preview(portrait, look, seed=0)
    walls, cpus = [], []
    for look in looks:
        wall, cpu = [], []
        for seed in range(1, args.repeats + 1):
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            render_preview(portrait, look, seed)
            wall.append((time.perf_counter() - wall_start) * 1000)
            cpu.append((time.process_time() - cpu_start) * 1000)
        walls.append(statistics.median(wall))
        cpus.append(statistics.median(cpu))
        print(f"{describe(look):28s} {walls[-1]:6.1f} ms wall {cpus[-1]:6.1f} ms cpu")
    verdict = "ok" if max(walls) <= TARGET_MS else "OVER TARGET"
    print(
        f"{'all looks':28s} wall mean {statistics.mean(walls):.1f} ms, max {max(walls):.1f} ms; "
        f"cpu mean {statistics.mean(cpus):.1f} ms, max {max(cpus):.1f} ms (target <= {TARGET_MS:.0f} ms wall): {verdict}"
    )


if __name__ == "__main__":
    main()

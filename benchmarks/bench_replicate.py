"""One actor, 17 shots, emulated flux-kontext-pro at 5 s per prediction, default settings.

Run from the repository root: ``.venv/bin/python -m benchmarks.bench_replicate``. Prints wall
time against the sequential baseline (17 x 5 s), downloads per image and peak in flight, once
with every shot in flight and once with the default ``max_concurrency``.
"""

import argparse
import asyncio
import io
import os
import time

from PIL import Image

from actor_pipeline.generation.replicate import ReplicateBackend, ReplicateSettings
from actor_pipeline.generation.types import GeneratedImage
from actor_pipeline_tests.replicate_emulator import Behaviour, ReplicateEmulator
from actor_pipeline_tests.replicate_emulator.driver import generate_all, make_jobs

TARGET_S = 8.0


def portrait() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (768, 960), (150, 120, 100)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def measure(shots: int, latency_s: float, max_concurrency: int) -> None:
    with ReplicateEmulator(behaviour=Behaviour(latency_s=latency_s)) as emulator:
        os.environ.update(emulator.env())
        backend = ReplicateBackend(ReplicateSettings(max_concurrency=max_concurrency))
        started = time.perf_counter()
        results = asyncio.run(generate_all(backend, portrait(), make_jobs(shots), max_concurrency))
        wall = time.perf_counter() - started
        counters = emulator.account.counters()
    made = sum(isinstance(result, GeneratedImage) for result in results)
    sequential = shots * latency_s
    per_image = sorted(set(counters.downloads.values()))
    print(
        f"max_concurrency={max_concurrency:>2}: {made}/{shots} images in {wall:5.2f} s wall | "
        f"sequential {sequential:.0f} s -> {wall / sequential:.2f} of it ({sequential / wall:.1f}x faster) | "
        f"downloads per image {per_image} | peak in flight {counters.peak_in_flight} | "
        f"paid {counters.paid} | polls {counters.polls} | "
        f"{'meets' if wall <= TARGET_S else 'misses'} the {TARGET_S:.0f} s target"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shots", type=int, default=17)
    parser.add_argument("--latency", type=float, default=5.0, help="seconds per emulated prediction")
    args = parser.parse_args()
    for max_concurrency in (args.shots, ReplicateSettings().max_concurrency):
        measure(args.shots, args.latency, max_concurrency)


if __name__ == "__main__":
    main()

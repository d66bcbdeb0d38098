"""One actor, 17 shots, through the generation runner and the real ``replicate`` client against
the emulator at 5 s per prediction.

Run from the repository root: ``.venv/bin/python -m benchmarks.bench_replicate``. Prints wall time
against the sequential baseline (17 x 5 s; the system we replace took 92 s), downloads per image,
peak predictions in flight and predictions paid, once with the default ``max_concurrency`` (8) and
once with every shot in flight. Target: <= 8 s wall with all shots in flight.
"""

import argparse
import asyncio
import os
import tempfile
import time

from actor_pipeline.catalog.model import load_catalog
from actor_pipeline.catalog.prompts import build_prompt_set
from actor_pipeline.defs.resources import ImageGeneratorResource
from actor_pipeline.generation.replicate import ReplicateBackend, ReplicateSettings
from actor_pipeline.generation.runner import ActorBatch, generate_shots
from actor_pipeline.samples import SAMPLE_PORTRAIT
from actor_pipeline.storage.layout import ActorLayout
from actor_pipeline.storage.local import LocalStorage
from actor_pipeline_tests.replicate_emulator import Behaviour, ReplicateEmulator

TARGET_S = 8.0


def measure(latency_s: float, max_concurrency: int) -> None:
    catalog = load_catalog()
    prompt_set = build_prompt_set(catalog, "bench", "person")
    with ReplicateEmulator(behaviour=Behaviour(latency_s=latency_s)) as emulator, tempfile.TemporaryDirectory() as out:
        os.environ.update(emulator.env())
        batch = ActorBatch(ActorLayout("bench", "bench"), prompt_set, SAMPLE_PORTRAIT.read_bytes(), catalog.ids)
        started = time.perf_counter()
        outcomes = asyncio.run(
            generate_shots(batch, ReplicateBackend(ReplicateSettings()), LocalStorage(out), max_concurrency=max_concurrency)
        )
        wall = time.perf_counter() - started
        counters = emulator.account.counters()
    shots = len(catalog.shots)
    made = sum(outcome.succeeded for outcome in outcomes)
    sequential = shots * latency_s
    print(
        f"max_concurrency={max_concurrency:>2}: {made}/{shots} images in {wall:5.2f} s wall | "
        f"sequential {sequential:.0f} s -> {sequential / wall:.1f}x faster, {92 / wall:.1f}x the old system (92 s) | "
        f"downloads per image {sorted(set(counters.downloads.values()))} | peak in flight {counters.peak_in_flight} | "
        f"predictions paid {counters.succeeded} | polls {counters.polls} | "
        f"{'meets' if wall <= TARGET_S else 'misses'} the {TARGET_S:.0f} s target"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=5.0, help="seconds per emulated prediction")
    args = parser.parse_args()
    for max_concurrency in (ImageGeneratorResource().max_concurrency, len(load_catalog().shots)):
        measure(args.latency, max_concurrency)


if __name__ == "__main__":
    main()

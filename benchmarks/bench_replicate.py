"""One actor, 17 shots, through the generation runner and the real ``replicate`` client against
the emulator at L = 5 s per prediction, with the shared default concurrency (every shot of the
actor in flight).

Run from the repository root: ``.venv/bin/python -m benchmarks.bench_replicate``. Prints the
wall time against the target of L + 3 s, the downloads per image, peak predictions in flight,
predictions paid and polls; ``--max-concurrency N`` measures a bound for comparison.
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
from actor_pipeline.storage.folder import FolderStorage
from actor_pipeline.storage.layout import ActorLayout
from actor_pipeline_tests.replicate_emulator import Behaviour, ReplicateEmulator

MARGIN_S = 3.0


def measure(latency_s: float, max_concurrency: int | None) -> None:
    catalog = load_catalog()
    prompt_set = build_prompt_set(catalog, "bench", "person")
    limits = ImageGeneratorResource(max_concurrency=max_concurrency).limits()
    with ReplicateEmulator(behaviour=Behaviour(latency_s=latency_s)) as emulator, tempfile.TemporaryDirectory() as out:
        os.environ.update(emulator.env())
        batch = ActorBatch(ActorLayout("bench", "bench"), prompt_set, SAMPLE_PORTRAIT.read_bytes(), catalog.ids)
        started = time.perf_counter()
        outcomes = asyncio.run(generate_shots(batch, ReplicateBackend(ReplicateSettings(), emulator.token), FolderStorage(out), limits=limits))
        wall = time.perf_counter() - started
        counters = emulator.account.counters()
    shots = len(catalog.shots)
    made = sum(outcome.succeeded for outcome in outcomes)
    target = latency_s + MARGIN_S
    print(
        f"max_concurrency={max_concurrency or 'all'}: {made}/{shots} images in {wall:5.2f} s wall "
        f"(L = {latency_s:g} s; target L + {MARGIN_S:g} = {target:g} s: {'met' if wall <= target else 'MISSED'}) | "
        f"downloads per image {sorted(set(counters.downloads.values()))} | peak in flight {counters.peak_in_flight} | "
        f"predictions paid {counters.paid} of {counters.predictions_created} created | polls {counters.polls}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=5.0, help="seconds per emulated prediction")
    parser.add_argument("--max-concurrency", type=int, help="a bound to compare with the default (all shots)")
    args = parser.parse_args()
    measure(args.latency, ImageGeneratorResource().max_concurrency)
    if args.max_concurrency:
        measure(args.latency, args.max_concurrency)


if __name__ == "__main__":
    main()

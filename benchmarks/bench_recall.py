"""What reading Replicate's prediction list costs a run (issue 18): one paginated pass per run,
before its first create, to find what our own state lost.

The emulated account already holds every actor's 17 predictions (made in the last hour) plus
``--others`` unrelated ones; each actor's run then reads the list since the cast's first
registration, through the real ``replicate`` client. Printed: list requests per run, predictions
read, the ones matched to the actor's shots, and the wall time of the pass. 17 shots is one actor,
340 is a cast of 20 (every run reads the whole cast's window).

Run from the repository root: ``.venv/bin/python -m benchmarks.bench_recall``.
"""

import argparse
import asyncio
import base64
import os
import time
from datetime import UTC, datetime, timedelta

from actor_pipeline.catalog.model import load_catalog
from actor_pipeline.catalog.prompts import build_prompt_set
from actor_pipeline.generation.replicate import ReplicateBackend, ReplicateSettings
from actor_pipeline.samples import SAMPLE_PORTRAIT
from actor_pipeline_tests.replicate_emulator import Behaviour, ReplicateEmulator

MODEL = "black-forest-labs/flux-kontext-pro"


def measure(actors: int, others: int) -> None:
    catalog = load_catalog()
    portrait = SAMPLE_PORTRAIT.read_bytes()
    image = "data:image/jpeg;base64," + base64.b64encode(portrait).decode()
    sets = [build_prompt_set(catalog, f"actor-{n}", "person") for n in range(actors)]
    since = datetime.now(UTC) - timedelta(minutes=1)
    with ReplicateEmulator(behaviour=Behaviour(latency_s=0.0, max_inline_bytes=10**7)) as emulator:
        os.environ.update(emulator.env())
        base = {"input_image": image, "aspect_ratio": "16:9", "output_format": "jpg", "safety_tolerance": 2}
        for n in range(others):
            emulator.account.create(MODEL, {"input": {**base, "prompt": f"another job {n}", "seed": n}}, None)
        for prompt_set in sets:
            for shot in prompt_set.shots:
                emulator.account.create(MODEL, {"input": {**base, "prompt": shot.prompt, "seed": shot.seed}}, None)
        backend = ReplicateBackend(ReplicateSettings(), emulator.token)
        walls, matched = [], 0
        for prompt_set in sets:
            wordings = {(shot.prompt, shot.seed) for shot in prompt_set.shots}

            async def recall(wordings: set[tuple[str, int]] = wordings) -> int:
                async with backend.session(portrait) as shots:
                    return len(await shots.recall(wordings, since))  # type: ignore[attr-defined]

            started = time.perf_counter()
            matched += asyncio.run(recall())
            walls.append(time.perf_counter() - started)
        lists = emulator.account.counters().lists
    listed = actors * len(catalog.shots) + others
    print(
        f"{actors * len(catalog.shots):4d} shots ({actors} actor(s)), {listed} predictions in the window: "
        f"{lists / actors:.0f} list request(s) per run ({lists} in all), "
        f"{matched} matched, pass {sum(walls) / len(walls) * 1000:.0f} ms per run (max {max(walls) * 1000:.0f} ms); "
        f"Replicate allows 3000 reads/min"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--others", type=int, default=200, help="unrelated predictions in the same window")
    args = parser.parse_args()
    measure(1, args.others)
    measure(20, args.others)


if __name__ == "__main__":
    main()

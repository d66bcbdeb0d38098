"""A stand-in for the runner: one actor's shots through a backend, at most N at once."""

import asyncio
from collections.abc import Sequence

from actor_pipeline.generation.types import GeneratedImage, ImageBackend, ShotGenerationError, ShotJob


def make_jobs(count: int, actor_id: str = "actor-1", prompt: str = "the actor in scene {index}") -> list[ShotJob]:
    """``count`` distinct shots with fixed seeds; ``prompt`` may use ``{index}``."""
    return [
        ShotJob(actor_id, f"shot-{index:02d}", index, prompt.format(index=index), 1000 + index)
        for index in range(1, count + 1)
    ]


async def generate_all(
    backend: ImageBackend, portrait_jpeg: bytes, jobs: Sequence[ShotJob], max_concurrency: int
) -> list[GeneratedImage | ShotGenerationError]:
    """Each job's image or its ``ShotGenerationError``, in job order."""
    semaphore = asyncio.Semaphore(max_concurrency)
    async with backend.session(portrait_jpeg) as generator:

        async def one(job: ShotJob) -> GeneratedImage | ShotGenerationError:
            async with semaphore:
                try:
                    return await generator.generate(job)
                except ShotGenerationError as exc:
                    return exc

        return await asyncio.gather(*(one(job) for job in jobs))

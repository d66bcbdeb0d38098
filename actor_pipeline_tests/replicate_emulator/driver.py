"""A stand-in for the runner: one actor's shots through a backend, at most N at once, with a
progress that records each step the backend reports instead of journaling it."""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from actor_pipeline.generation.types import GeneratedImage, ImageBackend, ShotGenerationError, ShotJob, Usage


def make_jobs(
    count: int, actor_id: str = "actor-1", prompt: str = "the actor in scene {index}", timeout_s: float = 5.0
) -> list[ShotJob]:
    """``count`` distinct shots with fixed seeds and a ``timeout_s`` deadline from now;
    ``prompt`` may use ``{index}``."""
    deadline = time.monotonic() + timeout_s
    return [
        ShotJob(actor_id, f"shot-{index:02d}", index, prompt.format(index=index), 1000 + index, deadline)
        for index in range(1, count + 1)
    ]


@dataclass
class RecordedProgress:
    """The steps a backend reported for one shot."""

    usage: Usage = field(default_factory=Usage)
    steps: list[tuple[str, str]] = field(default_factory=list)  # (step, detail)
    started_at: datetime | None = None

    async def creating(self) -> datetime:
        self.started_at = self.started_at or datetime.now(UTC)
        self.steps.append(("planned", ""))
        return self.started_at

    async def created(self, prediction_id: str) -> None:
        self.steps.append(("created", prediction_id))

    async def output_ready(self, url: str, expires_at: datetime) -> None:
        self.steps.append(("output_ready", url))


async def generate_all(
    backend: ImageBackend, portrait_jpeg: bytes, jobs: Sequence[ShotJob], max_concurrency: int
) -> list[GeneratedImage | ShotGenerationError]:
    """Each job's image or its ``ShotGenerationError``, in job order."""
    semaphore = asyncio.Semaphore(max_concurrency)
    async with backend.session(portrait_jpeg) as generator:

        async def one(job: ShotJob) -> GeneratedImage | ShotGenerationError:
            async with semaphore:
                try:
                    return await generator.generate(job, RecordedProgress())
                except ShotGenerationError as exc:
                    return exc

        return await asyncio.gather(*(one(job) for job in jobs))

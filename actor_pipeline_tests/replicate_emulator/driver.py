"""A stand-in for the runner: one actor's shots through a backend, at most N at once, with a
progress that records each step the backend reports instead of journaling it; and the Replicate
backend as tests make it (test-sized delays, the emulator's token from the environment)."""

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from actor_pipeline.generation.replicate import ReplicateBackend, ReplicateSettings
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

    deadline: float
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
                    return await generator.generate(job, RecordedProgress(job.deadline))
                except ShotGenerationError as exc:
                    return exc

        return await asyncio.gather(*(one(job) for job in jobs))


_FAST = {
    "poll_interval_s": 0.02,
    "create_settle_s": 0.05,
    "retry_base_delay_s": 0.01,
    "retry_max_delay_s": 0.2,
    "creates_per_minute": 60_000.0,
}


def fast_settings(**overrides: object) -> ReplicateSettings:
    """Settings with test-sized delays; ``overrides`` win."""
    return ReplicateSettings(**{**_FAST, **overrides})  # type: ignore[arg-type]


def replicate_backend(settings: ReplicateSettings | None = None) -> ReplicateBackend:
    """The backend on the emulator whose token the environment holds (``emulator.env()``)."""
    return ReplicateBackend(settings or fast_settings(), os.environ["REPLICATE_API_TOKEN"])


def run(
    backend: ReplicateBackend, portrait: bytes, jobs: Sequence[ShotJob], max_concurrency: int = 8
) -> list[GeneratedImage | ShotGenerationError]:
    """The shots' results, each run in a fresh event loop as the runner's asset would."""
    return asyncio.run(generate_all(backend, portrait, jobs, max_concurrency))


def succeeded(results: Sequence[GeneratedImage | ShotGenerationError]) -> list[GeneratedImage]:
    """The images, failing the test with the errors' messages if any shot failed."""
    errors = [str(r) for r in results if isinstance(r, ShotGenerationError)]
    assert not errors, errors
    return [r for r in results if isinstance(r, GeneratedImage)]

"""Generate the shots of one actor concurrently, skipping shots that are already made.

This is plain asyncio: the Dagster asset is a thin wrapper around ``generate_shots``. One failed
shot never affects the others; every shot ends with a stored ``ShotRecord``.
"""

import asyncio
import contextlib
import hashlib
import io
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from actor_pipeline.catalog.prompts import PlannedShot, PromptSet
from actor_pipeline.generation.records import ShotRecord, StoredImage, fingerprint, load_record, save_record
from actor_pipeline.generation.types import (
    GeneratedImage,
    ImageBackend,
    ShotGenerationError,
    ShotGenerator,
    ShotJob,
    ShotStatus,
    Usage,
)
from actor_pipeline.outputs.debug import DebugWriter
from actor_pipeline.storage.base import Storage
from actor_pipeline.storage.layout import ActorLayout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShotOutcome:
    record: ShotRecord
    reused: bool  # an identical image already existed; nothing was generated or paid for

    @property
    def succeeded(self) -> bool:
        return self.record.status is ShotStatus.SUCCEEDED


@dataclass(frozen=True)
class ActorBatch:
    """One actor's inputs for a generation run."""

    layout: ActorLayout
    prompt_set: PromptSet
    portrait_jpeg: bytes
    shot_ids: Sequence[str]


async def generate_shots(
    batch: ActorBatch,
    backend: ImageBackend,
    storage: Storage,
    *,
    max_concurrency: int,
    force: bool = False,
    debug: DebugWriter | None = None,
) -> list[ShotOutcome]:
    """Make every shot in ``batch.shot_ids`` (at most ``max_concurrency`` at once)."""
    portrait_sha = hashlib.sha256(batch.portrait_jpeg).hexdigest()
    params = backend.fingerprint_params()
    planned = [batch.prompt_set.shot(shot_id) for shot_id in batch.shot_ids]
    run = _ActorRun(
        batch,
        backend,
        storage,
        debug,
        prints={p.shot_id: fingerprint(portrait_sha, p.prompt, p.seed, backend.name, backend.model, params) for p in planned},
        previous={p.shot_id: await asyncio.to_thread(load_record, storage, batch.layout, p.shot_id) for p in planned},
    )

    outcomes: dict[str, ShotOutcome] = {}
    todo: list[PlannedShot] = []
    for shot in planned:
        record = run.previous[shot.shot_id]
        if not force and record and await asyncio.to_thread(_still_valid, storage, record, run.prints[shot.shot_id]):
            outcomes[shot.shot_id] = ShotOutcome(record, reused=True)
        else:
            todo.append(shot)
    if outcomes:
        log.info("%s: %d shot(s) already made with the same inputs, reused", batch.layout.actor_id, len(outcomes))

    if todo:
        semaphore = asyncio.Semaphore(max_concurrency)

        async def one(generator: ShotGenerator, shot: PlannedShot) -> ShotOutcome:
            async with semaphore:
                return await run.make(shot, generator)

        async with contextlib.AsyncExitStack() as stack:
            try:
                generator = await stack.enter_async_context(backend.session(batch.portrait_jpeg))
            except Exception as exc:  # e.g. the portrait upload failed: every shot fails, clearly
                failure = ShotGenerationError(f"could not start a {backend.name} session: {exc}")
                made = [await asyncio.to_thread(run.finish, shot, failure, None) for shot in todo]
            else:
                made = await asyncio.gather(*(one(generator, shot) for shot in todo))
        outcomes.update((outcome.record.shot_id, outcome) for outcome in made)
    return [outcomes[shot_id] for shot_id in batch.shot_ids]


def _still_valid(storage: Storage, record: ShotRecord, expected_fingerprint: str) -> bool:
    if record.status is not ShotStatus.SUCCEEDED or record.fingerprint != expected_fingerprint or not record.image:
        return False
    stored = storage.head(record.image.key)
    return stored is not None and stored.sha256 == record.image.sha256


@dataclass(frozen=True)
class _ActorRun:
    """What every shot of one ``generate_shots`` call shares."""

    batch: ActorBatch
    backend: ImageBackend
    storage: Storage
    debug: DebugWriter | None
    prints: dict[str, str]  # shot id -> fingerprint of this run's inputs
    previous: dict[str, ShotRecord | None]  # shot id -> record before this run

    async def make(self, shot: PlannedShot, generator: ShotGenerator) -> ShotOutcome:
        job = ShotJob(self.batch.layout.actor_id, shot.shot_id, shot.index, shot.prompt, shot.seed)
        started = time.monotonic()
        result: GeneratedImage | ShotGenerationError
        try:
            result = await generator.generate(job)
        except ShotGenerationError as exc:
            result = exc
        except Exception as exc:  # a bug or an unexpected backend error must not take other shots down
            result = ShotGenerationError(f"{type(exc).__name__}: {exc}")
        return await asyncio.to_thread(self.finish, shot, result, time.monotonic() - started)

    def finish(self, shot: PlannedShot, result: GeneratedImage | ShotGenerationError, duration: float | None) -> ShotOutcome:
        """Store the image (if any) and the shot's record; never raises for one shot's problem."""
        before = self.previous[shot.shot_id]
        record = ShotRecord(
            shot_id=shot.shot_id,
            index=shot.index,
            status=ShotStatus.FAILED,
            fingerprint=self.prints[shot.shot_id],
            prompt=shot.prompt,
            seed=shot.seed,
            backend=self.backend.name,
            model=self.backend.model,
            image=before.image if before else None,  # a failure keeps the last good image
            duration_s=round(duration, 3) if duration is not None else None,
            attempts=(before.attempts if before else 0) + 1,
            usage=(before.usage if before else Usage()) + result.usage,
        )
        if self.debug:
            self.debug.write_request(shot.index, result.request_payload)
        if isinstance(result, ShotGenerationError):
            record.status, record.error, record.prediction_id = result.status, str(result), result.prediction_id
        else:
            record.prediction_id = result.prediction_id
            try:
                record.image = _store_image(self.storage, self.batch.layout, shot, result)
                record.status = ShotStatus.SUCCEEDED
                if self.debug:
                    self.debug.write_image(shot.index, result.data)
            except Exception as exc:
                record.error = f"storing the image failed: {type(exc).__name__}: {exc}"
        actor_id = self.batch.layout.actor_id
        outcome = f": {record.error}" if record.error else f" in {record.duration_s:.2f}s"
        level = logging.INFO if record.status is ShotStatus.SUCCEEDED else logging.WARNING
        log.log(level, "%s: shot %02d %s %s%s", actor_id, shot.index, shot.shot_id, record.status.value, outcome)
        try:
            save_record(self.storage, self.batch.layout, record)
        except Exception as exc:  # the image (if any) is stored; a rerun regenerates this shot at worst
            log.error("%s: could not save the record of shot %s: %s", actor_id, shot.shot_id, exc)
        return ShotOutcome(record, reused=False)


def _store_image(storage: Storage, layout: ActorLayout, shot: PlannedShot, image: GeneratedImage) -> StoredImage:
    with Image.open(io.BytesIO(image.data)) as decoded:
        width, height = decoded.size  # trust the bytes, not the backend's claim
    metadata = {
        "shot-id": shot.shot_id,
        "prompt-sha256": hashlib.sha256(shot.prompt.encode()).hexdigest(),
        "seed": str(shot.seed),
        "prediction-id": image.prediction_id or "",
    }
    stored = storage.put(layout.image(shot.index), image.data, "image/jpeg", metadata)
    return StoredImage(key=stored.key, sha256=stored.sha256, width=width, height=height, bytes=stored.size)

"""Per-shot records: the durable history of each shot of an actor, kept in storage.

A record says what the last attempt did, which image is the last good one, and the cumulative
cost of every attempt, so reruns can skip finished shots and the manifest can report the ledger.
"""

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from actor_pipeline.generation.types import ShotStatus, Usage
from actor_pipeline.storage.base import Storage
from actor_pipeline.storage.layout import ActorLayout


class StoredImage(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    sha256: str
    width: int
    height: int
    bytes: int


class ShotRecord(BaseModel):
    shot_id: str
    index: int
    status: ShotStatus
    fingerprint: str
    prompt: str
    seed: int
    backend: str
    model: str
    image: StoredImage | None = None
    prediction_id: str | None = None
    duration_s: float | None = None
    error: str | None = None
    attempts: int = 0
    usage: Usage = Field(default_factory=Usage)
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def fingerprint(portrait_sha256: str, prompt: str, seed: int, backend: str, model: str, params: Mapping[str, object]) -> str:
    """Identifies an image's inputs: equal fingerprints mean regenerating would redo paid work."""
    payload = {"portrait": portrait_sha256, "prompt": prompt, "seed": seed, "backend": backend, "model": model, "params": params}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def load_record(storage: Storage, layout: ActorLayout, shot_id: str) -> ShotRecord | None:
    try:
        return ShotRecord.model_validate_json(storage.get(layout.shot_record(shot_id)))
    except FileNotFoundError:
        return None


def save_record(storage: Storage, layout: ActorLayout, record: ShotRecord) -> None:
    storage.put(layout.shot_record(record.shot_id), record.model_dump_json(indent=2).encode(), "application/json")

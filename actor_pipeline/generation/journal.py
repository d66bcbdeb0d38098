"""The shot journal: the one record of each shot's state, written at every step of an attempt
before the next costly one, so that no interruption pays twice or loses a paid image.

An attempt goes ``planned`` (a create is about to be sent) -> ``created`` (the prediction id) ->
``output_ready`` (the output URL, deleted by Replicate an hour later) -> ``spooled`` (the bytes
kept on local disk) -> ``stored`` (in storage: the shot has succeeded), or ends failed. A rerun
continues from the last step written: it adopts the prediction, downloads the output while it
lives, or stores the spooled bytes; it creates a prediction only when the attempt has none.

While a shot is in progress its entry lives on local disk (the storage's ``state_dir``),
replaced atomically and fsynced at every step: storage may be what is failing. When the shot
ends, the entry goes to storage as the shot's record beside the set, and the local entry and
spooled bytes are removed. So a shot's state is read by one rule: the local entry if there is
one, else the record in storage. Status, ``retry-failed``, the manifest and Dagster all read it
through ``ShotJournal.load``, which only reads; the commands that make things load with
``repair=True``, which also sets aside a garbled entry, drops an entry that another maker made
stale, and stores a record rebuilt from its image, saying so in the log.

What the journal cannot know (the state folder lost, an entry garbled, a machine that never saw
the shot) the provider's list of predictions tells: see ``RecallsPredictions``.
"""

import hashlib
import io
import json
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from actor_pipeline.catalog.prompts import PlannedShot
from actor_pipeline.errors import StateError, StorageUnavailable
from actor_pipeline.generation.types import ShotStatus, Usage
from actor_pipeline.quality.model import CheckResult, ImageAnalysis
from actor_pipeline.storage.base import Storage, atomic_write
from actor_pipeline.storage.layout import ActorLayout
from actor_pipeline.storage.prediction_index import index_predictions

log = logging.getLogger(__name__)

# Object metadata of a stored image that lets a lost or garbled record be rebuilt from it.
FINGERPRINT_META, USAGE_META, ATTEMPTS_META = "fingerprint", "usage", "attempts"
BACKEND_META, MODEL_META, PREDICTIONS_META = "backend", "model", "predictions"


class Step(str, Enum):
    PLANNED = "planned"
    CREATED = "created"
    OUTPUT_READY = "output_ready"
    SPOOLED = "spooled"


class Attempt(BaseModel):
    """The attempt under way: how far it got, and what it has cost so far."""

    step: Step
    started_at: datetime  # when its create was about to be sent: the prediction lookup starts here
    prediction_id: str | None = None
    output_url: str | None = None
    output_expires_at: datetime | None = None
    spool_sha256: str | None = None
    usage: Usage = Field(default_factory=Usage)
    error: str | None = None  # why the last run left it unfinished (a download or store failure)


class StoredImage(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    sha256: str
    width: int
    height: int
    bytes: int
    # Made once from the bytes in hand when the image is stored: a materialization shows it
    # without downloading and re-encoding the image (None: kept before, or rebuilt from storage).
    thumbnail: str | None = None


class ShotRecord(BaseModel):
    shot_id: str
    index: int
    status: ShotStatus
    fingerprint: str  # of the last attempt's inputs
    prompt: str
    seed: int
    wording: int = 0  # 0: the shot's own prompt; n: its n-th rewording (after safety-filter flags)
    backend: str
    model: str
    image: StoredImage | None = None  # the last good image
    attempt: Attempt | None = None  # set exactly while the status is in_progress
    prediction_id: str | None = None
    predictions: list[str] = Field(default_factory=list)  # every prediction made for the shot that we know of
    duration_s: float | None = None
    error: str | None = None
    attempts: int = 0
    usage: Usage = Field(default_factory=Usage)  # every attempt, the one under way included
    quality: list[CheckResult] = Field(default_factory=list)  # the checks of ``image``; empty: not checked
    analysis: ImageAnalysis | None = None  # what the checks measured on ``image``, reused by later checks
    regenerations: int = 0  # attempts made because an image failed a blocking quality check
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def failed(cls, shot: PlannedShot, error: str, backend: str = "", model: str = "") -> "ShotRecord":
        """A failed shot with no image: what is known of it when its record is not."""
        return cls(
            shot_id=shot.shot_id,
            index=shot.index,
            status=ShotStatus.FAILED,
            fingerprint="",
            prompt=shot.prompt,
            seed=shot.seed,
            backend=backend,
            model=model,
            error=error,
        )

    @property
    def made(self) -> bool:
        return self.status is ShotStatus.SUCCEEDED and self.image is not None

    @property
    def qc(self) -> str:
        """``not_checked``, ``passed``, ``regenerated`` (passed after regenerating) or ``failed``."""
        if not self.made or not self.quality:
            return "not_checked"
        if any(result.blocks for result in self.quality):
            return "failed"
        return "regenerated" if self.regenerations else "passed"


def fingerprint(portrait_sha256: str, prompt: str, seed: int, backend: str, model: str, params: Mapping[str, object]) -> str:
    """Identifies an image's inputs: equal fingerprints mean regenerating would redo paid work."""
    payload = {"portrait": portrait_sha256, "prompt": prompt, "seed": seed, "backend": backend, "model": model, "params": params}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def image_metadata(record: ShotRecord) -> dict[str, str]:
    """What a stored image carries about its shot: enough to rebuild the shot's record."""
    return {
        "shot-id": record.shot_id,
        "prompt-sha256": hashlib.sha256(record.prompt.encode()).hexdigest(),
        "seed": str(record.seed),
        "prediction-id": record.prediction_id or "",
        # The last ones: object metadata is small (2 KB on S3), and a shot rarely has more than a few.
        PREDICTIONS_META: ",".join(record.predictions[-16:]),
        FINGERPRINT_META: record.fingerprint,
        BACKEND_META: record.backend,
        MODEL_META: record.model,
        ATTEMPTS_META: str(record.attempts),
        USAGE_META: json.dumps(record.usage.__dict__, separators=(",", ":")),
    }


class ShotJournal:
    """The journal of one actor's shots: local entries, spooled bytes and stored records."""

    def __init__(self, storage: Storage, layout: ActorLayout) -> None:
        self.storage = storage
        self.layout = layout
        self.folder = storage.state_dir / layout.user_id / layout.actor_id
        self.spool_folder = self.folder / "spool"

    def load(self, shot: PlannedShot, *, repair: bool = False) -> ShotRecord | None:
        """The shot's state: the local entry if any (unless another maker has since stored the
        shot), else its record in storage (rebuilt from the stored image when the record is
        missing or garbled), else ``None`` (never attempted as far as our state knows). A garbled
        record that cannot be rebuilt reads as a failed shot whose error names the file.

        Only reads, unless ``repair``: then a garbled local entry is moved aside, a stale one is
        removed with its spool, and a rebuilt record is stored."""
        local = self._entry_path(shot.shot_id)
        try:
            entry = ShotRecord.model_validate_json(local.read_bytes())
        except FileNotFoundError:
            entry = None
        except (ValidationError, ValueError, OSError) as exc:
            entry = None
            if repair:
                kept = local.with_name(f"{local.name}.corrupt")
                os.replace(local, kept)
                log.warning(
                    "%s: journal entry %s is unreadable (%s): moved aside as %s; Replicate's list of predictions "
                    "tells what it had paid for", self.layout.actor_id, local, _first_line(exc), kept,
                )  # fmt: skip
        key = self.layout.shot_record(shot.shot_id)
        if entry is not None and entry.attempt is None:
            return entry  # finished, waiting for flush() to reach storage
        try:
            raw = self.storage.get(key)
        except FileNotFoundError:
            return entry or self._rebuilt(shot, None, repair)
        except StorageUnavailable:
            if entry is None:
                raise
            return entry  # whether another maker stored it since is for a later look
        try:
            stored = ShotRecord.model_validate_json(raw)
        except (ValidationError, ValueError) as exc:
            if entry is not None:
                return entry
            rebuilt = self._rebuilt(shot, key, repair)
            if rebuilt is not None:
                return rebuilt
            problem = StateError(
                f"the record {self.storage.url(key)} of shot {shot.shot_id} is unreadable ({_first_line(exc)}) and "
                "no stored image matches it: the next run makes the shot again (delete the file to silence this)"
            )
            log.warning("%s: %s", self.layout.actor_id, problem)
            return ShotRecord.failed(shot, str(problem))
        if entry is None:
            return stored
        if stored.attempt is None and stored.updated_at > entry.updated_at:
            # Another maker (another machine, after this one's lease lapsed) finished the shot since.
            if repair:
                self._drop_entry(shot.shot_id)
                log.warning(
                    "%s: shot %s was stored by another maker after this machine's unfinished attempt: "
                    "dropped the stale journal entry", self.layout.actor_id, shot.shot_id,
                )  # fmt: skip
            return stored
        return entry

    def unreadable_entry(self, shot_id: str) -> Path | None:
        """The shot's local entry if it is there but cannot be read (status shows it)."""
        local = self._entry_path(shot_id)
        try:
            ShotRecord.model_validate_json(local.read_bytes())
        except FileNotFoundError:
            return None
        except (ValidationError, ValueError, OSError):
            return local
        return None

    def write(self, record: ShotRecord) -> None:
        """Journal a step of an attempt under way, durably, before the next costly step."""
        record.updated_at = datetime.now(UTC)
        atomic_write(self._entry_path(record.shot_id), record.model_dump_json(indent=2).encode(), durable=True)

    def settle(self, record: ShotRecord) -> None:
        """Record a finished shot: locally first (storage may be down), then in storage, then
        drop the local entry and its spooled bytes. ``StorageUnavailable`` leaves the local entry
        for the next run's ``flush``."""
        self.write(record)
        self._publish(record)

    def flush(self) -> None:
        """Put finished shots whose record could not reach storage earlier."""
        for path in sorted(self.folder.glob("*.json")):
            try:
                record = ShotRecord.model_validate_json(path.read_bytes())
            except (ValidationError, ValueError, OSError):
                continue  # load() reports it when the shot is read
            if record.attempt is None:
                self._publish(record)

    def spool(self, shot_id: str, data: bytes) -> str:
        """Keep paid bytes on local disk until they are stored; returns their SHA-256."""
        atomic_write(self._spool_path(shot_id), data, durable=True)
        return hashlib.sha256(data).hexdigest()

    def spooled(self, shot_id: str, sha256: str) -> bytes | None:
        """The spooled bytes of the shot, if they are there intact."""
        try:
            data = self._spool_path(shot_id).read_bytes()
        except OSError:
            return None
        return data if hashlib.sha256(data).hexdigest() == sha256 else None

    def spooled_count(self) -> int:
        return sum(1 for _ in self.spool_folder.glob("*.jpg")) if self.spool_folder.is_dir() else 0

    def _publish(self, record: ShotRecord) -> None:
        index_predictions(self.storage, self.layout, record.shot_id, record.predictions)  # a stored record's are indexed
        body = record.model_dump_json(indent=2).encode()
        self.storage.put(self.layout.shot_record(record.shot_id), body, "application/json")
        self._drop_entry(record.shot_id)

    def _drop_entry(self, shot_id: str) -> None:
        self._entry_path(shot_id).unlink(missing_ok=True)
        self._spool_path(shot_id).unlink(missing_ok=True)

    def _rebuilt(self, shot: PlannedShot, garbled_key: str | None, store: bool) -> ShotRecord | None:
        """The record of a shot whose image is stored with this shot's metadata (stored again
        when ``store``), or ``None``."""
        key = self.layout.image(shot.index)
        stored = self.storage.head(key)
        meta = stored.metadata if stored else {}
        if stored is None or meta.get("shot-id") != shot.shot_id or FINGERPRINT_META not in meta:
            return None
        matching = [
            n
            for n in range(len(shot.rewordings) + 1)
            if meta.get("prompt-sha256") == hashlib.sha256(shot.wording(n).prompt.encode()).hexdigest()
            and meta.get("seed") == str(shot.wording(n).seed)
        ]
        if not matching:
            return None
        with Image.open(io.BytesIO(self.storage.get(key))) as decoded:
            width, height = decoded.size
        record = ShotRecord(
            shot_id=shot.shot_id,
            index=shot.index,
            status=ShotStatus.SUCCEEDED,
            fingerprint=meta[FINGERPRINT_META],
            prompt=shot.wording(matching[0]).prompt,
            seed=shot.wording(matching[0]).seed,
            wording=matching[0],
            backend=meta.get(BACKEND_META, ""),
            model=meta.get(MODEL_META, ""),
            image=StoredImage(key=key, sha256=stored.sha256, width=width, height=height, bytes=stored.size),
            prediction_id=meta.get("prediction-id") or None,
            predictions=[p for p in meta.get(PREDICTIONS_META, meta.get("prediction-id", "")).split(",") if p],
            attempts=int(meta.get(ATTEMPTS_META, "1")),
            usage=Usage(**json.loads(meta.get(USAGE_META, "{}"))),
        )
        if store:
            what = f"garbled record {garbled_key}" if garbled_key else "missing record"
            log.warning("%s: shot %s: rebuilt the %s from the stored image %s", self.layout.actor_id, shot.shot_id, what, key)
            self._publish(record)
        return record

    def _entry_path(self, shot_id: str) -> Path:
        return self.folder / f"{shot_id}.json"

    def _spool_path(self, shot_id: str) -> Path:
        return self.spool_folder / f"{shot_id}.jpg"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

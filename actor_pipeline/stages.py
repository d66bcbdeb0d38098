"""The work behind each asset, as plain functions of storage, catalog and backend.

The Dagster assets in ``actor_pipeline.defs.assets`` only wire these together, so every stage
can be tested (and reused by the CLI) without Dagster.
"""

import asyncio
import hashlib
import io
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.catalog.model import Catalog
from actor_pipeline.catalog.prompts import PlannedShot
from actor_pipeline.errors import NotMadeYet
from actor_pipeline.generation.budget import KEPT_REASONS, Spending, load_verdict
from actor_pipeline.generation.debug import DebugWriter
from actor_pipeline.generation.journal import ShotRecord
from actor_pipeline.generation.runner import ActorBatch, RunLimits, ShotOutcome, generate_shots
from actor_pipeline.generation.types import ImageBackend
from actor_pipeline.outputs.bundle import (
    COMMON_MINIMUM,
    DEFAULT_KOHYA_REPEATS,
    DEFAULT_TRIGGER,
    BundleEntry,
    Layout,
    build_bundle,
)
from actor_pipeline.outputs.grid import Tile, render_grid, tile_image
from actor_pipeline.outputs.manifest import (
    BundleInfo,
    GridInfo,
    LikenessSummary,
    LoraSection,
    Manifest,
    PortraitInfo,
    build_manifest,
    write_manifest,
)
from actor_pipeline.outputs.thumbnails import inline_markdown, shot_alt
from actor_pipeline.portrait.limits import PortraitLimits
from actor_pipeline.portrait.normalize import normalize_portrait
from actor_pipeline.quality import (
    DEFAULT_THRESHOLDS,
    CheckName,
    Outcome,
    QualityThresholds,
    SetChecker,
    prepare_identity,
)
from actor_pipeline.registry import NewActor, register_actor
from actor_pipeline.storage.base import Storage
from actor_pipeline.storage.lease import hold_actor
from actor_pipeline.training import (
    Likeness,
    TrainedLora,
    Trainer,
    TrainingJournal,
    load_likeness,
    train_lora,
    validate_lora,
)
from actor_pipeline.training.train import Maker

log = logging.getLogger(__name__)

SOURCE_META = "source-sha256"  # on the normalized portrait: the staged source it was made from


@dataclass(frozen=True)
class QualityOptions:
    """How the images are checked (``actor_pipeline.quality``)."""

    thresholds: QualityThresholds = DEFAULT_THRESHOLDS
    identity: bool = True  # faces and identity, where the "faces" extra is installed


def start_actor(storage: Storage, new: NewActor, portrait_bytes: bytes) -> ActorContext:
    """Register the actor and store the JPEG every shot is made from, decoding and normalizing
    the portrait once; the run goes on with the context returned. Raises ``InputError`` (nothing
    written) for bad input."""
    registration, normalized = register_actor(storage, new, portrait_bytes)
    source = hashlib.sha256(portrait_bytes).hexdigest()
    storage.put(registration.layout.portrait, normalized.jpeg, "image/jpeg", {SOURCE_META: source})
    return ActorContext(storage, registration)


def normalize_stage(actor: ActorContext) -> PortraitInfo:
    """The registered actor's normalized portrait, normalized from the staged source only when
    it was not made from that source already (``start_actor`` stores it)."""
    storage, layout = actor.storage, actor.layout
    staged, normalized = storage.head(layout.source_portrait), storage.head(layout.portrait)
    if staged is None:
        raise NotMadeYet(f"actor {actor.actor_id!r} has no staged portrait: start it again with its portrait")
    if normalized is None or normalized.metadata.get(SOURCE_META) != staged.sha256:
        fresh = normalize_portrait(storage.get(layout.source_portrait), PortraitLimits.from_env())
        storage.put(layout.portrait, fresh.jpeg, "image/jpeg", {SOURCE_META: staged.sha256})
    return portrait_info(actor)


async def generate_stage(
    actor: ActorContext,
    backend: ImageBackend,
    shot_ids: Sequence[str],
    *,
    limits: RunLimits,
    maker: str,
    force: bool = False,
    debug: DebugWriter | None = None,
    quality: "QualityOptions | None" = None,
    lease_wait_s: float = 0.0,
    spending: Spending | None = None,
) -> list[ShotOutcome]:
    """Make the shots while holding the actor's lease (``maker`` says who, for a second maker's
    ``ActorBusy``), then check the set's quality (with ``quality``), regenerating what fails, with
    the run's ``spending`` cap. A stop request returns early: check ``stopping.requested()``."""
    storage, registration = actor.storage, actor.registration
    try:
        portrait = storage.get(actor.layout.portrait)
    except FileNotFoundError:
        raise NotMadeYet(
            f"actor {actor.actor_id!r} has no normalized portrait yet: materialize normalized_portrait first"
        ) from None
    prompt_set = actor.prompt_set
    batch = ActorBatch(actor.layout, prompt_set, portrait, shot_ids, registration.known_since)
    gate = None
    if quality is not None:
        if quality.identity:
            # Idle CPU while Replicate works: the identity check's set-up is ready when the shots are.
            threading.Thread(target=prepare_identity, args=(portrait, registration.actor_type), daemon=True).start()
        gate = SetChecker(
            portrait,
            {shot.shot_id: shot.category for shot in prompt_set.shots},
            registration.actor_type,
            quality.thresholds,
            quality.identity,
        )
    with hold_actor(storage, actor.actor_id, maker, wait_s=lease_wait_s) as held:
        return await generate_shots(
            batch,
            backend,
            storage,
            limits=limits,
            force=force,
            debug=debug,
            lease_lost=held.lost.is_set,
            quality=gate,
            spending=spending,
            thumbnail=_thumbnail,
        )


def _thumbnail(shot: PlannedShot, data: bytes) -> str:
    return inline_markdown(data, shot_alt(shot.index, shot.shot_id))


def grid_stage(actor: ActorContext, debug: DebugWriter | None = None) -> GridInfo:
    """Draw the contact sheet: the portrait first, then every shot (failed ones as placeholders)."""
    storage, layout, prompt_set, journal = actor.storage, actor.layout, actor.prompt_set, actor.journal
    tiles = [Tile("Portrait (input)", "portrait", _open(storage, layout.portrait))]
    made = 0
    for planned in prompt_set.shots:
        record = journal.load(planned)
        image = _open(storage, record.image.key) if record and record.made and record.image else None
        made += image is not None
        note = "" if image else (record.status.value.replace("_", " ") if record else "not generated")
        badge = record.qc if record and record.qc != "not_checked" else ""
        label = f"{planned.index:02d} {planned.label}"
        tiles.append(Tile(label, planned.category.value, image, note, badge, _badge_detail(record) if record else ""))
    title = f"{actor.actor_id} · {prompt_set.descriptor} · {made}/{len(prompt_set.shots)} shots"
    data = render_grid(title, tiles)
    storage.put(layout.grid, data, "image/jpeg")
    if debug:
        debug.write_grid(data)
    return GridInfo(key=layout.grid, url=storage.url(layout.grid))


def bundle_stage(
    actor: ActorContext,
    catalog: Catalog,
    *,
    trigger: str = DEFAULT_TRIGGER,
    layout: Layout = Layout.FLAT,
    repeats: int = DEFAULT_KOHYA_REPEATS,
    minimum: int = COMMON_MINIMUM,
) -> BundleInfo | None:
    """Zip the made images with their captions for a LoRA trainer, and say what was left out
    and why (and whether it holds fewer than ``minimum`` images, or than every shot of a smaller
    catalog); ``None`` when no image is made yet."""
    storage, keys, prompt_set, journal = actor.storage, actor.layout, actor.prompt_set, actor.journal
    verdict = load_verdict(storage, keys)
    entries: list[BundleEntry] = []
    left_out: dict[str, str] = {}
    for planned in prompt_set.shots:
        record = journal.load(planned)
        if record and record.made and record.image and record.qc != "failed" and planned.shot_id in catalog.ids:
            entries.append(BundleEntry(catalog.shot(planned.shot_id), storage.get(record.image.key)))
        elif record and record.qc == "failed":
            failed = "; ".join(r.reason for r in record.quality if r.blocks)
            kept = verdict.kept.get(planned.shot_id) if verdict else None
            why = f" (not regenerated: {KEPT_REASONS[kept]})" if kept else ""
            left_out[planned.shot_id] = (
                f"failed quality checks after {record.regenerations} regeneration(s){why}: {failed}"
            )
        else:
            status = record.status.value.replace("_", " ") if record else "not generated"
            left_out[planned.shot_id] = f"{status}: {record.error}" if record and record.error else status
    if not entries:
        return None
    bundle = build_bundle(
        entries,
        prompt_set.descriptor,
        left_out=left_out,
        trigger=trigger,
        layout=layout,
        repeats=repeats,
        minimum=min(minimum, len(prompt_set.shots)),  # a smaller catalog asks for every shot
    )
    stored = storage.put(keys.bundle(layout.value), bundle.data, "application/zip")
    info = BundleInfo(key=stored.key, url=storage.url(stored.key), sha256=stored.sha256, report=bundle.report)
    storage.put(keys.bundle_report, info.model_dump_json(indent=2).encode(), "application/json")
    return info


def _badge_detail(record: ShotRecord) -> str:
    """What a contact-sheet badge adds: the failed checks, else the identity distance if measured."""
    failed = [r.check.value for r in record.quality if r.blocks]
    if failed:
        return ", ".join(failed)
    identity = next((r for r in record.quality if r.check is CheckName.IDENTITY and r.outcome is Outcome.PASSED), None)
    return f"identity {identity.measured.get('distance', 0):.2f}" if identity and identity.measured else ""


def manifest_stage(actor: ActorContext, default_backend: tuple[str, str]) -> tuple[Manifest, str]:
    """Write the manifest last, from what storage holds now; returns it and its URL."""
    storage, layout, prompt_set = actor.storage, actor.layout, actor.prompt_set
    portrait = portrait_info(actor)
    records = {p.shot_id: actor.journal.load(p) for p in prompt_set.shots}
    grid = GridInfo(key=layout.grid, url=storage.url(layout.grid))
    try:
        bundle = BundleInfo.model_validate_json(storage.get(layout.bundle_report))
    except FileNotFoundError:
        bundle = None
    verdict = load_verdict(storage, layout)
    lora = _lora_section(actor)
    manifest = build_manifest(
        actor.registration, prompt_set, portrait, grid, records, storage, default_backend, bundle, verdict, lora
    )
    return manifest, write_manifest(storage, layout.manifest, manifest)


def train_stage(actor: ActorContext, trainer: Trainer, maker: Maker, *, retrain: bool = False) -> TrainedLora:
    """Train (or reuse) the actor's LoRA; the manifest then records it, even a failed one with
    its cost."""
    with _manifest_refreshed(actor):
        return asyncio.run(train_lora(actor, trainer, maker, retrain=retrain))


def validation_stage(actor: ActorContext, trainer: Trainer, maker: Maker, *, identity: bool = True) -> Likeness:
    """Measure the likeness of the actor's latest trained LoRA; the manifest then shows it."""
    actor_id = actor.actor_id
    training = TrainingJournal(actor.storage, actor.layout).history().latest_success()
    if training is None:
        raise NotMadeYet(f"actor {actor_id!r} has no trained LoRA yet: `actor-pipeline train --actor-id {actor_id}`")
    with _manifest_refreshed(actor):
        return asyncio.run(validate_lora(actor, trainer, training, maker, identity=identity))


@contextmanager
def _manifest_refreshed(actor: ActorContext) -> Iterator[None]:
    """Rewrite the actor's manifest (if it has one) after the body, however it ends."""
    try:
        yield
    finally:
        try:
            earlier = Manifest.model_validate_json(actor.storage.get(actor.layout.manifest))
        except FileNotFoundError:
            earlier = None
        if earlier is not None:
            manifest_stage(actor, (earlier.backend, earlier.model))


def _lora_section(actor: ActorContext) -> LoraSection | None:
    """The latest training (and its likeness, if measured), with what every training cost."""
    storage = actor.storage
    history = TrainingJournal(storage, actor.layout).history()
    if not history.trainings:
        return None
    latest = history.latest_success() or history.trainings[-1]
    likeness = load_likeness(actor)
    summary = None
    if likeness is not None and likeness.training_id == latest.training_id:
        summary = LikenessSummary(
            images=len(likeness.images),
            measured=likeness.measured,
            passed=likeness.passed,
            median_distance=likeness.median_distance,
            max_distance=likeness.max_distance,
            sheet_url=storage.url(likeness.sheet_key) if likeness.sheet_key else None,
            cost_usd=likeness.cost_usd,
        )
    return LoraSection(
        status=latest.status.value,  # type: ignore[arg-type]  # an ended training's
        trainer=latest.trainer,
        trainer_version=latest.trainer_version,
        training_id=latest.training_id,
        model_version=latest.model_version,
        weights_url=latest.weights_url,
        trigger=latest.trigger,
        bundle_sha256=latest.bundle_sha256,
        cost_usd=latest.cost_usd,
        duration_s=latest.duration_s,
        error=latest.error,
        trainings=len(history.trainings),
        trainings_cost_usd=history.cost_usd,
        validation_images=history.validation_images,
        validation_cost_usd=history.validation_cost_usd,
        likeness=summary,
    )


def portrait_info(actor: ActorContext) -> PortraitInfo:
    """What the manifest and the UI say of the normalized portrait (``NotMadeYet`` before it is made)."""
    storage, registration = actor.storage, actor.registration
    key = registration.layout.portrait
    stored = storage.head(key)
    if stored is None:
        raise NotMadeYet(f"actor {registration.actor_id!r} has no normalized portrait: materialize it first")
    with Image.open(io.BytesIO(storage.get(key))) as image:
        width, height = image.size
    return PortraitInfo(
        source=registration.portrait_source,
        key=key,
        url=storage.url(key),
        sha256=stored.sha256,
        bytes=stored.size,
        width=width,
        height=height,
    )


def _open(storage: Storage, key: str) -> Image.Image | None:
    try:
        return tile_image(storage.get(key))
    except (FileNotFoundError, OSError) as exc:
        log.warning("grid: cannot read %s: %s", key, exc)
        return None

"""``generate``: one actor's whole set from a portrait, as the CLI and the Python API ask for it;
``estimate``: what it would create and pay at most, creating nothing (``--dry-run``)."""

import hashlib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import dagster as dg

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.commands.instance import open_instance
from actor_pipeline.commands.materialize import ActorResult, materialize_actor, spool_reported
from actor_pipeline.defs.partitions import CATALOG
from actor_pipeline.defs.resources import StorageResource
from actor_pipeline.defs.settings import PipelineSettings
from actor_pipeline.errors import InputError, PortraitError
from actor_pipeline.generation.budget import Spending, regen_budget
from actor_pipeline.generation.runner import first_step
from actor_pipeline.portrait.fetch import read_portrait_source, redact_source
from actor_pipeline.portrait.limits import PortraitLimits
from actor_pipeline.registry import NewActor, plan_registration
from actor_pipeline.stages import start_actor
from actor_pipeline.storage.lease import hold_actor

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class GenerationRequest:
    """One actor to generate, as the CLI and the Python API ask for it: the actor, in the one shape
    every way in starts an actor with (its ``portrait`` the source: a path, an http(s) URL or an
    s3:// URI; empty when only a buffer is given), a portrait buffer preferred over the source
    when it decodes, and whether made shots are made again."""

    actor: NewActor
    portrait_buffer: bytes | None = None
    force: bool = False


def generate(
    request: GenerationRequest,
    settings: PipelineSettings,
    instance: dg.DagsterInstance | None = None,
    maker: str = "actor-pipeline generate",
) -> ActorResult:
    """Register the actor (validating everything first) and materialize its whole set, holding
    the actor's lease throughout (``ActorBusy`` if another maker holds it)."""
    resources = settings.resources()
    storage = resources["storage"].create_storage()
    storage.check()  # a missing bucket or a bad key fails here, before anything is paid for
    settings.generator.create_backend(CATALOG)
    new = request.actor
    with hold_actor(storage, new.actor_id, maker), spool_reported(storage, new.layout):
        actor = _with_portrait(request, resources["storage"], lambda new, data: start_actor(storage, new, data))
        return materialize_actor(
            actor,
            instance=instance or open_instance(settings.resolved_instance_dir),
            resources=resources,
            force=request.force,
            bundle=settings.bundle_config(),
        )


def _with_portrait(request: GenerationRequest, storage: StorageResource, use: Callable[[NewActor, bytes], T]) -> T:
    """``use`` the buffer when it decodes, else the source (the seed's "fallback URL"
    behaviour): ``use`` decodes the portrait, once, and raises ``PortraitError`` writing nothing."""
    new = request.actor
    if request.portrait_buffer is not None:
        try:
            return use(new.model_copy(update={"portrait": "<portrait_buffer>"}), request.portrait_buffer)
        except PortraitError:
            if not new.portrait:
                raise
            log.warning("%s: portrait_buffer is not a usable image; fetching %s instead", new.actor_id, redact_source(new.portrait))
    if not new.portrait:
        raise InputError("no portrait given: pass a file path, an http(s) URL or an s3:// URI")
    return use(new, read_portrait_source(new.portrait, PortraitLimits.from_env(), storage.read_s3_portrait))


@dataclass(frozen=True)
class Estimate:
    """What a ``generate`` of the request would create and pay at most."""

    actor_id: str
    backend: str
    model: str
    price_per_image_usd: float
    shots: int
    reused: int  # made with the same inputs: reused, not paid again
    resumed: int  # an earlier run's prediction, adopted: paid for then
    refused: int  # flagged by the safety filter in every wording: not tried again
    first_pass: int  # predictions the run creates for shots not made
    regenerations: int  # quality regenerations at most: the set's budget left, within qc_attempts
    max_cost_usd: float | None  # the run's spending cap

    @property
    def predictions(self) -> int:
        return Spending(self.max_cost_usd, self.price_per_image_usd).allows(self.first_pass + self.regenerations)

    @property
    def cost_usd(self) -> float:
        return round(self.predictions * self.price_per_image_usd, 4)

    def as_dict(self) -> dict[str, Any]:
        at_most = {"predictions_at_most": self.predictions, "cost_at_most_usd": self.cost_usd}
        return {"dry_run": True, **asdict(self), **at_most}

    def summary(self) -> str:
        cap = f", capped at ${self.max_cost_usd:.2f}" if self.max_cost_usd is not None else ""
        return (
            f"dry run: {self.shots} shots: {self.reused} reused, {self.resumed} resumed at no cost, {self.first_pass} "
            f"to create, up to {self.regenerations} quality regeneration(s): at most {self.predictions} "
            f"prediction(s), ${self.cost_usd:.2f} ({self.model} at ${self.price_per_image_usd:.2f} each{cap}); "
            "nothing was created"
        )


def estimate(request: GenerationRequest, settings: PipelineSettings) -> Estimate:
    """What ``generate(request, settings)`` would create and pay at most: the first pass (shots
    not made with these inputs), reuse of what is made, and the set's regeneration budget left.
    Reads the portrait and the shot journal only: no registration, no Dagster run, no prediction."""
    storage_resource = settings.storage
    storage = storage_resource.create_storage()
    generator = settings.generator
    backend = generator.create_backend(CATALOG)
    registration, normalized = _with_portrait(
        request, storage_resource, lambda new, data: plan_registration(storage, new, data)
    )
    planned = ActorContext(storage, registration)  # as it would be: nothing is written
    prompt_set, journal = planned.word_prompts(CATALOG), planned.journal
    portrait_sha = hashlib.sha256(normalized.jpeg).hexdigest()
    steps, candidates, spent = {"refused": 0, "reused": 0, "resumed": 0, "create": 0}, 0, 0
    limits = generator.limits()
    for shot in prompt_set.shots:
        record = journal.load(shot)
        step = first_step(shot, record, storage, portrait_sha, backend, force=request.force)
        steps[step] += 1
        regenerations = record.regenerations if record else 0
        spent += regenerations
        # Shots whose image is new, or kept though it failed, may be regenerated within their qc_attempts.
        if step in ("resumed", "create") or step == "reused" and record and record.qc == "failed":
            candidates += max(0, limits.qc_attempts - regenerations)
    budget_left = max(0, regen_budget(len(prompt_set.shots), limits.regen_budget_pct) - spent)
    return Estimate(
        actor_id=registration.actor_id,
        backend=backend.name,
        model=backend.model,
        price_per_image_usd=generator.price_per_image_usd(),
        shots=len(prompt_set.shots),
        reused=steps["reused"],
        resumed=steps["resumed"],
        refused=steps["refused"],
        first_pass=steps["create"],
        regenerations=min(budget_left, candidates) if generator.quality() else 0,
        max_cost_usd=generator.max_cost_usd,
    )

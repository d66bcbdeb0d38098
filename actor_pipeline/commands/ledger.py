"""``actor-pipeline ledger``: an actor's ledger (its shot records and training history) against
the bill (Replicate's lists of predictions and trainings), and, when asked, the ledger made equal
to the bill."""

import asyncio
import logging
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.catalog.prompts import PlannedShot
from actor_pipeline.defs.partitions import CATALOG
from actor_pipeline.defs.settings import PipelineSettings
from actor_pipeline.errors import InputError
from actor_pipeline.generation.journal import ShotJournal, ShotRecord
from actor_pipeline.generation.replicate import ReplicateBackend
from actor_pipeline.generation.types import Faded, Recalled, Usage, usd
from actor_pipeline.stages import manifest_stage
from actor_pipeline.storage.lease import hold_actor
from actor_pipeline.storage.prediction_index import prediction_owners
from actor_pipeline.training.ledger import BillPart, lora_ledger
from actor_pipeline.training.replicate import ReplicateTrainer
from actor_pipeline.training.types import Trainer

log = logging.getLogger(__name__)


@dataclass
class ShotLedger:
    shot_id: str
    ours: Usage
    provider: Usage
    unrecorded: list[str] = field(default_factory=list)  # listed by the provider, not in our record
    listed: list[Recalled | Faded] = field(default_factory=list)  # what the provider lists for the shot

    @property
    def differs(self) -> bool:
        return bool(self.unrecorded)


@dataclass
class LedgerReport:
    actor_id: str
    listed_since: datetime
    shots: list[ShotLedger]
    reconciled: bool
    # Listed without their inputs (removed an hour after they ended) and named by no record or
    # index entry (``prediction_key``): made outside this storage with the same token, or the
    # actor's, lost with its state before its shot's record was stored; no one can tell.
    untied: list[Faded] = field(default_factory=list)
    others: int = 0  # listed without their inputs, and indexed as another actor's
    model: str = "the model"  # whose predictions the images are
    lora: list[BillPart] = field(default_factory=list)  # trainings and validation images; none if never trained

    @property
    def ours(self) -> Usage:
        return sum((s.ours for s in self.shots), Usage())

    @property
    def provider(self) -> Usage:
        return sum((s.provider for s in self.shots), Usage())

    @property
    def untied_usage(self) -> Usage:
        return sum((f.usage for f in self.untied), Usage())

    @property
    def differs(self) -> bool:
        return any(s.differs for s in self.shots) or any(part.differs for part in self.lora)

    @property
    def total_usd(self) -> tuple[float, float]:
        """(ledger, Replicate) in dollars: images, trainings and validation images together, the
        figures to hold against the bill."""
        return (
            round(self.ours.cost_usd + sum(part.ours_usd for part in self.lora), 6),
            round(self.provider.cost_usd + sum(part.provider_usd for part in self.lora), 6),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "actor_id": self.actor_id,
            "provider_listed_since": self.listed_since.isoformat(),
            "ledger": asdict(self.ours),
            "provider": asdict(self.provider),
            "equal": not self.differs,
            "reconciled": self.reconciled,
            "differences": [
                {"shot_id": s.shot_id, "unrecorded_predictions": s.unrecorded, "unrecorded_cost_usd": _cost(s)}
                for s in self.shots
                if s.differs
            ],
            "untied_predictions": {
                "predictions": [f.prediction_id for f in self.untied],
                "cost_usd": self.untied_usage.cost_usd,
                "other_actors": self.others,
            },
            **{part.what.replace(" ", "_"): part.as_dict() for part in self.lora},
            "total_usd": dict(zip(("ledger", "provider"), self.total_usd, strict=True)),
        }


def _cost(shot: ShotLedger) -> float:
    return round(shot.provider.cost_usd - shot.ours.cost_usd, 6) if shot.differs else 0.0


def actor_ledger(actor_id: str, settings: PipelineSettings, reconcile: bool) -> LedgerReport:
    """Compare the actor's ledger with Replicate's list since the actor's first registration (at
    most ``history_lookback_h`` back); with ``reconcile``, add what the list has and our records
    lack to the records and rewrite the manifest, holding the actor's lease."""
    backend = settings.generator.create_backend(CATALOG)
    if not isinstance(backend, ReplicateBackend):
        raise InputError("the ledger is compared with Replicate's list of predictions: set REPLICATE_API_TOKEN")
    actor = ActorContext.load(settings.storage.create_storage(), actor_id)
    storage, registration, prompt_set, journal = actor.storage, actor.registration, actor.prompt_set, actor.journal
    qc_attempts = settings.generator.qc_attempts
    owner = {(w.prompt, w.seed): shot for shot in prompt_set.shots for w in shot.possible_wordings(qc_attempts)}
    since = max(registration.known_since, datetime.now(UTC) - timedelta(hours=backend.settings.history_lookback_h))
    listing = asyncio.run(backend.listed(set(owner), since))
    by_shot: dict[str, list[Recalled | Faded]] = {}
    for prediction in listing.matched:
        by_shot.setdefault(owner[(prediction.prompt, prediction.seed)].shot_id, []).append(prediction)
    trainer = settings.trainer.create_trainer(actor)
    if not reconcile:
        report = _report(actor_id, since, prompt_set.shots, journal, (by_shot, listing.faded), False, backend.settings.model)
        report.lora = _lora(actor, trainer, since, False)
        return report
    with hold_actor(storage, actor_id, "actor-pipeline ledger --reconcile"):
        report = _report(actor_id, since, prompt_set.shots, journal, (by_shot, listing.faded), True, backend.settings.model)
        for shot, entry in zip(prompt_set.shots, report.shots, strict=True):
            if entry.differs:
                _record(journal, shot, backend, [p for p in entry.listed if p.prediction_id in entry.unrecorded])
        report.lora = _lora(actor, trainer, since, True)
        if storage.head(registration.layout.manifest) is not None:
            manifest_stage(actor, (backend.name, backend.model))
    return report


def _lora(actor: ActorContext, trainer: Trainer, since: datetime, reconcile: bool) -> list[BillPart]:
    """The trainings' and validation images' part, where the trainer is Replicate's."""
    if not isinstance(trainer, ReplicateTrainer):
        return []  # the trainer resource set to the $0 preview: nothing of it is billed
    return asyncio.run(lora_ledger(actor, trainer, since, reconcile))


def _report(
    actor_id: str,
    since: datetime,
    shots: list[PlannedShot],
    journal: ShotJournal,
    listed_by: tuple[dict[str, list[Recalled | Faded]], list[Faded]],
    reconciled: bool,
    model: str,
) -> LedgerReport:
    """``listed_by``: the predictions listed for each shot's wordings, and those listed without
    their input; one of these counts for the shot whose record, or else whose index entry,
    names it."""
    matched, faded = listed_by
    by_shot = {shot_id: list(listed) for shot_id, listed in matched.items()}
    records = {shot.shot_id: journal.load(shot) for shot in shots}
    known = {shot_id: set(r.predictions) | {r.prediction_id} if r else set() for shot_id, r in records.items()}
    named = {prediction_id: shot_id for shot_id, ids in known.items() for prediction_id in ids if prediction_id}
    owners = prediction_owners(journal.storage, [p.prediction_id for p in faded if p.prediction_id not in named])
    untied, others = [], 0
    for prediction in faded:
        owner = owners.get(prediction.prediction_id)
        shot_id = named.get(prediction.prediction_id) or (owner.made_for if owner and owner.of(journal.layout) else None)
        if shot_id in known:
            by_shot.setdefault(shot_id, []).append(prediction)  # a record rebuilt without it: unrecorded
        elif owner:
            others += 1
        else:
            untied.append(prediction)
    rows = []
    for shot in shots:
        record = records[shot.shot_id]
        listed = by_shot.get(shot.shot_id, [])
        # Recovered is our ledger's word for what it learned from the list, not the provider's.
        provider = sum((replace(p.usage, predictions_recovered=0) for p in listed), Usage())
        ours = record.usage if record else Usage()
        # Ours may count predictions older than the window: only what the list has and we lack differs.
        unrecorded = [p.prediction_id for p in listed if p.prediction_id not in known[shot.shot_id]]
        if record and not record.predictions:  # kept before ids were: compare counts instead
            unrecorded = unrecorded[: max(0, provider.predictions_created - ours.predictions_created)]
        rows.append(ShotLedger(shot.shot_id, ours, provider, unrecorded, listed))
    return LedgerReport(actor_id, since, rows, reconciled, untied, others, model)


def _record(
    journal: ShotJournal, shot: PlannedShot, backend: ReplicateBackend, unrecorded: list[Recalled | Faded]
) -> None:
    record: ShotRecord | None = journal.load(shot, repair=True)
    if record is None:
        error = "not made here; Replicate lists predictions for it: rerun the actor to adopt or make it"
        record = ShotRecord.failed(shot, error, backend.name, backend.model)
    for prediction in unrecorded:
        record.predictions.append(prediction.prediction_id)
        record.usage += prediction.usage
        record.attempts += 1
    log.warning("%s: shot %s: %d prediction(s) from Replicate's list added to the ledger", journal.layout.actor_id, shot.shot_id, len(unrecorded))
    if record.attempt is None:
        journal.settle(record)
    else:
        journal.write(record)


def format_ledger(report: LedgerReport, reconcile_command: str) -> str:
    """The report as text; ``reconcile_command`` is the command that adds what differs (the CLI
    repeats the options it was given)."""
    ours, provider = report.ours, report.provider
    images = BillPart("images", ours.predictions_created, ours.cost_usd, provider.predictions_created, provider.cost_usd)
    lines = [f"actor {report.actor_id}: Replicate's lists since {report.listed_since:%Y-%m-%d %H:%M} UTC", images.line()]
    lines += [f"    {s.shot_id}: not in the ledger: {', '.join(s.unrecorded)}" for s in report.shots if s.differs]
    if report.untied:
        lines.append(
            f"    untied: {len(report.untied)} prediction(s) of {report.model} ({usd(report.untied_usage.cost_usd)}) listed without their inputs "
            "(Replicate removes them an hour after a prediction ends) and named by no actor's record here: made "
            "outside this storage with the same token, or this actor's, lost with its state folder"
        )
    lines += [part.line() for part in report.lora]
    if report.lora:
        ours_usd, provider_usd = report.total_usd
        lines.append(f"  in all: ledger {usd(ours_usd)}, Replicate {usd(provider_usd)}")
    if not report.differs:
        any_untied = report.untied or any(part.untied for part in report.lora)
        lines.append(f"the ledger holds everything Replicate {'can still tie to' if any_untied else 'lists for'} the actor")
    elif report.reconciled:
        lines.append("added to the ledger; the manifest was rewritten")
    else:
        lines.append(f"run `{reconcile_command}` to add them to the ledger")
    return "\n".join(lines)

"""``train``: an actor's LoRA trained from its bundle (or reused) and validated, in one Dagster run
of ``trained_lora`` and ``lora_validation``, as the CLI, ``generate --train`` and the Python API
ask for it."""

import warnings
from dataclasses import dataclass
from typing import Any

import dagster as dg

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.commands.instance import open_instance
from actor_pipeline.commands.materialize import QUIET_RUN_CONFIG, ensure_actor_partition
from actor_pipeline.defs.assets import ALL_ASSETS, lora_validation, trained_lora
from actor_pipeline.defs.liveness import process_tags
from actor_pipeline.defs.runs import actor_tags
from actor_pipeline.defs.settings import PipelineSettings
from actor_pipeline.identifiers import validate_id
from actor_pipeline.training import Likeness, TrainingHistory, TrainingJournal, TrainingRecord, load_likeness


@dataclass(frozen=True)
class TrainingResult:
    actor_id: str
    record: TrainingRecord
    reused: bool
    likeness: Likeness | None
    trainings_cost_usd: float  # every training of the actor, failed ones included
    manifest_url: str | None
    # What this run added to the ledger: trainings and validation images (one an earlier run
    # paid and this one adopted included).
    cost_this_run_usd: float

    def as_dict(self) -> dict[str, Any]:
        """The trained LoRA (``model_version``, ``weights_url``, ``trigger``), what its training
        cost (``cost_usd``: 0 when ``reused``), what this ask added to the ledger, validation
        images included (``cost_this_run_usd``), and the likeness, as the manifest's ``lora``
        section has them."""
        r = self.record
        return {
            "actor_id": self.actor_id,
            "status": r.status.value,
            "trainer": r.trainer,
            "trainer_version": r.trainer_version,
            "training_id": r.training_id,
            "model_version": r.model_version,
            "weights_url": r.weights_url,
            "trigger": r.trigger,
            "reused": self.reused,
            "cost_usd": 0.0 if self.reused else r.cost_usd,
            "duration_s": r.duration_s,
            "trainings_cost_usd": self.trainings_cost_usd,
            "cost_this_run_usd": self.cost_this_run_usd,
            "likeness": self.likeness.model_dump(exclude={"images"}) if self.likeness else None,
            "manifest_url": self.manifest_url,
        }


def train(
    actor_id: str,
    settings: PipelineSettings,
    *,
    retrain: bool = False,
    validate: bool = True,
    instance: dg.DagsterInstance | None = None,
) -> TrainingResult:
    """Train (or reuse) the actor's LoRA and measure its likeness, in one run. Raises what the
    assets raise: ``InputError`` before paying for a refused bundle, token or destination,
    ``TrainingFailed``, ``ActorBusy``, ``Interrupted``."""
    validate_id(actor_id, "actor id")
    resources = settings.resources()
    actor = ActorContext.load(settings.storage.create_storage(), actor_id)
    storage, layout = actor.storage, actor.layout
    instance = instance or open_instance(settings.resolved_instance_dir)
    ensure_actor_partition(instance, actor_id)
    before = _spent(TrainingJournal(storage, layout).history())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=dg.BetaWarning)
        result = dg.materialize(
            ALL_ASSETS,
            selection=[trained_lora, *([lora_validation] if validate else [])],
            partition_key=actor_id,
            instance=instance,
            resources=resources,
            run_config={**QUIET_RUN_CONFIG, "ops": {trained_lora.op.name: {"config": {"retrain": retrain}}}},
            tags={**actor_tags(actor_id), **process_tags()},
        )
    trained = next(e for e in result.get_asset_materialization_events() if e.asset_key == trained_lora.key)
    history = TrainingJournal(storage, layout).history()
    record = history.latest_success()
    assert record is not None  # trained_lora materialized
    likeness = load_likeness(actor)
    return TrainingResult(
        actor_id=actor_id,
        record=record,
        reused=bool(trained.materialization.metadata["reused"].value),
        likeness=likeness if likeness and likeness.training_id == record.training_id else None,
        trainings_cost_usd=history.cost_usd,
        manifest_url=storage.url(layout.manifest) if storage.head(layout.manifest) else None,
        cost_this_run_usd=round(_spent(history) - before, 6),
    )


def _spent(history: TrainingHistory) -> float:
    return history.cost_usd + history.validation_cost_usd

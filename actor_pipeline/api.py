"""The seed's Python API, now backed by the Dagster graph."""

from typing import Any


class ActorTrainingDataGenerator:
    """Generate an actor's training set in-process.

    ``replicate_token`` selects the Replicate backend (otherwise ``REPLICATE_API_TOKEN`` decides,
    and with neither the offline preview renderer is used). ``batch_size`` bounds how many shots
    are in flight at once. ``output_dir`` is the local storage folder used when no S3 bucket is
    configured. What a set may spend: ``regen_budget_pct`` (quality regenerations, in % of its
    shots; 25), ``systemic_pct`` (a check failing on this % of the shots is not regenerated for;
    50), ``max_cost_usd`` (per call; no cap) and ``min_images`` (the fewest usable images; 10).
    Bad input raises ``actor_pipeline.InputError`` (a ``ValueError``).
    """

    def __init__(
        self,
        replicate_token: str | None = None,
        debug_dir: str | None = None,
        batch_size: int = 5,
        *,
        output_dir: str | None = None,
        backend: str = "auto",
        regen_budget_pct: float | None = None,
        systemic_pct: float | None = None,
        max_cost_usd: float | None = None,
        min_images: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        from actor_pipeline.defs.settings import PipelineSettings  # Dagster loads lazily

        self._settings = PipelineSettings.configure(
            generator={
                "backend": backend,
                "max_concurrency": batch_size,
                "replicate_api_token": replicate_token,
                "regen_budget_pct": regen_budget_pct,
                "systemic_pct": systemic_pct,
                "max_cost_usd": max_cost_usd,
            },
            storage={"local_dir": output_dir},
            debug={"directory": debug_dir},
            bundle={"min_images": min_images},
        )

    def generate_training_data(
        self,
        portrait_url: str,
        user_id: str,
        actor_id: str,
        actor_type: str = "human",
        actor_sex: str | None = None,
        portrait_buffer: bytes | None = None,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Returns the seed's ``training_image_urls``, ``total_training_images`` and
        ``target_training_images``, plus ``manifest_url``, ``grid_url``, ``bundle_url``, ``failed``
        and what is usable: ``qc_passed``, ``qc_failed``, ``bundle_images``, ``bundle_minimum``,
        ``cost_usd`` (the set's), ``cost_this_run_usd`` (what this call added to the ledger),
        ``cost_per_usable_image_usd`` and ``systemic``. With ``dry_run``, creates
        nothing and returns what the call would create and pay at most (``first_pass``,
        ``reused``, ``regenerations``, ``predictions_at_most``, ``cost_at_most_usd``...), as the
        CLI's ``generate --dry-run`` prints it."""
        from actor_pipeline.commands.generate import GenerationRequest, estimate, generate
        from actor_pipeline.registry import NewActor

        new = NewActor(
            actor_id=actor_id, portrait=portrait_url or "", user_id=user_id, actor_type=actor_type, actor_sex=actor_sex
        )
        request = GenerationRequest(new, portrait_buffer=portrait_buffer)
        if dry_run:
            return estimate(request, self._settings).as_dict()
        return generate(request, self._settings).as_dict()


class TrainingClient:
    """Train an actor's LoRA in-process, as the original ``TrainingClient`` did, from the set this
    pipeline made for it (its LoRA bundle, uploaded once). ``replicate_token`` selects Replicate
    (otherwise ``REPLICATE_API_TOKEN`` decides; with neither, the preview's $0 stand-in, which
    learns nothing). ``output_dir`` is the local storage folder used when no S3 bucket is set.
    Bad input raises ``actor_pipeline.InputError``; a training that ends without a model raises
    ``actor_pipeline.errors.TrainingFailed`` (recorded with its cost: asking again trains anew).
    """

    def __init__(self, replicate_token: str | None = None, *, output_dir: str | None = None, backend: str = "auto") -> None:
        from actor_pipeline.defs.settings import PipelineSettings  # Dagster loads lazily

        self._settings = PipelineSettings.configure(
            generator={"backend": backend, "replicate_api_token": replicate_token}, storage={"local_dir": output_dir}
        )

    def train_actor(
        self,
        actor_id: str,
        training_image_urls: list[str] | None = None,
        *,
        retrain: bool = False,
        validate: bool = True,
    ) -> dict[str, Any]:
        """Train (or reuse: nothing is paid twice for the same bundle and config) the actor's LoRA
        and measure its likeness. ``training_image_urls``, if given, must be images of the actor's
        set (``generate_training_data``'s): the bundle of that set, with its captions, is what is
        trained on. Returns ``model_version``, ``weights_url``, ``trigger``, ``cost_usd``,
        ``reused``, ``likeness`` and the rest of the CLI's ``train`` result."""
        from actor_pipeline.actor_context import ActorContext
        from actor_pipeline.commands.train import train
        from actor_pipeline.errors import InputError
        from actor_pipeline.outputs.manifest import Manifest

        if training_image_urls:
            actor = ActorContext.load(self._settings.storage.create_storage(), actor_id)
            manifest = Manifest.model_validate_json(actor.storage.get(actor.layout.manifest))
            foreign = sorted(set(training_image_urls) - set(manifest.training_image_urls))
            if foreign:
                raise InputError(
                    f"{len(foreign)} of training_image_urls are not images of {actor_id!r}'s set (e.g. {foreign[0]}): "
                    "pass the URLs generate_training_data returned, or none"
                )
        return train(actor_id, self._settings, retrain=retrain, validate=validate).as_dict()

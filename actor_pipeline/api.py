"""The seed's Python API, now backed by the Dagster graph."""

from typing import Any


class ActorTrainingDataGenerator:
    """Generate an actor's training set in-process.

    ``replicate_token`` selects the Replicate backend (otherwise ``REPLICATE_API_TOKEN`` decides,
    and with neither the offline preview renderer is used). ``batch_size`` bounds how many shots
    are in flight at once. ``output_dir`` is the local storage folder used when no S3 bucket is
    configured. Bad input raises ``actor_pipeline.InputError`` (a ``ValueError``).
    """

    def __init__(
        self,
        replicate_token: str | None = None,
        debug_dir: str | None = None,
        batch_size: int = 5,
        *,
        output_dir: str | None = None,
        backend: str = "auto",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        from actor_pipeline.defs.resources import PipelineSettings  # Dagster loads lazily

        defaults = PipelineSettings.from_env()
        self._settings = PipelineSettings(
            backend=backend,
            output_dir=output_dir or defaults.output_dir,
            debug_dir=debug_dir or defaults.debug_dir,
            max_concurrency=batch_size,
            replicate_api_token=replicate_token,
        )

    def generate_training_data(
        self,
        portrait_url: str,
        user_id: str,
        actor_id: str,
        actor_type: str = "human",
        actor_sex: str | None = None,
        portrait_buffer: bytes | None = None,
    ) -> dict[str, Any]:
        """Returns the seed's ``training_image_urls``, ``total_training_images`` and
        ``target_training_images``, plus ``manifest_url``, ``grid_url``, ``bundle_url`` and ``failed``."""
        from actor_pipeline.local.generate import GenerationRequest, generate

        request = GenerationRequest(
            actor_id=actor_id,
            user_id=user_id,
            actor_type=actor_type,
            actor_sex=actor_sex,
            portrait_source=portrait_url or None,
            portrait_buffer=portrait_buffer,
        )
        return generate(request, self._settings).as_dict()

"""Dagster definitions: thin wrappers that wire ``actor_pipeline.stages`` into assets."""

"""In-process runs of the asset graph on the local Dagster instance: the engine behind the CLI
and the Python API. It sits above the Dagster definitions (``actor_pipeline.defs``) and below
the interfaces (``actor_pipeline.cli``, ``actor_pipeline.api``)."""

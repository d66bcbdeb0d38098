"""The production topology (Postgres, a broker, the code server, webserver, daemon and Celery
workers) on one machine: ``python -m actor_pipeline.cluster up`` (``make cluster``)."""

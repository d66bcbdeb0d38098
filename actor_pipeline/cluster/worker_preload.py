"""What a Celery worker loads before it forks its pool processes (its ``-i`` module): each pool
process would otherwise load it again in its first run, about 3 CPU-s each (the definitions, the
Postgres storage's modules, SciPy's FFT for the image hashes, dlib's face models)."""

import dagster_postgres  # noqa: F401  the instance's storages, which every run opens
import psycopg2  # noqa: F401
import scipy.fftpack  # noqa: F401  imagehash.phash imports it on first use
import sqlalchemy.dialects.postgresql.psycopg2  # noqa: F401

import actor_pipeline.definitions  # noqa: F401
from actor_pipeline.quality.faces import preload_face_analyzer

preload_face_analyzer()

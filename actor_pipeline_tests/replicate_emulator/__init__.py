"""A local stand-in for Replicate's HTTP API and output delivery, for tests and development.

``python -m actor_pipeline_tests.replicate_emulator --port N`` runs it standalone.
"""

from actor_pipeline_tests.replicate_emulator.account import FLAGGED_ERROR, Behaviour, Counters, Fault
from actor_pipeline_tests.replicate_emulator.emulator import ReplicateEmulator

__all__ = ["FLAGGED_ERROR", "Behaviour", "Counters", "Fault", "ReplicateEmulator"]

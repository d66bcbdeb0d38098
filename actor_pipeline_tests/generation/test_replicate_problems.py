"""Which failed predictions are the safety filter's (E005): every wording Replicate and BFL use."""

import pytest

from actor_pipeline.generation.replicate.problems import is_content_flagged
from actor_pipeline_tests.replicate_emulator import FLAGGED_ERROR


@pytest.mark.parametrize(
    "error",
    [
        FLAGGED_ERROR,
        "The input or output was flagged as potentially sensitive. Please try again with different inputs. (E005)",
        "The input or output was Flagged as Sensitive.",
        "flagged as sensitive (E005)",
        "ModelError: flagged as sensitive (E005) (uIJ6l3ruRD)",
        f"ModelError: {FLAGGED_ERROR}",
        f"{FLAGGED_ERROR} (uIJ6l3ruRD)",
        "Content Moderated",
        "Request Moderated",
        "content moderated",
        "REQUEST MODERATED",
        "Prediction failed: E005",
    ],
)
def test_safety_filter_wordings_are_recognised(error: str) -> None:
    assert is_content_flagged(error)


@pytest.mark.parametrize(
    "error",
    [
        None,
        "",
        "CUDA out of memory",
        "E0055 something else",
        "ModelError: Prediction failed: the model crashed",
        "Request was throttled. Your rate limit resets in ~30s.",
        "The content was not moderated",
        "flagged for review",
        "sensitive data redacted (E004)",
    ],
)
def test_other_errors_are_not_taken_for_the_safety_filter(error: str | None) -> None:
    assert not is_content_flagged(error)

"""Automatic per-image quality checks of one actor's training set (issue 12, item 1).

Plain Python, no Dagster: ``check_set`` (or a ``SetChecker``, which also reuses the kept analysis of
an unchanged image) runs every check on one actor's shots and returns a
``SetReport`` of ``CheckResult``s (check, outcome passed / failed / not_measured, measured values,
thresholds, a one-line reason, and whether a failure blocks, i.e. should trigger a regeneration).
The single checks are importable for other callers. Thresholds are a ``QualityThresholds``
model; how its defaults were calibrated is in ``CALIBRATION.md`` beside this file.

Checks: size and aspect as requested; not blank; edge sharpness; black-and-white shots
monochrome and the others in colour; near-duplicates within the set; and, with the optional
``faces`` extra and for human actors only, a face on photoreal shots and the identity distance to
the portrait.
"""

from actor_pipeline.quality.duplicates import check_near_duplicates, fingerprint
from actor_pipeline.quality.faces import FaceAnalyzer, FacesUnavailable, face_results, load_face_analyzer
from actor_pipeline.quality.image_checks import (
    ImageInput,
    UnreadableImage,
    check_blank,
    check_color,
    check_monochrome,
    check_sharpness,
    check_size,
    load_image,
)
from actor_pipeline.quality.model import (
    CheckName,
    CheckResult,
    DuplicatePair,
    Face,
    Fingerprint,
    ImageAnalysis,
    Outcome,
    SetReport,
    ShotReport,
)
from actor_pipeline.quality.set_checks import SetChecker, check_set, prepare_identity
from actor_pipeline.quality.settings import DEFAULT_THRESHOLDS, QualityThresholds

__all__ = [
    "DEFAULT_THRESHOLDS",
    "CheckName",
    "CheckResult",
    "DuplicatePair",
    "Face",
    "FaceAnalyzer",
    "FacesUnavailable",
    "Fingerprint",
    "ImageAnalysis",
    "ImageInput",
    "Outcome",
    "QualityThresholds",
    "SetChecker",
    "SetReport",
    "ShotReport",
    "UnreadableImage",
    "check_blank",
    "check_color",
    "check_monochrome",
    "check_near_duplicates",
    "check_set",
    "prepare_identity",
    "check_sharpness",
    "check_size",
    "face_results",
    "fingerprint",
    "load_face_analyzer",
    "load_image",
]

"""Face and identity checks: measured with the faces extra, "not measured" without it."""

import dataclasses
import hashlib
import sys

import pytest
from PIL import Image

from actor_pipeline.catalog.model import Category
from actor_pipeline.quality import (
    DEFAULT_THRESHOLDS,
    CheckName,
    CheckResult,
    Face,
    FaceAnalyzer,
    FacesUnavailable,
    ImageAnalysis,
    Outcome,
    QualityThresholds,
    SetChecker,
    check_set,
    face_results,
    load_face_analyzer,
    set_checks,
)
from actor_pipeline.quality.faces import load_face_models, upsample_levels
from actor_pipeline_tests.quality import crafted
from actor_pipeline_tests.quality.previews import Preview

SUBSET = ("eye_contact_closeup", "rooftop_silhouette", "pen_ink", "mono_vector")


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    try:
        return load_face_analyzer()
    except FacesUnavailable as exc:
        pytest.skip(f"faces extra not installed: {exc}")


@pytest.fixture(scope="module")
def portrait_face(analyzer: FaceAnalyzer, portrait: Image.Image) -> Face:
    face = analyzer.find_portrait_face(portrait)
    assert face is not None and face.vector.shape == (128,)
    return face


def shot_results(
    analyzer: FaceAnalyzer, preview: Preview, portrait: Face, thresholds: QualityThresholds = DEFAULT_THRESHOLDS
) -> tuple[CheckResult, CheckResult]:
    face = analyzer.find_face(preview.image, upsample_levels(preview.category))
    return face_results(face, portrait, preview.category, thresholds)


def test_photoreal_face_is_found_and_is_the_same_person(
    analyzer: FaceAnalyzer, portrait_face: Face, previews: dict[str, Preview]
) -> None:
    face, identity = shot_results(analyzer, previews["eye_contact_closeup"], portrait_face)
    assert face.outcome is Outcome.PASSED and face.measured["face_width"] > 200
    assert identity.outcome is Outcome.PASSED and identity.blocking
    assert identity.measured["distance"] < 0.4 and identity.threshold == {"max_distance": 0.6}


def test_photoreal_shot_without_a_face_fails_without_blocking(
    analyzer: FaceAnalyzer, portrait_face: Face, previews: dict[str, Preview]
) -> None:
    face, identity = shot_results(analyzer, previews["rooftop_silhouette"], portrait_face)
    assert face.outcome is Outcome.FAILED and not face.blocks
    assert identity.outcome is Outcome.NOT_MEASURED


def test_stylized_shot_without_a_face_is_not_measured(
    analyzer: FaceAnalyzer, portrait_face: Face, previews: dict[str, Preview]
) -> None:
    face, identity = shot_results(analyzer, previews["mono_vector"], portrait_face)
    assert (face.outcome, identity.outcome) == (Outcome.NOT_MEASURED, Outcome.NOT_MEASURED)


def test_identity_drift_blocks_on_photoreal_shots_only(
    analyzer: FaceAnalyzer, portrait_face: Face, previews: dict[str, Preview]
) -> None:
    strict = QualityThresholds(identity_max_distance_photoreal=0.05, identity_max_distance_stylized=0.05)
    _, photoreal = shot_results(analyzer, previews["eye_contact_closeup"], portrait_face, strict)
    _, stylized = shot_results(analyzer, previews["pen_ink"], portrait_face, strict)
    assert photoreal.outcome is Outcome.FAILED and photoreal.blocks
    assert stylized.outcome is Outcome.FAILED and not stylized.blocks


def test_check_set_measures_faces_of_a_human_actor(
    analyzer: FaceAnalyzer, previews: dict[str, Preview], portrait: Image.Image
) -> None:
    images = {shot: previews[shot].data for shot in SUBSET}
    categories = {shot: previews[shot].category for shot in SUBSET}
    report = check_set(images, crafted.jpeg(portrait), categories, "human")
    outcomes = {shot: (r.result(CheckName.FACE).outcome, r.result(CheckName.IDENTITY).outcome) for shot, r in report.shots.items()}  # type: ignore[union-attr]  # fmt: skip
    assert outcomes == {
        "eye_contact_closeup": (Outcome.PASSED, Outcome.PASSED),
        "rooftop_silhouette": (Outcome.FAILED, Outcome.NOT_MEASURED),
        "pen_ink": (Outcome.PASSED, Outcome.PASSED),
        "mono_vector": (Outcome.NOT_MEASURED, Outcome.NOT_MEASURED),
    }
    assert report.to_regenerate == ()


def test_kept_analyses_give_the_same_report_without_the_images(
    analyzer: FaceAnalyzer, previews: dict[str, Preview], portrait: Image.Image
) -> None:
    images = {shot: previews[shot].data for shot in SUBSET}
    checker = SetChecker(crafted.jpeg(portrait), {shot: previews[shot].category for shot in SUBSET}, "human")
    first = checker.check(images)
    # As the shot journal keeps them: through JSON.
    kept = {shot: ImageAnalysis.model_validate_json(analysis.model_dump_json()) for shot, analysis in first.analyses.items()}
    assert kept["eye_contact_closeup"].face is not None and kept["rooftop_silhouette"].face is None
    shas = {shot: hashlib.sha256(data).hexdigest() for shot, data in images.items()}
    assert all(checker.reusable(shot, shas[shot], kept[shot]) for shot in SUBSET)
    assert not dataclasses.replace(checker, identity=False).reusable("pen_ink", shas["pen_ink"], kept["pen_ink"])
    assert checker.check({**kept, "pen_ink": images["pen_ink"]}) == first


def test_portrait_without_a_face_leaves_identity_not_measured(
    analyzer: FaceAnalyzer, previews: dict[str, Preview]
) -> None:
    shot = "eye_contact_closeup"
    report = check_set({shot: previews[shot].data}, crafted.jpeg(crafted.flat()), {shot: Category.PHOTOREAL}, "human")
    identity = report.shots[shot].result(CheckName.IDENTITY)
    assert identity is not None and identity.outcome is Outcome.NOT_MEASURED
    assert identity.reason == "no face found on the portrait"


@pytest.mark.parametrize("actor_type", ["creature", "robotic", "anthropomorphic", "mythical"])
def test_faces_are_not_measured_for_non_human_actors(previews: dict[str, Preview], actor_type: str) -> None:
    shot = "eye_contact_closeup"
    report = check_set({shot: previews[shot].data}, previews[shot].data, {shot: Category.PHOTOREAL}, actor_type)
    for check in (CheckName.FACE, CheckName.IDENTITY):
        result = report.shots[shot].result(check)
        assert result is not None and result.outcome is Outcome.NOT_MEASURED
        assert "human faces only" in result.reason


@pytest.mark.parametrize("missing", ["dlib", "face_recognition_models"])
def test_without_the_extra_faces_are_not_measured(
    monkeypatch: pytest.MonkeyPatch, previews: dict[str, Preview], missing: str
) -> None:
    # A None entry in sys.modules makes the import (or find_spec) behave as if the package were
    # absent; the uncached loader is used so a loaded analyzer elsewhere in the session is kept.
    monkeypatch.setitem(sys.modules, missing, None)
    monkeypatch.setattr(set_checks, "load_face_analyzer", load_face_models)
    with pytest.raises(FacesUnavailable, match=f"{missing} is not installed"):
        load_face_models()
    shot = "eye_contact_closeup"
    report = check_set({shot: previews[shot].data}, previews[shot].data, {shot: Category.PHOTOREAL}, "human")
    for check in (CheckName.FACE, CheckName.IDENTITY):
        result = report.shots[shot].result(check)
        assert result is not None and result.outcome is Outcome.NOT_MEASURED
        assert "actor-pipeline[faces]" in result.reason
    assert report.shots[shot].passed

"""check_set on one actor's whole set: the preview set passes, forced faults are caught."""

import dataclasses
import hashlib

import pytest

from actor_pipeline.catalog.model import Category
from actor_pipeline.quality import (
    DEFAULT_THRESHOLDS,
    CheckName,
    Outcome,
    QualityThresholds,
    SetChecker,
    SetReport,
    check_set,
)
from actor_pipeline_tests.quality import crafted
from actor_pipeline_tests.quality.previews import Preview


def run(
    previews: dict[str, Preview],
    replace: dict[str, bytes] | None = None,
    thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
) -> SetReport:
    images = {shot: preview.data for shot, preview in previews.items()} | (replace or {})
    categories = {shot: preview.category for shot, preview in previews.items()}
    return check_set(images, None, categories, "human", thresholds, identity=False)


def subset(previews: dict[str, Preview], *shots: str) -> dict[str, Preview]:
    return {shot: previews[shot] for shot in shots}


@pytest.fixture(scope="module")
def preview_report(previews: dict[str, Preview]) -> SetReport:
    return run(previews)


def test_preview_set_passes_every_check(preview_report: SetReport, previews: dict[str, Preview]) -> None:
    assert list(preview_report.shots) == list(previews)  # catalog order kept
    assert preview_report.to_regenerate == () and preview_report.duplicate_pairs == ()
    for shot, report in preview_report.shots.items():
        tone = CheckName.MONOCHROME if report.category.value == "bw_stylized" else CheckName.COLOR
        checks = [result.check for result in report.results]
        expected = [CheckName.SIZE, CheckName.BLANK, CheckName.SHARPNESS, tone, CheckName.NEAR_DUPLICATE]
        assert checks == [*expected, CheckName.FACE, CheckName.IDENTITY], shot
        assert all(r.outcome is Outcome.PASSED for r in report.results[:5]), report.results
        assert all(r.outcome is Outcome.NOT_MEASURED for r in report.results[5:])
        assert report.result(CheckName.FACE).reason == "face checks turned off"  # type: ignore[union-attr]


def test_report_round_trips_through_json(preview_report: SetReport) -> None:
    dumped = preview_report.model_dump(mode="json")
    assert dumped["shots"]["pen_ink"]["passed"] is True
    assert dumped["shots"]["pen_ink"]["results"][0] == {
        "check": "size",
        "outcome": "passed",
        "measured": {"width": 1392, "height": 752, "aspect": 1.8511},
        "threshold": {"width": 1392, "height": 752, "aspect": 1.8511, "tolerance": 0.02},
        "reason": "1392x752 as requested",
        "blocking": True,
        "blocks": False,
    }
    assert SetReport.model_validate_json(preview_report.model_dump_json()) == preview_report


def test_a_kept_analysis_holds_for_the_same_bytes_category_thresholds_and_face_setting_only(
    previews: dict[str, Preview],
) -> None:
    data, sha = previews["pen_ink"].data, hashlib.sha256(previews["pen_ink"].data).hexdigest()
    checker = SetChecker(None, {"pen_ink": Category.BW_STYLIZED, "other": Category.PHOTOREAL}, "human", identity=False)
    kept = checker.check({"pen_ink": data}).analyses["pen_ink"]
    assert checker.reusable("pen_ink", sha, kept)
    assert not checker.reusable("pen_ink", hashlib.sha256(b"other bytes").hexdigest(), kept)
    assert not checker.reusable("other", sha, kept)  # another category: other checks
    assert not dataclasses.replace(checker, thresholds=QualityThresholds(min_sharpness=2)).reusable("pen_ink", sha, kept)
    assert dataclasses.replace(checker, identity=True, actor_type="robotic").reusable("pen_ink", sha, kept)  # no faces either
    # An image object's bytes are unknown: its analysis is never reused.
    assert checker.check({"pen_ink": previews["pen_ink"].image}).analyses["pen_ink"].key == ""


def test_forced_near_duplicate_and_colour_leak_are_caught(previews: dict[str, Preview]) -> None:
    leaked = crafted.jpeg(crafted.tinted(previews["woodcut"].image, (255, 0, 0), 0.2))
    shots = subset(previews, "pen_ink", "woodcut", "comic_book", "gouache")
    report = run(shots, {"gouache": previews["comic_book"].data, "woodcut": leaked})
    assert report.to_regenerate == ("woodcut", "gouache")
    assert [(pair.first, pair.second) for pair in report.duplicate_pairs] == [("comic_book", "gouache")]
    assert report.shots["gouache"].result(CheckName.NEAR_DUPLICATE).blocks  # type: ignore[union-attr]
    assert report.shots["comic_book"].passed
    assert report.shots["woodcut"].result(CheckName.MONOCHROME).blocks  # type: ignore[union-attr]


def test_unreadable_image_fails_size_and_is_not_measured_otherwise(previews: dict[str, Preview]) -> None:
    report = run(subset(previews, "pen_ink", "charcoal", "comic_book"), {"charcoal": b"<html>error</html>"})
    charcoal = report.shots["charcoal"]
    assert report.to_regenerate == ("charcoal",)
    size, *rest = charcoal.results
    assert size.check is CheckName.SIZE and size.blocks and size.reason.startswith("not a readable image")
    assert "0x" not in size.reason  # Pillow's message names the buffer's address: never shown
    assert [r.check for r in rest] == [
        CheckName.BLANK, CheckName.SHARPNESS, CheckName.MONOCHROME, CheckName.NEAR_DUPLICATE, CheckName.FACE, CheckName.IDENTITY,
    ]  # fmt: skip
    assert all(r.outcome is Outcome.NOT_MEASURED for r in rest)


def test_blocking_is_a_setting(previews: dict[str, Preview]) -> None:
    lenient = QualityThresholds(blocking=frozenset({CheckName.SIZE}))
    report = run(subset(previews, "pen_ink"), {"pen_ink": crafted.jpeg(crafted.flat())}, lenient)
    blank = report.shots["pen_ink"].result(CheckName.BLANK)
    assert blank is not None and blank.outcome is Outcome.FAILED and not blank.blocks
    assert report.shots["pen_ink"].passed


def test_every_shot_needs_a_category(previews: dict[str, Preview]) -> None:
    with pytest.raises(ValueError, match="no category given for shot"):
        check_set({"extra": previews["pen_ink"].data}, None, {}, "human")

"""Near-duplicates within a set: copies are caught, distinct shots are not."""

from collections.abc import Callable, Mapping

import pytest
from PIL import Image, ImageEnhance

from actor_pipeline.quality import CheckName, ImageInput, Outcome, check_near_duplicates, fingerprint
from actor_pipeline_tests.quality import crafted
from actor_pipeline_tests.quality.previews import Preview


def pairs_of(images: Mapping[str, ImageInput]) -> list[tuple[str, str]]:
    _, pairs = check_near_duplicates({shot: fingerprint(image) for shot, image in images.items()})
    return [(pair.first, pair.second) for pair in pairs]


@pytest.mark.parametrize("copy", [
    lambda image: crafted.decoded(crafted.jpeg(image, 50)),
    lambda image: crafted.brightened(image, 0.9),
    lambda image: ImageEnhance.Contrast(image).enhance(1.1),
    lambda image: image.resize((image.width // 2, image.height // 2)),
    lambda image: crafted.cropped(image, 0.01),
], ids=["re-encoded", "darker", "more contrast", "half size", "cropped 1%"])  # fmt: skip
def test_near_duplicate_copy_is_caught(
    previews: dict[str, Preview], copy: Callable[[Image.Image], Image.Image]
) -> None:
    original = previews["charcoal"].image
    assert pairs_of({"charcoal": original, "woodcut": copy(original)}) == [("charcoal", "woodcut")]


@pytest.mark.parametrize(("first", "second"), [
    ("pen_ink", "comic_book"),
    ("comic_book", "gouache"),  # the preview's closest structure and colours among distinct shots
    ("eye_contact_closeup", "window_light_closeup"),  # same framing, different light: not a duplicate
])  # fmt: skip
def test_distinct_shots_are_not_near_duplicates(previews: dict[str, Preview], first: str, second: str) -> None:
    assert pairs_of({first: previews[first].data, second: previews[second].data}) == []


def test_later_shot_of_a_pair_fails_and_the_earlier_one_is_kept(previews: dict[str, Preview]) -> None:
    images = {shot: fingerprint(previews[shot].data) for shot in ("pen_ink", "graphite_sketch", "charcoal")}
    images["charcoal"] = images["pen_ink"]
    results, pairs = check_near_duplicates(images)
    assert [(p.first, p.second, p.hash_distance, p.color_difference) for p in pairs] == [("pen_ink", "charcoal", 0, 0)]
    assert results["charcoal"].outcome is Outcome.FAILED and results["charcoal"].blocks
    assert results["charcoal"].reason == "near-duplicate of pen_ink"
    assert results["pen_ink"].outcome is Outcome.PASSED and "near-duplicated by charcoal" in results["pen_ink"].reason
    assert results["graphite_sketch"].outcome is Outcome.PASSED
    assert results["graphite_sketch"].measured["hash_distance"] > 8


def test_a_single_shot_has_nothing_to_duplicate(previews: dict[str, Preview]) -> None:
    results, pairs = check_near_duplicates({"pen_ink": fingerprint(previews["pen_ink"].data)})
    assert pairs == () and results["pen_ink"].check is CheckName.NEAR_DUPLICATE
    assert results["pen_ink"].outcome is Outcome.PASSED

"""The single-image checks on crafted images that must pass and must fail."""

import numpy as np
import pytest
from PIL import Image

from actor_pipeline.quality import (
    CheckName,
    Outcome,
    QualityThresholds,
    UnreadableImage,
    check_blank,
    check_color,
    check_monochrome,
    check_sharpness,
    check_size,
    load_image,
)
from actor_pipeline.quality.image_checks import _laplacian_and_gradient
from actor_pipeline_tests.quality import crafted
from actor_pipeline_tests.quality.previews import Preview


def encoded(image: Image.Image) -> Image.Image:
    return crafted.decoded(crafted.jpeg(image))


@pytest.mark.parametrize(("size", "outcome"), [
    ((1392, 752), Outcome.PASSED),
    ((1400, 756), Outcome.PASSED),  # within 2%
    ((1392, 784), Outcome.FAILED),  # exact 16:9 is not what flux-kontext-pro returns
    ((1024, 576), Outcome.FAILED),
    ((1024, 1024), Outcome.FAILED),
])  # fmt: skip
def test_size(size: tuple[int, int], outcome: Outcome) -> None:
    result = check_size(crafted.flat(size=size))
    assert result.outcome is outcome
    assert (result.measured["width"], result.measured["height"]) == size
    assert result.blocking


def test_size_follows_the_requested_size() -> None:
    square = QualityThresholds(expected_size=(1024, 1024))
    assert check_size(crafted.flat(size=(1024, 1024)), square).outcome is Outcome.PASSED
    result = check_size(crafted.flat(), square)
    assert result.outcome is Outcome.FAILED and "expected 1024x1024" in result.reason


def test_checks_take_jpeg_bytes_and_refuse_garbage(previews: dict[str, Preview]) -> None:
    assert check_size(previews["pen_ink"].data).outcome is Outcome.PASSED
    with pytest.raises(UnreadableImage):
        load_image(b"not an image")


@pytest.mark.parametrize("shot", ["rain_street_run", "rooftop_silhouette", "pen_ink", "flat_vector"])
def test_previews_are_not_blank(previews: dict[str, Preview], shot: str) -> None:
    assert check_blank(previews[shot].data).outcome is Outcome.PASSED


def test_sparse_line_drawing_is_not_blank() -> None:
    assert check_blank(encoded(crafted.line_drawing(width=1))).outcome is Outcome.PASSED


@pytest.mark.parametrize("image", [
    crafted.flat(),
    crafted.flat((255, 255, 255)),
    crafted.flat((200, 40, 90)),
    crafted.brightened(crafted.noise_photo(), 0.03),  # near-black
], ids=["grey", "white", "solid colour", "near-black"])  # fmt: skip
def test_flat_images_are_blank(image: Image.Image) -> None:
    result = check_blank(encoded(image))
    assert result.outcome is Outcome.FAILED and result.blocking
    assert result.reason.startswith("flat")


@pytest.mark.parametrize("width", [1, 2, 4])
def test_line_drawing_is_sharp_despite_its_flat_paper(width: int) -> None:
    result = check_sharpness(encoded(crafted.line_drawing(width)))
    assert result.outcome is Outcome.PASSED, result.reason
    assert result.measured["edge_tiles"] < 120  # of 420 tiles: the rest is paper


@pytest.mark.parametrize(
    "shot", ["eye_contact_closeup", "parking_garage_walk", "pen_ink", "mono_vector", "flat_vector"]
)
def test_preview_shots_are_sharp(previews: dict[str, Preview], shot: str) -> None:
    assert check_sharpness(previews[shot].data).outcome is Outcome.PASSED


@pytest.mark.parametrize("sigma", [2, 3])
def test_blurred_drawing_and_photos_are_not_sharp(previews: dict[str, Preview], sigma: float) -> None:
    for image in (crafted.line_drawing(2), crafted.noise_photo(), previews["eye_contact_closeup"].image):
        result = check_sharpness(encoded(crafted.blurred(image, sigma)))
        assert result.outcome is Outcome.FAILED and result.blocking, result.reason


def test_flat_image_has_no_edges() -> None:
    result = check_sharpness(encoded(crafted.flat()))
    assert result.outcome is Outcome.FAILED
    assert result.measured["sharpness"] == 0 and result.reason.startswith("no edges")


@pytest.mark.parametrize("shot", ["pen_ink", "graphite_sketch", "manga_screentone"])
def test_black_and_white_previews_are_monochrome(previews: dict[str, Preview], shot: str) -> None:
    assert check_monochrome(previews[shot].data).outcome is Outcome.PASSED


def test_cream_paper_is_still_black_and_white(previews: dict[str, Preview]) -> None:
    image = encoded(crafted.on_paper(previews["pen_ink"].image, (245, 238, 220)))
    assert check_monochrome(image).outcome is Outcome.PASSED


@pytest.mark.parametrize("leak", ["red tint", "red patch"])
def test_colour_leaking_into_black_and_white_fails(previews: dict[str, Preview], leak: str) -> None:
    image = previews["graphite_sketch"].image
    leaked = crafted.tinted(image, (255, 0, 0), 0.2) if leak == "red tint" else crafted.with_patch(image, 0.01)
    result = check_monochrome(encoded(leaked))
    assert result.check is CheckName.MONOCHROME
    assert result.outcome is Outcome.FAILED and result.blocking
    assert result.reason.startswith("colour leak")


@pytest.mark.parametrize("shot", ["rooftop_silhouette", "watercolor", "flat_vector"])
def test_colour_previews_are_in_colour(previews: dict[str, Preview], shot: str) -> None:
    assert check_color(previews[shot].data).outcome is Outcome.PASSED


def test_greyscale_colour_shot_fails(previews: dict[str, Preview]) -> None:
    result = check_color(encoded(previews["watercolor"].image.convert("L")))
    assert result.outcome is Outcome.FAILED and result.blocking
    assert result.measured["colored_fraction"] == 0


@pytest.mark.parametrize("image", [
    crafted.noise_photo(1),
    crafted.line_drawing(1),
    Image.new("L", (97, 61), 255).point(lambda v: 0 if v else 255),  # flat black
    Image.frombytes("L", (64, 64), bytes((0, 255) * (64 * 32))),  # the largest steps there are
], ids=["photo", "ink", "flat", "checkerboard"])  # fmt: skip
def test_sharpness_filters_equal_the_plain_float32_formulas_bit_for_bit(image: Image.Image) -> None:
    """The in-place integer-exact filters of check_sharpness may not move a measured value."""
    luma = np.asarray(image.convert("L"), dtype=np.float32)
    centre = luma[1:-1, 1:-1]
    laplacian = luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:] - 4 * centre
    grad_x = (luma[1:-1, 2:] - luma[1:-1, :-2]) / 2
    grad_y = (luma[2:, 1:-1] - luma[:-2, 1:-1]) / 2
    got = _laplacian_and_gradient(np.asarray(image.convert("L")))
    for have, want in zip(got, (laplacian, grad_x * grad_x + grad_y * grad_y), strict=True):
        assert have.dtype == want.dtype == np.float32 and np.array_equal(have, want)

"""Tests for the offline preview renderer: shape, determinism and that each look looks its part."""

import itertools

import pytest
from PIL import Image, ImageChops, ImageStat

from actor_pipeline.errors import CatalogError
from actor_pipeline.render.preview import FRAMINGS, LIGHTS, OUTPUT_SIZE, STYLES, PreviewLook, render_preview
from actor_pipeline.samples import SAMPLE_PORTRAIT

# The looks the default catalog uses.
CATALOG_LOOKS = (
    PreviewLook("photo", "wide", "night_blue"),
    PreviewLook("photo", "close_up", "daylight"),
    PreviewLook("photo", "close_up", "warm_window"),
    PreviewLook("photo", "medium", "fluorescent"),
    PreviewLook("photo", "wide", "sodium"),
    PreviewLook("photo", "silhouette", "dusk"),
    PreviewLook("photo", "medium", "neon"),
    *(PreviewLook(style) for style in STYLES if style != "photo"),
)
MONOCHROME = ("pen_ink", "graphite", "charcoal", "woodcut", "mono_vector", "manga")
COLOUR = ("comic", "flat_vector", "watercolor", "gouache")
SMALL = (348, 188)


@pytest.fixture(scope="module")
def portrait() -> Image.Image:
    with Image.open(SAMPLE_PORTRAIT) as image:
        return image.convert("RGB")


@pytest.fixture(scope="module")
def renders(portrait: Image.Image) -> dict[PreviewLook, Image.Image]:
    """Every catalog look, full size, seed 1: rendered once for the whole module."""
    return {look: render_preview(portrait, look, seed=1) for look in CATALOG_LOOKS}


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def mean_rgb(image: Image.Image) -> tuple[float, float, float]:
    r, g, b = ImageStat.Stat(image).mean
    return r, g, b


def dot_count(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    """Number of small isolated ink blobs (2-40 px, 4-connected) in ``box``: a halftone's dots.

    Ink is whatever is darker than the box's mean, so it works for coloured dots too.
    """
    grey = image.convert("L").crop(box)
    width, pixels = grey.width, grey.tobytes()
    threshold = sum(pixels) / len(pixels)
    unvisited = {i for i, v in enumerate(pixels) if v < threshold}
    dots = 0
    while unvisited:
        stack, size = [unvisited.pop()], 0
        while stack:
            i = stack.pop()
            size += 1
            x = i % width
            for j in (i - width, i + width, i - 1 if x else -1, i + 1 if x < width - 1 else -1):
                if j in unvisited:
                    unvisited.remove(j)
                    stack.append(j)
        dots += 2 <= size <= 40
    return dots


def test_sample_portrait_is_shipped() -> None:
    with Image.open(SAMPLE_PORTRAIT) as image:
        assert (image.format, image.size) == ("JPEG", (768, 1024))
    assert SAMPLE_PORTRAIT.stat().st_size < 200_000


@pytest.mark.parametrize("look", CATALOG_LOOKS, ids=repr)
def test_every_catalog_look_is_an_rgb_image_of_the_model_size(
    renders: dict[PreviewLook, Image.Image], look: PreviewLook
) -> None:
    assert (renders[look].mode, renders[look].size) == ("RGB", OUTPUT_SIZE)


@pytest.mark.parametrize(
    "look", [PreviewLook(style) for style in STYLES] + [PreviewLook("photo", f, "dusk") for f in FRAMINGS], ids=repr
)
@pytest.mark.parametrize(("portrait_size", "mode"), [((768, 1024), "RGB"), ((1024, 576), "L"), ((61, 77), "RGBA")])
def test_any_portrait_renders_at_any_size(look: PreviewLook, portrait_size: tuple[int, int], mode: str) -> None:
    portrait = Image.linear_gradient("L").resize(portrait_size).convert(mode)
    for size in (SMALL, (333, 201)):
        image = render_preview(portrait, look, seed=3, size=size)
        assert (image.mode, image.size) == ("RGB", size)


@pytest.mark.parametrize("look", CATALOG_LOOKS, ids=repr)
def test_same_inputs_give_identical_pixels_and_the_seed_changes_them(portrait: Image.Image, look: PreviewLook) -> None:
    first = render_preview(portrait, look, seed=7, size=SMALL)
    assert render_preview(portrait, look, seed=7, size=SMALL).tobytes() == first.tobytes()
    assert render_preview(portrait, look, seed=8, size=SMALL).tobytes() != first.tobytes()


def test_every_pair_of_catalog_looks_is_clearly_different(renders: dict[PreviewLook, Image.Image]) -> None:
    too_close = [
        (a, b, round(diff, 1))
        for a, b in itertools.combinations(CATALOG_LOOKS, 2)
        if (diff := mean_abs_diff(renders[a], renders[b])) < 15
    ]
    assert not too_close


@pytest.mark.parametrize("style", MONOCHROME)
def test_black_and_white_styles_are_truly_grey(renders: dict[PreviewLook, Image.Image], style: str) -> None:
    r, g, b = renders[PreviewLook(style)].split()
    assert ImageChops.difference(r, g).getbbox() is None
    assert ImageChops.difference(g, b).getbbox() is None


@pytest.mark.parametrize(("style", "most_levels"), [("woodcut", 2), ("mono_vector", 3)])
def test_hard_edged_styles_use_only_a_few_grey_levels(
    renders: dict[PreviewLook, Image.Image], style: str, most_levels: int
) -> None:
    levels = renders[PreviewLook(style)].getchannel("R").getcolors()
    assert levels is not None and len(levels) <= most_levels


def test_pen_ink_is_ink_on_paper_without_grey_gradients(renders: dict[PreviewLook, Image.Image]) -> None:
    assert len(renders[PreviewLook("pen_ink")].getchannel("R").getcolors() or []) == 2


def test_charcoal_is_darker_than_pencil(renders: dict[PreviewLook, Image.Image]) -> None:
    luma = {
        style: ImageStat.Stat(renders[PreviewLook(style)].convert("L")).mean[0] for style in ("graphite", "charcoal")
    }
    assert luma["charcoal"] < luma["graphite"] - 30


@pytest.mark.parametrize("style", ["manga", "comic"])
def test_halftone_styles_render_mid_tones_as_dots(
    portrait: Image.Image, renders: dict[PreviewLook, Image.Image], style: str
) -> None:
    # The sample's backdrop is a mid tone; a flat grey portrait is nothing but mid tone.
    assert dot_count(renders[PreviewLook(style)], (40, 40, 240, 240)) > 300
    flat_grey = render_preview(Image.new("RGB", (768, 1024), (128, 128, 128)), PreviewLook(style), seed=1)
    assert dot_count(flat_grey, (500, 200, 700, 400)) > 300


@pytest.mark.parametrize("style", ["pen_ink", "woodcut"])
def test_line_styles_have_no_dots(renders: dict[PreviewLook, Image.Image], style: str) -> None:
    # Guards the dot counter itself: hatching and grooves are lines, not dots.
    assert dot_count(renders[PreviewLook(style)], (40, 40, 240, 240)) < 30


@pytest.mark.parametrize("style", COLOUR)
def test_colour_styles_are_colourful(renders: dict[PreviewLook, Image.Image], style: str) -> None:
    assert ImageStat.Stat(renders[PreviewLook(style)].convert("HSV")).mean[1] > 40


def test_flat_vector_uses_a_small_palette(renders: dict[PreviewLook, Image.Image]) -> None:
    image = renders[PreviewLook("flat_vector")]
    colours = image.getcolors(maxcolors=10_000) or []
    # Ignore the few pixels of the PREVIEW mark.
    assert len([count for count, _ in colours if count > image.width * image.height // 1000]) <= 8


def test_lights_shift_the_colour_the_right_way(portrait: Image.Image) -> None:
    mean = {
        light: mean_rgb(render_preview(portrait, PreviewLook("photo", "medium", light), 1, SMALL)) for light in LIGHTS
    }
    r, g, b = mean["daylight"]

    def blueness(light: str) -> float:
        return mean[light][2] - mean[light][0]

    assert max(LIGHTS, key=blueness) == "night_blue"
    for warm in ("warm_window", "sodium"):
        assert mean[warm][0] - mean[warm][2] > (r - b) + 40
    fr, fg, fb = mean["fluorescent"]
    assert fg - (fr + fb) / 2 > g - (r + b) / 2 + 15
    nr, ng, nb = mean["neon"]
    assert (nr + nb) / 2 - ng > (r + b) / 2 - g + 20
    dr, dg, db = mean["dusk"]
    assert dr - dg > r - g + 30 and db > dg
    for dark in ("night_blue", "neon"):
        assert sum(mean[dark]) < sum(mean["daylight"]) / 2


def test_tighter_framings_make_the_figure_fill_more_of_the_frame(portrait: Image.Image) -> None:
    # Paint a block over the face: the pixels that change show where (and how big) the face is.
    marked = portrait.copy()
    marked.paste((0, 255, 0), (300, 300, 470, 560))

    def face_share(framing: str) -> float:
        look = PreviewLook("photo", framing, "daylight")
        changed = ImageChops.difference(
            render_preview(portrait, look, 1, SMALL), render_preview(marked, look, 1, SMALL)
        )
        histogram = changed.convert("L").histogram()
        return sum(histogram[30:]) / (SMALL[0] * SMALL[1])

    close_up, medium, wide = face_share("close_up"), face_share("medium"), face_share("wide")
    assert close_up > 0.1 and wide < 0.03
    assert close_up > 2 * medium > 4 * wide


@pytest.mark.parametrize(
    ("fields", "named", "valid"),
    [
        ({"style": "oil"}, "'oil'", STYLES),
        ({"framing": "extreme_close_up"}, "'extreme_close_up'", FRAMINGS),
        ({"light": "candle"}, "'candle'", LIGHTS),
    ],
)
def test_an_unknown_look_value_is_a_catalog_error_listing_the_valid_ones(
    fields: dict[str, str], named: str, valid: tuple[str, ...]
) -> None:
    with pytest.raises(CatalogError) as error:
        PreviewLook(**fields)
    assert named in str(error.value)
    assert all(name in str(error.value) for name in valid)

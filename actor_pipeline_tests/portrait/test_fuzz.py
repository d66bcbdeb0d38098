"""Property: whatever bytes come in, normalize_portrait returns a JPEG or raises PortraitError."""

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image

from actor_pipeline.errors import PortraitError
from actor_pipeline.portrait.limits import PortraitLimits
from actor_pipeline.portrait.normalize import normalize_portrait
from actor_pipeline_tests.support.images import encode, quadrants

# Small limits so that mutated files get past the size checks into the decoders, quickly.
LIMITS = PortraitLimits(max_pixels=100_000, max_side=24, min_short_side=16)
# Pillow warns about the corrupt EXIF and oversized headers that fuzzing produces, as it should.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::PIL.Image.DecompressionBombWarning")
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _seeds() -> list[bytes]:
    """One small valid file per format and per tricky mode."""
    picture = quadrants(40, 32)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    alpha = picture.convert("RGBA")
    alpha.putalpha(128)
    return [
        encode(picture, "JPEG", exif=exif),
        encode(picture, "JPEG", progressive=True),
        encode(picture.convert("CMYK"), "JPEG"),
        encode(alpha, "PNG"),
        encode(picture.convert("P"), "PNG", transparency=0),
        encode(picture.convert("L").convert("I;16"), "PNG"),
        encode(picture, "GIF", save_all=True, append_images=[picture.rotate(90)]),
        encode(alpha, "WEBP", lossless=True),
        encode(picture, "WEBP", quality=80, exif=exif),
        encode(picture, "BMP"),
        encode(picture, "TIFF", compression="tiff_lzw"),
        encode(picture.convert("L").convert("I;16B"), "TIFF"),
    ]


SEEDS = _seeds()


@st.composite
def mutated_files(draw: st.DrawFn) -> bytes:
    """A seed with a few bytes overwritten, half of them in the header (after the signature, so
    the format's decoder gets to parse them), and in half the cases cut short."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    header, anywhere = st.integers(8, 64), st.integers(0, len(data) - 1)
    for position, value in draw(st.lists(st.tuples(st.one_of(header, anywhere), st.integers(0, 255)), max_size=8)):
        data[position] = value
    return bytes(data[: draw(st.one_of(st.just(len(data)), st.integers(1, len(data))))])


def assert_only_portrait_error(data: bytes) -> None:
    try:
        portrait = normalize_portrait(data, LIMITS)
    except PortraitError as error:
        assert str(error).startswith("portrait ")
        return
    image = Image.open(io.BytesIO(portrait.jpeg))
    assert image.format == "JPEG" and image.mode == "RGB" and max(image.size) <= LIMITS.max_side


def test_the_seeds_are_valid() -> None:
    for seed in SEEDS:
        normalize_portrait(seed, LIMITS)


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    assert_only_portrait_error(data)


@FUZZ
@given(st.sampled_from([seed[:16] for seed in SEEDS]), st.binary(max_size=1024))
def test_valid_signature_then_random_bytes(signature: bytes, rest: bytes) -> None:
    assert_only_portrait_error(signature + rest)


@FUZZ
@given(mutated_files())
def test_mutated_files(data: bytes) -> None:
    assert_only_portrait_error(data)

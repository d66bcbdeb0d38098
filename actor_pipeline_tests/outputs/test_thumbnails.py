"""Thumbnails for Dagster metadata, without Dagster: bounded bytes, decodable, aspect kept."""

import base64
import io
import os

import pytest
from PIL import Image

from actor_pipeline.outputs.thumbnails import (
    GRID_BOX,
    GRID_MAX_BYTES,
    IMAGE_BOX,
    INLINE_MARKDOWN_CHARS,
    inline_markdown,
    sheet_markdown,
    thumbnail,
)
from actor_pipeline_tests.support.images import encode, jpeg


def noise(size: tuple[int, int], fmt: str = "JPEG", mode: str = "RGB") -> bytes:
    """The worst case for a compressor: every pixel random."""
    return encode(Image.frombytes(mode, size, os.urandom(size[0] * size[1] * len(mode))), fmt)


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def from_markdown(markdown: str) -> Image.Image:
    prefix = "data:image/webp;base64,"
    assert markdown.startswith("![") and markdown.endswith(")") and prefix in markdown
    return decoded(base64.b64decode(markdown.split(prefix, 1)[1][:-1], validate=True))


@pytest.mark.parametrize(
    ("source", "expected"),
    [((1392, 752), (128, 69)), ((768, 1024), (96, 128)), ((2360, 874), (128, 48))],
)
def test_a_thumbnail_fits_its_box_keeps_the_aspect_and_decodes(
    source: tuple[int, int], expected: tuple[int, int]
) -> None:
    small = thumbnail(jpeg(source), IMAGE_BOX, 2_000)
    image = decoded(small)
    assert image.format == "WEBP" and image.size == expected and len(small) <= 2_000


def test_a_detailed_image_is_shrunk_until_it_fits_the_budget() -> None:
    small = thumbnail(noise((128, 69)), IMAGE_BOX, 700)  # noise at the box's size: nothing averages out
    image = decoded(small)
    assert len(small) <= 700
    assert image.width < 128 and abs(image.width / image.height - 128 / 69) < 0.1


def test_a_small_image_is_not_enlarged_and_transparency_is_dropped() -> None:
    image = decoded(thumbnail(noise((40, 30), "PNG", "RGBA"), IMAGE_BOX, 10_000))
    assert image.size == (40, 30) and image.mode == "RGB"


def test_inline_markdown_stays_short_enough_for_the_ui_to_show_it() -> None:
    markdown = inline_markdown(noise((128, 69)), "07 [charcoal] shot")
    assert len(markdown) < INLINE_MARKDOWN_CHARS
    assert markdown.startswith("![07 (charcoal) shot](")  # brackets would end the alt text
    assert from_markdown(markdown).width > 32  # still a picture, not a speck


def test_a_plain_image_keeps_the_full_box_inline() -> None:
    assert from_markdown(inline_markdown(jpeg((1392, 752)), "01")).size == (128, 69)


def test_the_contact_sheet_is_larger_and_bounded() -> None:
    markdown = sheet_markdown(noise((2360, 874)), "alice (contact sheet)")
    image = from_markdown(markdown)
    assert image.width <= GRID_BOX[0] and len(markdown) <= GRID_MAX_BYTES * 4 // 3 + 100
    assert from_markdown(sheet_markdown(jpeg((2360, 874)), "alice")).size == (480, 178)


def test_not_an_image_raises_an_os_error() -> None:
    with pytest.raises(OSError):
        thumbnail(b"not an image", IMAGE_BOX, 1_000)

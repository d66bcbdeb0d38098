"""Test pictures as bytes: any PIL image encoded (``encode``), a flat JPEG (``jpeg``), and a
four-colour picture whose orientation is visible (``quadrants``)."""

import io

from PIL import Image

QUADRANT_COLOURS = ((220, 30, 30), (30, 200, 30), (30, 30, 220), (240, 240, 240))
"""Top-left, top-right, bottom-left, bottom-right of ``quadrants``: orientation is visible."""


def encode(image: Image.Image, image_format: str, **params: object) -> bytes:
    """``image`` saved in ``image_format`` with PIL's save ``params``."""
    buffer = io.BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


def jpeg(size: tuple[int, int] = (640, 800), color: tuple[int, int, int] = (150, 120, 100)) -> bytes:
    """A JPEG of one flat colour."""
    return encode(Image.new("RGB", size, color), "JPEG")


def quadrants(width: int = 300, height: int = 400) -> Image.Image:
    """A test picture with four coloured quadrants, so rotations and flips can be detected."""
    image = Image.new("RGB", (width, height))
    half_w, half_h = width // 2, height // 2
    boxes = (
        (0, 0, half_w, half_h),
        (half_w, 0, width, half_h),
        (0, half_h, half_w, height),
        (half_w, half_h, width, height),
    )
    for box, colour in zip(boxes, QUADRANT_COLOURS, strict=True):
        image.paste(colour, box)
    return image

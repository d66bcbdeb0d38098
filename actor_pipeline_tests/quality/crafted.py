"""Crafted images for the quality checks' tests and calibration (benchmarks/calibrate_quality.py)."""

import io
import math
from random import Random

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from actor_pipeline_tests.support.images import encode

SIZE = (1392, 752)


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    return encode(image.convert("RGB"), "JPEG", quality=quality)


def decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def line_drawing(width: int = 2, seed: int = 0, size: tuple[int, int] = SIZE) -> Image.Image:
    """Black ink lines on white paper, a head and shoulders with some hatching: more than 90% of
    the frame is flat paper, the case the sharpness check must not fail."""
    rng = Random(seed)
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    cx, cy = size[0] // 2, size[1] // 2 - 60
    draw.ellipse((cx - 120, cy - 170, cx + 120, cy + 150), outline=0, width=width)  # head
    for dx in (-50, 50):  # eyes
        draw.ellipse((cx + dx - 22, cy - 30, cx + dx + 22, cy - 10), outline=0, width=width)
    draw.line((cx, cy, cx - 12, cy + 50, cx + 8, cy + 55), fill=0, width=width)  # nose
    draw.arc((cx - 50, cy + 60, cx + 50, cy + 110), 20, 160, fill=0, width=width)  # mouth
    draw.line((cx - 60, cy + 140, cx - 260, cy + 260, cx - 320, size[1]), fill=0, width=width)  # shoulders
    draw.line((cx + 60, cy + 140, cx + 260, cy + 260, cx + 320, size[1]), fill=0, width=width)
    for _ in range(14):  # hatching on the shirt
        x, y = cx + rng.randint(-220, 180), cy + rng.randint(220, 300)
        draw.line((x, y, x + 40, y + 40), fill=0, width=max(1, width - 1))
    return image.convert("RGB")


def noise_photo(seed: int = 0, size: tuple[int, int] = SIZE) -> Image.Image:
    """A stand-in for a photo: soft gradients, sharp-edged shapes and fine grain."""
    rng = Random(seed)
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y, r = rng.randrange(size[0]), rng.randrange(size[1]), rng.randint(10, 120)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    grain = Image.effect_noise(size, 12).convert("RGB")
    return Image.blend(image, grain, 0.08)


def flat(colour: tuple[int, int, int] = (128, 128, 128), size: tuple[int, int] = SIZE) -> Image.Image:
    return Image.new("RGB", size, colour)


def blurred(image: Image.Image, sigma: float) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(sigma))


def tinted(image: Image.Image, colour: tuple[int, int, int], amount: float) -> Image.Image:
    """The image in grey, blended ``amount`` of the way towards ``colour``."""
    grey = image.convert("L").convert("RGB")
    return Image.blend(grey, Image.new("RGB", image.size, colour), amount)


def on_paper(image: Image.Image, paper: tuple[int, int, int]) -> Image.Image:
    """A black-and-white image printed on tinted paper: white becomes ``paper``, black stays."""
    grey = image.convert("L")
    return Image.merge("RGB", [grey.point(lambda v, c=c: v * c // 255) for c in paper])


def with_patch(image: Image.Image, fraction: float, colour: tuple[int, int, int] = (200, 30, 30)) -> Image.Image:
    """A centred square of ``colour`` covering ``fraction`` of the frame (a colour leak)."""
    side = int(math.sqrt(fraction * image.width * image.height))
    left, top = (image.width - side) // 2, (image.height - side) // 2
    patched = image.copy()
    patched.paste(colour, (left, top, left + side, top + side))
    return patched


def brightened(image: Image.Image, factor: float) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(factor)


def cropped(image: Image.Image, fraction: float) -> Image.Image:
    """The top-left ``fraction`` cut off each side, scaled back to the original size."""
    dx, dy = int(image.width * fraction), int(image.height * fraction)
    return image.crop((dx, dy, image.width, image.height)).resize(image.size, Image.Resampling.BICUBIC)

"""Tone helpers shared by the preview styles: lookup tables, cheap blurs, outlines, ink on paper."""

from functools import reduce

from PIL import Image, ImageChops, ImageFilter, ImageOps

# The two grey levels of the binary (ink on paper) styles.
INK, PAPER = 20, 250


def ramp(lo: int, hi: int) -> list[int]:
    """Lookup table: 0 up to ``lo``, 255 from ``hi``, linear in between."""
    return [max(0, min(255, (v - lo) * 255 // max(1, hi - lo))) for v in range(256)]


def levels(lo: int, hi: int, gamma: float = 1.0) -> list[int]:
    """Lookup table mapping 0-255 onto ``lo``-``hi`` (clipped to 0-255); ``gamma`` > 1 darkens mid tones."""
    return [max(0, min(255, round(lo + (hi - lo) * (v / 255) ** gamma))) for v in range(256)]


def tone_of(rgb: Image.Image) -> Image.Image:
    """Luminance (L) stretched to the full range, ignoring the 1% extremes."""
    return ImageOps.autocontrast(rgb.convert("L"), cutoff=1)


def soften(image: Image.Image, factor: int, radius: float) -> Image.Image:
    """A blur of ``radius`` px measured at 1/``factor`` scale: far cheaper than blurring full size."""
    small = image.reduce(factor).filter(ImageFilter.GaussianBlur(radius))
    return small.resize(image.size, Image.Resampling.BILINEAR)


def outlines(tone: Image.Image, threshold: int, width: float = 1.0) -> Image.Image:
    """Ink mask of dark edges: pixels darker than their surroundings by more than ``threshold``.

    A difference of Gaussians computed at half size, then upscaled and thresholded, which
    gives smooth lines about ``width`` x 2 px wide.
    """
    half = tone.reduce(2)
    fine = half.filter(ImageFilter.GaussianBlur(0.6 * width))
    wide = half.filter(ImageFilter.GaussianBlur(2.5 * width))
    darker_than_around = ImageChops.subtract(wide, fine)
    return darker_than_around.resize(tone.size, Image.Resampling.BILINEAR).point(ramp(threshold, threshold + 1))


def fade_to_paper(tone: Image.Image, matte: Image.Image, keep: float = 0.0) -> Image.Image:
    """``tone`` where the matte is set, fading to white paper elsewhere (keeping ``keep`` of it)."""
    paper = tone.point(levels(round(255 * (1 - keep)), 255)) if keep else Image.new("L", tone.size, 255)
    return Image.composite(tone, paper, matte)


def union(*masks: Image.Image) -> Image.Image:
    """Ink that is in any of the ink masks."""
    return reduce(ImageChops.lighter, masks)


def on_paper(ink: Image.Image) -> Image.Image:
    """An ink mask printed as ``INK`` on ``PAPER`` (L, exactly two levels)."""
    return ink.point(lambda v: INK if v > 127 else PAPER)

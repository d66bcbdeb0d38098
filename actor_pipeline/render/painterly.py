"""The colour preview styles. Each returns an RGB image."""

from random import Random

from PIL import Image, ImageChops, ImageEnhance, ImageFilter, ImageOps, ImageStat

from actor_pipeline.render.staging import Stage
from actor_pipeline.render.textures import dot_screen, noise, screen
from actor_pipeline.render.tone import levels, outlines, ramp, tone_of

_PAPER_WHITE = (252, 249, 242)


def _saturate(image: Image.Image, amount: float) -> Image.Image:
    return ImageEnhance.Color(image).enhance(amount)


def _flat_colours(small: Image.Image, colours: int, size: tuple[int, int]) -> Image.Image:
    """``small`` reduced to ``colours`` flat colours and scaled to ``size`` with clean edges.

    The palette is picked on the small image; mapping the smoothly upscaled image onto it
    (no dithering) gives crisp, curved region borders instead of blocky pixels.
    """
    palette = small.quantize(colours, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    smooth = small.resize(size, Image.Resampling.BILINEAR)
    return smooth.quantize(palette=palette, dither=Image.Dither.NONE).convert("RGB")


def _grain(rng: Random, size: tuple[int, int], cell: float, lo: int) -> Image.Image:
    """Seeded paper texture as an RGB multiplier between ``lo`` and 255."""
    return noise(rng, size, (cell, cell)).point(levels(lo, 255)).convert("RGB")


def comic(stage: Stage, rng: Random) -> Image.Image:
    """Comic book: posterized punchy colours, Ben-Day dots in the shadows, bold black outlines."""
    size = stage.rgb.size
    small = _saturate(stage.rgb.reduce(4).filter(ImageFilter.MedianFilter(3)), 1.8)
    flat = _flat_colours(small, 8, size)
    tone = tone_of(stage.rgb)
    # Only the darker half of the tones gets dots; the dot size follows the darkness.
    shadow_dots = screen(tone.point(levels(40, 330)), dot_screen(size, 5))
    shade = flat.point([v * k // 255 for k in (95, 70, 110) for v in range(256)])  # dark violet ink
    inked = Image.composite(shade, flat, shadow_dots)
    inked.paste((12, 10, 16), (0, 0), outlines(tone, 6, 1.5))
    return ImageChops.multiply(inked, _grain(rng, size, 2, 235))


def flat_vector(stage: Stage, rng: Random) -> Image.Image:
    """Flat vector illustration: the figure as a few clean colour shapes on a plain backdrop."""
    del rng  # flat fills have no texture; the stage's seeded layout still varies
    small = stage.rgb.reduce(4).filter(ImageFilter.MedianFilter(5)).filter(ImageFilter.GaussianBlur(1.5))
    # The backdrop becomes one flat colour: the average of the background, a little lighter.
    backdrop_colour = ImageStat.Stat(small, ImageOps.invert(stage.matte.reduce(4))).mean
    backdrop = Image.new("RGB", small.size, tuple(round(c + (255 - c) * 0.3) for c in backdrop_colour))
    small = Image.composite(small, backdrop, stage.matte.reduce(4).point(ramp(100, 160)))
    return _flat_colours(_saturate(small, 1.35), 8, stage.rgb.size)


def watercolor(stage: Stage, rng: Random) -> Image.Image:
    """Watercolour: transparent washes that bleed, pool at their edges and stop raggedly."""
    size = stage.rgb.size
    small = _saturate(stage.rgb.reduce(4), 1.9).filter(ImageFilter.GaussianBlur(1))
    washes = _flat_colours(small, 14, small.size).filter(ImageFilter.GaussianBlur(0.8))
    # Pigment pools where a wash dries: darken the borders between washes.
    rims = ImageChops.difference(washes, washes.filter(ImageFilter.GaussianBlur(1.5)))
    pooled = ImageChops.subtract(washes, rims.point(levels(0, 500) * 3))
    # Blooms (uneven pigment) inside; outside the figure the wash thins out to a ragged edge.
    load = noise(rng, small.size, (16, 16)).point(levels(200, 255))
    edge = ImageChops.subtract(stage.matte.reduce(4), noise(rng, small.size, (5, 5)).point(levels(0, 110)))
    coverage = ImageChops.multiply(ImageChops.lighter(edge.point(ramp(60, 120)), load.point(levels(0, 120))), load)
    paper = Image.new("RGB", small.size, _PAPER_WHITE)
    painted = Image.composite(pooled, paper, coverage.filter(ImageFilter.GaussianBlur(0.7)))
    painted = painted.resize(size, Image.Resampling.BICUBIC)
    sketch = outlines(tone_of(stage.rgb), 8, 0.6).point(levels(0, 50))  # faint pencil underdrawing
    painted = ImageChops.subtract(painted, sketch.convert("RGB"))
    return ImageChops.multiply(painted, _grain(rng, size, 3, 232))


def gouache(stage: Stage, rng: Random) -> Image.Image:
    """Gouache: opaque, saturated flat strokes in changing directions, with bristle texture."""
    size = stage.rgb.size
    small = _saturate(ImageEnhance.Contrast(stage.rgb.reduce(3)).enhance(1.15), 1.7)
    sw, sh = small.size
    # Each patch is smeared along one direction, as if laid in by a single brush stroke.
    across = small.resize((sw // 4, sh), Image.Resampling.BOX).resize(small.size, Image.Resampling.BILINEAR)
    down = small.resize((sw, sh // 4), Image.Resampling.BOX).resize(small.size, Image.Resampling.BILINEAR)
    patches = noise(rng, small.size, (10, 10)).point(lambda v: 255 if v > 128 else 0)
    brushed = Image.composite(across, down, patches).filter(ImageFilter.GaussianBlur(0.8))
    flat = _flat_colours(brushed, 16, size)
    big_patches = patches.resize(size, Image.Resampling.NEAREST)
    bristles = Image.composite(noise(rng, size, (30, 1.5)), noise(rng, size, (1.5, 30)), big_patches)
    return ImageChops.multiply(flat, bristles.point(levels(200, 255)).convert("RGB"))

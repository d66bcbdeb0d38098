"""The black-and-white preview styles. Each returns an L image, so the RGB result is grey."""

from itertools import accumulate
from random import Random

from PIL import Image, ImageChops, ImageFilter, ImageOps

from actor_pipeline.render.staging import Stage
from actor_pipeline.render.textures import dot_screen, line_screen, noise, screen
from actor_pipeline.render.tone import (
    fade_to_paper,
    levels,
    on_paper,
    outlines,
    ramp,
    soften,
    tone_of,
    union,
)


def _band(image: Image.Image, lo: int, hi: int = 256) -> Image.Image:
    """Mask (L) of the pixels with ``lo`` <= value < ``hi``."""
    return image.point(lambda v: 255 if lo <= v < hi else 0)


def _hatch(size: tuple[int, int], period: int, angle: int, wobble: Image.Image, width: float) -> Image.Image:
    """Ink mask of parallel lines ``width`` px thick, bent a little by ``wobble`` like a hand."""
    return _band(line_screen(size, period, angle, wobble), 255 - round(255 * width / period))


def _jitter(tone: Image.Image, rng: Random, cell: float, amount: int) -> Image.Image:
    """``tone`` plus up to +-``amount`` of seeded noise, so thresholds cut it along ragged borders."""
    grain = noise(rng, tone.size, (cell, cell)).point(levels(128 - amount, 128 + amount))
    return ImageChops.add(tone, grain, scale=1.0, offset=-128)


def pen_ink(stage: Stage, rng: Random) -> Image.Image:
    """Pen and ink: contour lines, then hatching layered in more directions as the tone darkens."""
    size = stage.rgb.size
    tone = fade_to_paper(soften(tone_of(stage.rgb), 2, 1), stage.matte)
    # Ragged zone borders and slightly bent lines keep the hatching from looking ruled.
    ragged = _jitter(tone, rng, 5, 30)
    wobble = noise(rng, size, (size[0] / 12, size[1] / 12)).point(levels(0, 90))
    layers = [
        ImageChops.darker(_band(ragged, 0, threshold), _hatch(size, period, angle, wobble, 1.6))
        for threshold, angle, period in ((205, 45, 9), (150, 135, 9), (95, 0, 7), (50, 90, 6))
    ]
    return on_paper(union(outlines(tone, 9), *layers))


def graphite(stage: Stage, rng: Random) -> Image.Image:
    """Pencil: soft grey shading laid in diagonal strokes, never quite black, on grainy paper."""
    size = stage.rgb.size
    tone = fade_to_paper(tone_of(stage.rgb), stage.matte, keep=0.12).point(levels(25, 255, 1.2))
    wobble = noise(rng, size, (size[0] / 8, size[1] / 8)).point(levels(0, 60))
    strokes = line_screen(size, 6, 45, wobble)
    # Where the (noisy) pressure is light only the strokes show; heavier, they merge into a fill.
    pressure = noise(rng, size, (24, 24)).point(levels(40, 170))
    stroked = ImageChops.lighter(strokes, pressure).point(levels(60, 255))
    darkness = ImageChops.multiply(ImageOps.invert(tone), stroked)
    contours = outlines(tone, 5, 0.5).point(levels(0, 150))
    grain = noise(rng, size, (1.5, 1.5)).point(levels(120, 255))  # paper tooth breaks up every stroke
    return ImageOps.invert(ImageChops.multiply(ImageChops.lighter(darkness, contours), grain)).point(levels(0, 250))


def charcoal(stage: Stage, rng: Random) -> Image.Image:
    """Charcoal: heavy smudged darks with hard contrast, a rubbed-in ground and paper tooth."""
    size = stage.rgb.size
    tone = soften(tone_of(stage.rgb), 4, 1.0).point(levels(0, 255, 2.0))
    ground = noise(rng, size, (size[0] / 4, size[1] / 10)).point(levels(70, 200))
    tone = Image.composite(tone, ground, stage.matte)
    smears = noise(rng, size, (60, 4)).point(levels(150, 255))
    darkness = ImageChops.lighter(
        ImageChops.multiply(ImageOps.invert(tone), smears), outlines(tone, 6, 2.0).point(levels(0, 235))
    )
    # Charcoal skips over the paper's tooth, leaving light specks even in the darkest strokes.
    specks = noise(rng, size, (1.5, 1.5)).point(ramp(170, 230)).point(levels(0, 110))
    return ImageChops.add(ImageOps.invert(darkness), specks).point(levels(14, 250))


def woodcut(stage: Stage, rng: Random) -> Image.Image:
    """Woodcut: pure black and white, the tone cut as parallel grooves that swell and bend over forms."""
    size = stage.rgb.size
    tone = soften(tone_of(stage.rgb), 2, 1.5)
    # Shifting the grooves' phase by the tone makes them ripple along the shapes like gouged wood.
    bend = ImageChops.add(
        soften(tone, 4, 3).point(levels(0, 180)), noise(rng, size, (size[0] / 6, size[1] / 3)).point(levels(0, 70))
    )
    grooves = line_screen(size, 9, 0, bend)
    return on_paper(union(screen(tone.point(levels(0, 255, 0.8)), grooves), outlines(tone, 7, 1.6)))


def mono_vector(stage: Stage, rng: Random) -> Image.Image:
    """Flat vector art in three greys: shapes simplified, then cut at the tone's thirds."""
    del rng  # flat shapes have no texture; the stage's seeded layout still varies
    tone = tone_of(stage.rgb)
    simple = tone.reduce(2).filter(ImageFilter.MedianFilter(5)).filter(ImageFilter.GaussianBlur(2))
    running = list(accumulate(simple.histogram()))
    lower = next(v for v in range(256) if running[v] >= running[-1] * 0.3)
    upper = next(v for v in range(256) if running[v] >= running[-1] * 0.7)
    smooth = simple.resize(tone.size, Image.Resampling.BILINEAR)
    return smooth.point(lambda v: 35 if v <= lower else 140 if v <= upper else 235)


def manga(stage: Stage, rng: Random) -> Image.Image:
    """Manga: black ink lines and solid blacks, with screentone dots for the mid tones."""
    size = stage.rgb.size
    tone = soften(tone_of(stage.rgb), 2, 1)
    ragged = _jitter(tone, rng, 40, 6)  # just enough to wave the borders between tones
    dots = dot_screen(size, 4)
    # Screentone comes in fixed dot sizes: big dots for the darker mid tones, small for the lighter.
    big_dots = ImageChops.darker(_band(ragged, 45, 115), _band(dots, 141))
    small_dots = ImageChops.darker(_band(ragged, 115, 185), _band(dots, 216))
    return on_paper(union(_band(ragged, 0, 45), big_dots, small_dots, outlines(tone, 8, 1.2)))

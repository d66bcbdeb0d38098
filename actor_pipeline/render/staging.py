"""Finding the figure in a portrait and laying the portrait out in the wide preview frame."""

from dataclasses import dataclass
from random import Random

from PIL import Image, ImageChops, ImageDraw, ImageFilter

from actor_pipeline.render.tone import ramp

# The matte is estimated on a thumbnail this wide: it only has to be roughly right, and soft.
_MATTE_WIDTH = 96
# Rows above this share of the height are assumed to show background at the left/right borders;
# below it the shoulders usually reach the borders.
_CLEAR_ROWS = 0.55


@dataclass(frozen=True)
class Stage:
    """The portrait laid out in the output frame, ready for a stylized look."""

    rgb: Image.Image  # RGB, output size: the figure, its background widened to fill the frame
    matte: Image.Image  # L, output size: 255 on the figure, 0 on the background


def figure_matte(portrait: Image.Image) -> Image.Image:
    """Soft mask (L, thumbnail with the portrait's aspect) of the person in a head-and-shoulders portrait.

    It is kept small: callers scale it straight to wherever they place the portrait.

    Pixels far (in any channel) from a background model interpolated between the left and
    right borders count as figure, limited to a generous head-and-shoulders prior so that a busy
    background cannot take over the frame.
    """
    pw, ph = portrait.size
    thumb_size = (_MATTE_WIDTH, max(2, round(_MATTE_WIDTH * ph / pw)))
    thumb = portrait.resize(thumb_size, Image.Resampling.BOX)
    r, g, b = ImageChops.difference(thumb, _background_model(thumb)).split()
    figure = ImageChops.lighter(ImageChops.lighter(r, g), b).point(ramp(24, 56))
    figure = ImageChops.multiply(figure, _head_and_shoulders(thumb_size))
    # Closing fills holes where the figure happens to match the background (eye whites, shine).
    figure = figure.filter(ImageFilter.MaxFilter(5)).filter(ImageFilter.MinFilter(5))
    return figure.filter(ImageFilter.GaussianBlur(1))


def _background_model(thumb: Image.Image) -> Image.Image:
    """What the thumbnail would look like without the figure, guessed from its side borders."""
    w, h = thumb.size
    band = max(1, w // 16)
    clear = max(2, round(h * _CLEAR_ROWS))
    sides = []
    for left in (0, w - band):
        column = thumb.crop((left, 0, left + band, clear)).resize((1, clear), Image.Resampling.BOX).tobytes()
        top = [tuple(column[i : i + 3]) for i in range(0, len(column), 3)]
        # Studio backdrops mostly change from top to bottom: carry the trend of the clear rows on.
        mid, last = top[clear // 2], top[-1]
        steps = max(1, clear - 1 - clear // 2)
        sides.append(
            top
            + [
                tuple(max(0, min(255, round(e + (e - m) * (i + 1) / steps))) for m, e in zip(mid, last))
                for i in range(h - clear)
            ]
        )
    model = Image.new("RGB", (2, h))
    model.putdata([pixel for pair in zip(*sides) for pixel in pair])
    return model.resize((w, h), Image.Resampling.BILINEAR)


def _head_and_shoulders(size: tuple[int, int]) -> Image.Image:
    """Where a head-and-shoulders portrait can have its figure (L), drawn generously and soft."""
    w, h = size
    prior = Image.new("L", size, 0)
    draw = ImageDraw.Draw(prior)
    draw.ellipse((0.14 * w, 0.02 * h, 0.86 * w, 0.75 * h), fill=255)
    draw.rounded_rectangle((0, 0.55 * h, w, 1.3 * h), radius=0.3 * w, fill=255)
    return prior.filter(ImageFilter.GaussianBlur(w / 24))


def scaled(image: Image.Image, scale: float) -> Image.Image:
    """``image`` resized by ``scale`` (bilinear, fast on big downscales)."""
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)


def stage(portrait: Image.Image, matte: Image.Image, size: tuple[int, int], rng: Random) -> Stage:
    """Lay the portrait (with its ``figure_matte``) out at about half the frame width, centred.

    The seed nudges the scale and position by a few percent.
    """
    w, h = size
    scale = max(0.5 * w / portrait.width, h / portrait.height) * (1 + 0.04 * rng.random())
    figure = scaled(portrait, scale)
    x = (w - figure.width) // 2 + round(0.02 * w * (rng.random() - 0.5))
    # Trim some headroom (portraits usually have plenty) while keeping the frame covered.
    y = max(h - figure.height, min(0, round(-0.06 * figure.height)))
    placed_matte = Image.new("L", size, 0)
    placed_matte.paste(matte.resize(figure.size, Image.Resampling.BILINEAR), (x, y))
    return Stage(_widen(figure, size, (x, y)), placed_matte)


def _widen(figure: Image.Image, size: tuple[int, int], at: tuple[int, int]) -> Image.Image:
    """``figure`` pasted at ``at`` over its own border columns smeared out to the frame's sides.

    A portrait's side borders are normally backdrop, so stretching their colours sideways reads
    as more of the same background; a feathered seam hides the join.
    """
    w, h = size
    x, y = at
    band = max(1, figure.width // 24)
    visible = (-y, -y + h)
    canvas = Image.new("RGB", size)
    # Each smear reaches under the feathered edge (2 bands wide) it is seen through.
    for left, start, end in ((0, 0, x + 2 * band), (figure.width - band, x + figure.width - 2 * band, w)):
        if end > start:
            strip = figure.crop((left, visible[0], left + band, visible[1]))
            colours = strip.resize((1, max(2, h // 16)), Image.Resampling.BOX)
            canvas.paste(colours.resize((end - start, h), Image.Resampling.BILINEAR), (start, 0))
    canvas.paste(figure, at, side_feather(figure.size, 2 * band))
    return canvas


def side_feather(size: tuple[int, int], width: int) -> Image.Image:
    """Opaque mask (L) fading to transparent over ``width`` px at the left and right edges."""
    w = size[0]
    row = bytes(min(255, 255 * min(x + 1, w - x) // (width + 1)) for x in range(w))
    return Image.frombytes("L", (w, 1), row).resize(size, Image.Resampling.NEAREST)

"""Out-of-focus backgrounds for the photographic looks, drawn from a light's palette."""

from itertools import pairwise
from random import Random

from PIL import Image, ImageDraw, ImageFilter

from actor_pipeline.render.lighting import RGB, Light, mix

# Scenes are drawn this wide (at the output's aspect, but at least 60 rows so the layouts fit),
# then scaled up: they end up out of focus anyway, and a fixed width keeps the drawing's pixel
# measurements meaningful at any output size.
_SCENE_WIDTH = 348


def scene(light: Light, size: tuple[int, int], rng: Random, bright_sky: bool, focus: float) -> Image.Image:
    """An out-of-focus background for the light: sky or wall, ground, fixtures, bokeh."""
    small = (_SCENE_WIDTH, max(60, round(_SCENE_WIDTH * size[1] / size[0])))
    sky_top, horizon = light.sky
    if bright_sky:  # a silhouette needs the sky to be the brightest thing in the frame
        sky_top, horizon = mix(sky_top, horizon, 0.6), mix(horizon, (255, 255, 255), 0.45)
    horizon_y = round(small[1] * (0.8 if bright_sky else 0.62))
    canvas = _gradient(
        small,
        [
            (0, sky_top),
            (horizon_y, horizon),
            (horizon_y + 1, mix(horizon, light.ground, 0.6)),
            (small[1], light.ground),
        ],
    )
    draw = ImageDraw.Draw(canvas, "RGBA")
    _SETTINGS[light.setting](draw, small, horizon_y, light, rng)
    for _ in range(24):  # bokeh: highlights too far out of focus to have a shape
        x, y, r = rng.uniform(0, small[0]), rng.uniform(0, horizon_y * 1.1), rng.uniform(2, 7)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(*rng.choice(light.accents), rng.randint(40, 110)))
    return canvas.filter(ImageFilter.GaussianBlur(focus)).resize(size, Image.Resampling.BILINEAR)


def _street(draw: ImageDraw.ImageDraw, size: tuple[int, int], horizon: int, light: Light, rng: Random) -> None:
    """Buildings with lit windows along the horizon, and lamps receding into the distance."""
    w, h = size
    x = 0
    while x < w:
        width, height = rng.randint(14, 40), rng.randint(horizon // 3, horizon - 4)
        draw.rectangle((x, horizon - height, x + width, horizon), fill=mix(light.sky[0], (0, 0, 0), 0.4))
        for wy in range(horizon - height + 3, horizon - 3, 5):
            for wx in range(x + 2, x + width - 3, 5):
                if rng.random() < 0.25:
                    draw.rectangle((wx, wy, wx + 2, wy + 2), fill=(*rng.choice(light.accents), 120))
        x += width + rng.randint(0, 6)
    vanish = w * rng.uniform(0.55, 0.75)
    draw.line((vanish, horizon, w, h), fill=(*light.glow, 70), width=2)  # kerb catching the light
    for i in range(6):
        near = 0.2 + i * 0.16  # perspective scale: lamp i stands nearer the viewer than lamp i - 1
        lx, r = vanish + (w * 0.95 - vanish) * near, 1 + 4 * near
        top, foot = horizon - horizon * 0.6 * near, horizon + (h - horizon) * near
        draw.line((lx, top, lx, foot), fill=(0, 0, 0, 200), width=max(1, round(2 * near)))
        draw.ellipse((lx - 3 * r, top - 3 * r, lx + 3 * r, top + 3 * r), fill=(*light.glow, 60))
        draw.ellipse((lx - r, top - r, lx + r, top + r), fill=(*light.glow, 255))


def _room(draw: ImageDraw.ImageDraw, size: tuple[int, int], horizon: int, light: Light, rng: Random) -> None:
    """A bright window on one side of a dim room, throwing a glow across the wall."""
    w, h = size
    left = w * rng.uniform(0.04, 0.1)
    draw.rectangle((left - 20, 0, left + w * 0.3, horizon + 6), fill=(*light.glow, 50))
    draw.rectangle((left, h * 0.08, left + w * 0.24, horizon - 4), fill=(*light.glow, 255))
    draw.line((left + w * 0.12, h * 0.08, left + w * 0.12, horizon - 4), fill=light.ground, width=3)
    draw.line((left, h * 0.34, left + w * 0.24, h * 0.34), fill=light.ground, width=3)


def _office(draw: ImageDraw.ImageDraw, size: tuple[int, int], horizon: int, light: Light, rng: Random) -> None:
    """Rows of ceiling tubes converging on a far wall."""
    w, _ = size
    vanish = w * rng.uniform(0.4, 0.6)
    for row in range(5):
        y, half = 4 + row * 7, w * (0.42 - row * 0.07)
        for side in (-1, 1):
            near, far = vanish + side * half, vanish + side * half * 0.35
            draw.line((min(near, far), y, max(near, far), y), fill=(*light.glow, 255), width=3 - row // 2)


def _open(draw: ImageDraw.ImageDraw, size: tuple[int, int], horizon: int, light: Light, rng: Random) -> None:
    """Open air: the sun's glow low in the sky over a line of distant hills."""
    w, _ = size
    sun_x = w * rng.uniform(0.55, 0.85)
    for radius, alpha in ((60, 40), (30, 70), (10, 230)):
        draw.ellipse(
            (sun_x - radius, horizon - 20 - radius, sun_x + radius, horizon - 20 + radius), fill=(*light.glow, alpha)
        )
    ridge, y = [], horizon - 6.0
    for x in range(0, w + 8, 8):
        y = min(horizon + 2.0, max(horizon - 20.0, y + rng.uniform(-4, 4)))
        ridge.append((x, y))
    draw.polygon([(0, horizon + 4), *ridge, (w, horizon + 4)], fill=mix(light.ground, (0, 0, 0), 0.3))


_SETTINGS = {"street": _street, "room": _room, "office": _office, "open": _open}


def _gradient(size: tuple[int, int], stops: list[tuple[int, RGB]]) -> Image.Image:
    """Vertical gradient through ``(row, colour)`` stops."""
    column = []
    for y in range(size[1]):
        (y0, c0), (y1, c1) = next((a, b) for a, b in pairwise(stops) if y < b[0] or b is stops[-1])
        column.append(mix(c0, c1, (y - y0) / max(1, y1 - y0)))
    strip = Image.new("RGB", (1, size[1]))
    strip.putdata(column)
    return strip.resize(size, Image.Resampling.NEAREST)

"""The photographic preview look: the portrait reframed into a lit scene, then colour graded."""

from functools import lru_cache
from random import Random

from PIL import Image, ImageChops, ImageFilter

from actor_pipeline.render.lighting import LIGHTING, RGB, Light, mix
from actor_pipeline.render.scenes import scene
from actor_pipeline.render.staging import scaled, side_feather
from actor_pipeline.render.textures import noise
from actor_pipeline.render.tone import levels, ramp

FRAMINGS = ("close_up", "medium", "wide", "silhouette")
LIGHTS = tuple(LIGHTING)

# Where the figure goes, per framing: height and bottom edge as shares of the frame height,
# horizontal centre as a share of its width. Bottoms sit below the frame so that the rows
# where the shoulders run into the portrait's side borders are mostly cut off.
_PLACEMENT = {"medium": (1.3, 1.22, 0.5), "wide": (0.7, 1.1, 0.36), "silhouette": (1.0, 1.12, 0.5)}
# Background blur per framing (px at scene scale): a medium shot has the shallowest focus.
_FOCUS = {"medium": 2.2, "wide": 0.9, "silhouette": 0.9}


def render_photo(
    portrait: Image.Image, matte: Image.Image, framing: str, light_name: str, size: tuple[int, int], rng: Random
) -> Image.Image:
    """The portrait reframed per ``framing``, in a scene suggested by the light, graded by it."""
    light = LIGHTING[light_name]
    if framing == "close_up":
        return _grade(_close_up(portrait, size, rng), light, rng)
    frame = scene(light, size, rng, bright_sky=framing == "silhouette", focus=_FOCUS[framing])
    height, bottom, centre = _PLACEMENT[framing]
    figure = scaled(portrait, height * size[1] / portrait.height * (1 + 0.04 * (rng.random() - 0.5)))
    # Harden the soft matte so little of the portrait's own backdrop comes along, and fade the
    # shoulders out where the portrait's side borders cut them.
    edge = ramp(110, 150) if framing == "silhouette" else ramp(90, 220)  # silhouettes need a hard edge
    figure_matte = ImageChops.multiply(
        matte.resize(figure.size, Image.Resampling.BILINEAR).point(edge), side_feather(figure.size, figure.width // 10)
    )
    if framing == "silhouette":
        figure = _silhouette(figure, figure_matte, light.sky[1])
    x = round(size[0] * (centre + 0.03 * (rng.random() - 0.5)) - figure.width / 2)
    frame.paste(figure, (x, round(bottom * size[1]) - figure.height), figure_matte)
    return _grade(frame, light, rng)


def _close_up(portrait: Image.Image, size: tuple[int, int], rng: Random) -> Image.Image:
    """The upper middle of the portrait (eyes to chin, most of the face) filling the frame."""
    pw, ph = portrait.size
    aspect = size[0] / size[1]
    height = 0.36 * ph * (1 - 0.05 * rng.random())
    width = min(pw, height * aspect)
    height = width / aspect
    left = min(pw - width, max(0.0, pw / 2 - width / 2 + 0.02 * pw * (rng.random() - 0.5)))
    top = min(ph - height, max(0.0, 0.44 * ph - height / 2))
    return portrait.resize(size, Image.Resampling.BILINEAR, box=(left, top, left + width, top + height))


def _silhouette(figure: Image.Image, matte: Image.Image, rim: RGB) -> Image.Image:
    """The figure nearly black against the light, with a thin rim of sky light on its edges."""
    dark = Image.blend(Image.new("RGB", figure.size, (14, 10, 20)), figure, 0.06)
    edge = ImageChops.subtract(matte, matte.filter(ImageFilter.GaussianBlur(max(1, figure.width // 160))))
    dark.paste(rim, (0, 0), edge.point(levels(0, 600)))
    return dark


def _grade(image: Image.Image, light: Light, rng: Random) -> Image.Image:
    """Light the frame: key light from the sides with a vignette, colour balance, film grain."""
    lit = ImageChops.multiply(image, _key_light(image.size, light.key)).point(_curves(light))
    grain = noise(rng, image.size, (1.5, 1.5)).point(levels(118, 138)).convert("RGB")
    return ImageChops.add(lit, grain, scale=1.0, offset=-128)


@lru_cache(maxsize=16)
def _key_light(size: tuple[int, int], key: tuple[RGB, RGB]) -> Image.Image:
    """Multiplier (RGB) fading from the left key colour to the right one, darker at the corners."""
    w, h = 64, 36
    across = Image.new("RGB", (w, h))
    across.putdata([mix(key[0], key[1], x / (w - 1)) for _ in range(h) for x in range(w)])
    vignette = Image.radial_gradient("L").resize((w, h)).point(levels(255, 120, 2.0))
    return ImageChops.multiply(across, vignette.convert("RGB")).resize(size, Image.Resampling.BILINEAR)


def _curves(light: Light) -> list[int]:
    """Per-channel lookup table: gain, then gamma, then blacks lifted to the light's shadow colour."""
    return [
        round(lift + (255 - lift) * min(1.0, gain * v / 255) ** light.gamma)
        for gain, lift in zip(light.gain, light.lift)
        for v in range(256)
    ]

"""The offline preview renderer: one 16:9 image per shot, made by restyling the portrait.

Used when there is no Replicate token. It is not a generative model: each look is a fixed
recipe of Pillow operations (reframing, tone mapping, halftone screens, colour grades) seeded
by ``random.Random(seed)``, so the same portrait, look and seed always give the same pixels.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from random import Random

from PIL import Image, ImageDraw, ImageFont

from actor_pipeline.errors import CatalogError
from actor_pipeline.render import monochrome, painterly
from actor_pipeline.render.photo import FRAMINGS, LIGHTS, render_photo
from actor_pipeline.render.staging import Stage, figure_matte, stage

__all__ = [
    "FRAMINGS", "LIGHTS", "OUTPUT_SIZE", "STYLES", "PreparedPortrait", "PreviewLook", "prepare_portrait", "render_preview",
]  # fmt: skip

OUTPUT_SIZE = (1392, 752)  # the generative model's 16:9 size

_Stylizer = Callable[[Stage, Random], Image.Image]

# Black-and-white styles return L images; the colour styles return RGB.
_MONOCHROME: dict[str, _Stylizer] = {
    "pen_ink": monochrome.pen_ink,
    "graphite": monochrome.graphite,
    "charcoal": monochrome.charcoal,
    "woodcut": monochrome.woodcut,
    "mono_vector": monochrome.mono_vector,
    "manga": monochrome.manga,
}
_COLOUR: dict[str, _Stylizer] = {
    "comic": painterly.comic,
    "flat_vector": painterly.flat_vector,
    "watercolor": painterly.watercolor,
    "gouache": painterly.gouache,
}
STYLES = ("photo", *_MONOCHROME, *_COLOUR)

_MARK = "PREVIEW"


@dataclass(frozen=True)
class PreviewLook:
    """How the preview renderer draws one shot. ``framing`` and ``light`` apply to ``photo`` only."""

    style: str = "photo"
    framing: str = "medium"
    light: str = "daylight"

    def __post_init__(self) -> None:
        for name, valid in (("style", STYLES), ("framing", FRAMINGS), ("light", LIGHTS)):
            value = getattr(self, name)
            if value not in valid:
                raise CatalogError(f"unknown preview {name} {value!r}: use one of {', '.join(valid)}")


@dataclass(frozen=True)
class PreparedPortrait:
    """What every look starts from: the portrait in RGB and its ``figure_matte``. Made once for
    an actor's shots (``prepare_portrait``); the looks only read it, so threads may share it."""

    rgb: Image.Image
    matte: Image.Image


def prepare_portrait(portrait: Image.Image) -> PreparedPortrait:
    source = portrait.convert("RGB")
    return PreparedPortrait(source, figure_matte(source))


def render_preview(
    portrait: Image.Image | PreparedPortrait, look: PreviewLook, seed: int, size: tuple[int, int] = OUTPUT_SIZE
) -> Image.Image:
    """RGB image of ``size`` showing ``portrait`` in ``look``. Same inputs -> identical pixels."""
    rng = Random(seed)
    prepared = portrait if isinstance(portrait, PreparedPortrait) else prepare_portrait(portrait)
    if look.style == "photo":
        image = render_photo(prepared.rgb, prepared.matte, look.framing, look.light, size, rng)
    else:
        stylize = _MONOCHROME.get(look.style) or _COLOUR[look.style]
        image = stylize(stage(prepared.rgb, prepared.matte, size, rng), rng)
    return _stamp(image).convert("RGB")


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _stamp(image: Image.Image) -> Image.Image:
    """Mark the bottom-right corner "PREVIEW" so nobody mistakes it for model output.

    The text is drawn without anti-aliasing in colours the image already has (its darkest and
    lightest grey for L images), so B&W styles keep their exact set of grey levels.
    """
    ink, paper = image.getextrema() if image.mode == "L" else ((0, 0, 0), (255, 255, 255))
    font = _font(max(8, image.height // 64))
    left, top, right, bottom = font.getbbox(_MARK)
    pad = max(2, image.height // 200)
    x, y = image.width - right - 3 * pad, image.height - bottom - 3 * pad
    draw = ImageDraw.Draw(image)
    draw.fontmode = "1"
    draw.rectangle((x + left - pad, y + top - pad, x + right + pad, y + bottom + pad), fill=paper)
    draw.text((x, y), _MARK, font=font, fill=ink)
    return image

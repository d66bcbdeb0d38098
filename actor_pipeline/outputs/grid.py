"""The debug grid: a labeled contact sheet of the portrait and every shot of an actor."""

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageDraw, ImageFont, ImageOps

TILE_W, TILE_H = 384, 216  # 16:9, like the shots
LABEL_H = 46
GAP = 8
HEADER_H = 56
COLUMNS = 6
JPEG_QUALITY = 85
BACKGROUND = (24, 24, 28)
CATEGORY_COLORS = {
    "portrait": (200, 200, 200),
    "photoreal": (90, 170, 250),
    "bw_stylized": (235, 235, 235),
    "color_stylized": (250, 160, 70),
}
FAILED_COLOR = (230, 70, 70)
# The quality badge in a tile's corner: what the checks said of the image.
BADGE_COLORS = {"passed": (60, 170, 90), "regenerated": (225, 170, 40), "failed": FAILED_COLOR}


@dataclass(frozen=True)
class Tile:
    label: str
    category: str
    image: Image.Image | None  # None: a failed or missing shot, drawn as a placeholder
    note: str = ""  # e.g. the failure reason
    badge: str = ""  # "passed", "regenerated" or "failed" (quality checks); "" for none
    badge_detail: str = ""  # e.g. "identity 0.41", the failed checks


def tile_image(data: bytes) -> Image.Image:
    """``data`` decoded for a tile: a JPEG at the smallest of its decoder's scales (1/2, 1/4,
    1/8) still as large as a tile, a fraction of the pixels to decode and then to shrink.
    Raises ``OSError`` if it is not an image Pillow reads."""
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (TILE_W, TILE_H))
    image.load()
    return image


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def render_grid(title: str, tiles: Sequence[Tile]) -> bytes:
    """One JPEG with ``COLUMNS`` tiles per row under a title bar."""
    rows = math.ceil(len(tiles) / COLUMNS)
    width = COLUMNS * TILE_W + (COLUMNS + 1) * GAP
    height = HEADER_H + rows * (TILE_H + LABEL_H + GAP) + GAP
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.text((GAP * 2, HEADER_H // 2), title, fill=(240, 240, 240), font=_font(26), anchor="lm")
    for number, tile in enumerate(tiles):
        row, column = divmod(number, COLUMNS)
        x = GAP + column * (TILE_W + GAP)
        y = HEADER_H + row * (TILE_H + LABEL_H + GAP)
        _draw_tile(sheet, draw, tile, x, y)
    buffer = io.BytesIO()
    sheet.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _draw_tile(sheet: Image.Image, draw: ImageDraw.ImageDraw, tile: Tile, x: int, y: int) -> None:
    if tile.image is not None:
        # Letterbox rather than crop: the grid is for checking the images, not prettifying them.
        sheet.paste(ImageOps.pad(tile.image.convert("RGB"), (TILE_W, TILE_H), color=(0, 0, 0)), (x, y))
    else:
        draw.rectangle((x, y, x + TILE_W - 1, y + TILE_H - 1), fill=(48, 20, 20), outline=FAILED_COLOR, width=4)
        draw.line((x, y, x + TILE_W - 1, y + TILE_H - 1), fill=FAILED_COLOR, width=2)
        draw.line((x, y + TILE_H - 1, x + TILE_W - 1, y), fill=FAILED_COLOR, width=2)
        draw.text((x + TILE_W // 2, y + TILE_H // 2), "MISSING", fill=(255, 255, 255), font=_font(30), anchor="mm")
    if tile.badge in BADGE_COLORS:
        text = f"QC {tile.badge}" + (f" · {tile.badge_detail}" if tile.badge_detail else "")
        _, _, right, bottom = draw.textbbox((0, 0), _fit(text, 40), font=_font(14))
        draw.rectangle((x + 6, y + 6, x + 16 + right, y + 14 + bottom), fill=BADGE_COLORS[tile.badge])
        draw.text((x + 11, y + 9), _fit(text, 40), fill=(255, 255, 255), font=_font(14))
    accent = CATEGORY_COLORS.get(tile.category, (160, 160, 160)) if tile.image is not None else FAILED_COLOR
    draw.rectangle((x, y + TILE_H, x + 5, y + TILE_H + LABEL_H - 1), fill=accent)
    draw.text((x + 12, y + TILE_H + 4), _fit(tile.label, 30), fill=(245, 245, 245), font=_font(19))
    subtitle = tile.category.replace("_", " ") + (f" · {tile.note}" if tile.note else "")
    draw.text((x + 12, y + TILE_H + 26), _fit(subtitle, 44), fill=accent, font=_font(14))


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

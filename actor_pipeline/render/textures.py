"""Seeded noise and halftone screens, the raw textures the preview styles are built from.

A *screen* is an L image whose values are spread evenly over 0-255 within each period, so
thresholding a tone image against it (``screen``) inks a fraction ``(255 - tone) / 255`` of
every cell: lines or dots that thicken as the tone darkens, like a printer's screen.

Binary results are *ink masks*: L images that are 255 where ink goes and 0 on bare paper, so
``ImageChops.lighter`` unites two of them and ``ImageChops.darker`` intersects them.
"""

from functools import lru_cache
from random import Random

from PIL import Image, ImageChops

Size = tuple[int, int]

# Phase 0..255 across one line period -> screen value, peaking (255) on the line's centre.
_TRIANGLE = [255 - abs(2 * i - 255) for i in range(256)]

# Direction of a line family -> (dx, dy) such that lines are the level sets of dx*x + dy*y.
_LINE_DIRECTIONS = {0: (0, 1), 45: (1, 1), 90: (1, 0), 135: (-1, 1)}


def noise(rng: Random, size: Size, cell: tuple[float, float]) -> Image.Image:
    """Seeded smooth noise (L) with blobs about ``cell`` = (width, height) pixels across.

    Unequal cell sides give streaks (e.g. ``(40, 3)``: horizontal strokes). The noise is drawn
    at the cell grid's resolution and interpolated up, which keeps large textures cheap.
    """
    w, h = size
    grid = (max(2, round(w / cell[0])), max(2, round(h / cell[1])))
    small = Image.frombytes("L", grid, rng.randbytes(grid[0] * grid[1]))
    return small if grid == size else small.resize(size, Image.Resampling.BICUBIC)


def line_screen(size: Size, period: int, angle: int, bend: Image.Image) -> Image.Image:
    """Screen of parallel lines ``period`` px apart, bent by ``bend``.

    ``angle`` is 0 (horizontal), 45 (/), 90 (vertical) or 135 (\\). ``bend`` (L, ``size``) shifts
    every pixel's position across the period by up to one period (255), so a smooth bend image
    makes the lines wave and one derived from the picture makes them follow its forms.
    """
    return ImageChops.add_modulo(_line_phase(size, period, angle), bend).point(_TRIANGLE)


@lru_cache(maxsize=16)
def _line_phase(size: Size, period: int, angle: int) -> Image.Image:
    """Position (0-255) of every pixel across the period of a family of parallel lines."""
    w, h = size
    dx, dy = _LINE_DIRECTIONS[angle]
    cycle = bytes(i * 256 // period for i in range(period))
    if dx == 0:
        rows = [cycle[y % period : y % period + 1] * w for y in range(period)]
    else:
        # Along a row the phase steps by dx per pixel, so a row is a slice of a repeated cycle.
        step = cycle if dx > 0 else cycle[:1] + cycle[:0:-1]
        run = step * (w // period + 2)
        rows = [run[(dx * dy * y) % period :][:w] for y in range(period)]
    return Image.frombytes("L", size, b"".join(rows[y % period] for y in range(h)))


@lru_cache(maxsize=8)
def dot_screen(size: Size, cell: int) -> Image.Image:
    """Halftone dot screen on a 45-degree lattice, brightest at dot centres.

    Values are ranked within the tile, so ``screen(tone, dots)`` inks exactly the share of each
    cell that the tone asks for: small dots in light areas, merging dots in dark ones.
    """
    tile = 2 * cell
    centres = [(0, 0), (tile, 0), (0, tile), (tile, tile), (cell, cell)]
    dist = [
        min((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 for cx, cy in centres) for y in range(tile) for x in range(tile)
    ]
    order = sorted(range(len(dist)), key=dist.__getitem__)
    ranked = bytearray(len(dist))
    for rank, index in enumerate(order):
        ranked[index] = 255 - rank * 256 // len(dist)
    w, h = size
    rows = [bytes(ranked[y * tile : (y + 1) * tile]) * (w // tile + 1) for y in range(tile)]
    return Image.frombytes("L", size, b"".join(rows[y % tile][:w] for y in range(h)))


def screen(tone: Image.Image, pattern: Image.Image) -> Image.Image:
    """Ink mask of ``tone`` rendered through ``pattern``: ink where the pattern exceeds the tone."""
    return ImageChops.subtract(pattern, tone).point(lambda v: 255 if v else 0)

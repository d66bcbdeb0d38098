"""Thumbnails small enough to live in Dagster metadata.

The UI has no image metadata type, so a thumbnail goes in as a Markdown image with a ``data:``
URI. Two limits size it: Dagster stores metadata with every materialization event, in the event
log; and the UI shows a Markdown value inline only when it is shorter than 1,000 characters
(dagster-webserver 1.13), else behind a "[Show Markdown]" button. Shots and portraits are kept
under that, so they show where the partition is opened; the contact sheet, unreadable that small,
is larger and one click away. WebP, not JPEG: about half the bytes at these sizes.
"""

import base64
import io
from collections.abc import Iterator

from PIL import Image

INLINE_MARKDOWN_CHARS = 1_000  # the UI shows shorter Markdown inline
IMAGE_BOX = (128, 128)  # a 16:9 shot becomes 128x69, the 3:4 portrait 96x128
GRID_BOX = (480, 480)  # the contact sheet: enough to tell the tiles and the gaps apart
GRID_MAX_BYTES = 10_000
_QUALITIES = (75, 60, 45, 30)
# (quality, method) in turn: libwebp's method 4 takes half the CPU of its slowest, 6, for the same
# size within 1 %; 6 is tried once at the lowest quality before the image is shrunk, where its
# last bytes can spare a step (1 of 34 sample shots).
_ENCODINGS = (*((quality, 4) for quality in _QUALITIES), (_QUALITIES[-1], 6))
_SHRINK = 0.75  # per step, once the lowest quality is still too large
_DATA_URI = "data:image/webp;base64,"


def thumbnail(data: bytes, box: tuple[int, int], max_bytes: int) -> bytes:
    """A WebP of the image ``data`` that fits in ``box`` (never enlarged; aspect kept) and, at the
    highest quality that allows it, in ``max_bytes``."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", box)  # decode a large JPEG at a fraction of its size: much faster
        small = image.convert("RGB")
    small.thumbnail(box, Image.Resampling.LANCZOS)
    encoded = b""
    for candidate in _shrinking(small):
        for quality, method in _ENCODINGS:
            encoded = _webp(candidate, quality, method)
            if len(encoded) <= max_bytes:
                return encoded
    return encoded  # 1x1 at the lowest quality: nothing smaller to offer


def markdown_image(webp: bytes, alt: str) -> str:
    """Markdown showing the WebP ``webp`` as an image."""
    return f"![{_alt(alt)}]({_DATA_URI}{base64.b64encode(webp).decode('ascii')})"


def inline_markdown(data: bytes, alt: str, box: tuple[int, int] = IMAGE_BOX) -> str:
    """Markdown of a thumbnail of ``data`` short enough for the UI to show it inline."""
    room = INLINE_MARKDOWN_CHARS - 1 - len(f"![{_alt(alt)}]({_DATA_URI})")
    return markdown_image(thumbnail(data, box, room // 4 * 3), alt)  # base64: 4 characters per 3 bytes


def shot_alt(index: int, shot_id: str) -> str:
    """How a shot's thumbnail is labelled."""
    return f"{index:02d} {shot_id}"


def sheet_markdown(data: bytes, alt: str) -> str:
    """Markdown of a thumbnail of the contact sheet ``data``, shown behind a click in the UI."""
    return markdown_image(thumbnail(data, GRID_BOX, GRID_MAX_BYTES), alt)


def _alt(text: str) -> str:
    return text.replace("[", "(").replace("]", ")")  # a bracket would end the alt text early


def _shrinking(image: Image.Image) -> Iterator[Image.Image]:
    yield image
    while image.size != (1, 1):
        image = image.resize((max(1, int(image.width * _SHRINK)), max(1, int(image.height * _SHRINK))))
        yield image


def _webp(image: Image.Image, quality: int, method: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", quality=quality, method=method)
    return buffer.getvalue()

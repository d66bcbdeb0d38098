"""Turn a user's portrait, in any common format, into the one JPEG every backend receives.

Steps: identify the format from the bytes (never from a name or a Content-Type) -> read the
header and refuse oversized, tiny or extremely elongated images before any pixel is decoded ->
decode the first frame -> apply the EXIF orientation -> convert to 8-bit sRGB (embedded ICC
profile applied, alpha flattened onto neutral grey) -> downscale to ``max_side`` -> encode as a
quality-95 JPEG with no metadata, so no GPS position or camera serial reaches a provider.

The previous system sent the original bytes when normalization failed. That fallback is gone:
every input-dependent failure happens while decoding, and then the original is by definition
not an image the model could use; re-encoding an already decoded RGB image as JPEG has no
input-dependent way to fail. The original would also skip the orientation, the size cap and the
metadata stripping, so sending it would be wrong even when it decodes.
"""

import hashlib
import io
from dataclasses import dataclass
from typing import cast

from PIL import ExifTags, Image, ImageCms, ImageOps, UnidentifiedImageError

from actor_pipeline.errors import PortraitError
from actor_pipeline.portrait.limits import DEFAULT_LIMITS, PortraitLimits

SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
"""Pillow names of the accepted formats; each is opened only by its own Pillow plugin."""

JPEG_QUALITY = 95
BACKGROUND = (128, 128, 128)
"""Transparent areas become mid grey: black or white would read to the model as dark or
overexposed surroundings, and both merge with hair or skin at the edges."""

_SUPPORTED_TEXT = "JPEG, PNG, WebP, GIF, BMP or TIFF"

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),  # BigTIFF
    (b"MM\x00+", "TIFF"),
    # Not supported, recognized only to name them in the error.
    (b"%PDF-", "PDF"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"PK\x03\x04", "ZIP"),
)
_ISO_MEDIA_BRANDS = {  # ISO-BMFF "ftyp" brands of still-image formats phones produce
    b"heic": "HEIC",
    b"heix": "HEIC",
    b"hevc": "HEIC",
    b"mif1": "HEIF",
    b"msf1": "HEIF",
    b"avif": "AVIF",
    b"avis": "AVIF",
}
_NOT_AN_IMAGE_FIX = {
    "HTML": "the URL probably points at a web page; link the image file itself",
    "JSON": "the URL probably points at an API response; link the image file itself",
    "XML": "storage services answer errors in XML (an expired signed URL, a missing key); check the link",
}
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
_LAB = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB"))


@dataclass(frozen=True)
class NormalizedPortrait:
    """The portrait as sent to the model, plus what is known about the original."""

    jpeg: bytes
    """RGB JPEG, quality 95, sRGB, orientation applied, no EXIF/ICC/XMP metadata."""
    width: int
    height: int
    sha256: str
    """Of ``jpeg``: identical input and Pillow version give identical bytes."""
    source_format: str
    """Pillow format name of the original: one of ``SUPPORTED_FORMATS``."""
    source_bytes: int
    source_sha256: str
    source_width: int
    """Of the original as displayed, i.e. after its EXIF orientation."""
    source_height: int


def sniff_format(data: bytes, subject: str = "portrait") -> str:
    """Identify an image format from its first bytes.

    Returns one of ``SUPPORTED_FORMATS``; otherwise raises ``PortraitError`` saying what the
    bytes are (empty, HTML, JSON, XML, an unsupported format such as HEIC, or unknown) and how to
    fix it. ``subject`` starts the message, e.g. ``"portrait from https://host/a.jpg"``.
    """
    if not data:
        raise PortraitError(f"{subject} is empty (0 bytes): check the file or URL points at an image")
    name = _binary_format(data) or _text_format(data)
    if name in SUPPORTED_FORMATS:
        return name
    if name in _NOT_AN_IMAGE_FIX:
        raise PortraitError(f"{subject} looks like {name}, not an image: {_NOT_AN_IMAGE_FIX[name]}")
    if name:
        raise PortraitError(f"{subject} format {name} is not supported: use {_SUPPORTED_TEXT}")
    raise PortraitError(f"{subject} is not in a recognized image format: use {_SUPPORTED_TEXT}")


def _binary_format(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":
        return _ISO_MEDIA_BRANDS.get(data[8:12])
    return next((name for magic, name in _MAGIC if data.startswith(magic)), None)


def _text_format(data: bytes) -> str | None:
    """HTML, XML, SVG or JSON: what servers send in place of an image."""
    text = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<"):
        if b"<svg" in text:
            return "SVG"
        return "HTML" if b"<html" in text or text.startswith(b"<!doctype html") else "XML"
    return "JSON" if text[:1] in (b"{", b"[") else None


def normalize_portrait(data: bytes, limits: PortraitLimits = DEFAULT_LIMITS) -> NormalizedPortrait:
    """Decode, check and re-encode a portrait (see the module docstring).

    Raises ``PortraitError`` (and only that) when the bytes are not an acceptable portrait; the
    message names the problem and the fix.
    """
    if len(data) > limits.max_bytes:
        raise PortraitError(
            f"portrait is {_megabytes(len(data))}; the limit is {_megabytes(limits.max_bytes)}: "
            "export it as a JPEG or scale it down"
        )
    source_format = sniff_format(data)
    try:
        with Image.open(io.BytesIO(data), formats=[source_format]) as image:
            size = image.size
            _check_dimensions(size, limits)
            # JPEG only: decode straight at 1/2, 1/4 or 1/8 scale when that still covers the
            # target, which saves most of the time and memory for large photos.
            image.draft(None, _fit(size, limits.max_side))
            transposed = image.getexif().get(ExifTags.Base.Orientation) in (5, 6, 7, 8)
            source_width, source_height = size[::-1] if transposed else size
            ImageOps.exif_transpose(image, in_place=True)
            rgb = _to_rgb(image, limits.max_side)
    except PortraitError:
        raise
    except Image.DecompressionBombError as exc:
        raise PortraitError(
            f"portrait is too large to decode safely ({exc}): scale it down to at most "
            f"{limits.max_pixels / 1e6:g} megapixels"
        ) from exc
    # Pillow's plugins raise many types on malformed data (OSError, SyntaxError, struct.error,
    # IndexError, ...); all of them mean the same thing to the user.
    except Exception as exc:
        reason = "unreadable header" if isinstance(exc, UnidentifiedImageError) else exc
        raise PortraitError(
            f"portrait could not be decoded as {source_format} ({reason}): the file is damaged or "
            "truncated; export or download it again"
        ) from exc
    jpeg = io.BytesIO()
    rgb.save(jpeg, "JPEG", quality=JPEG_QUALITY)  # Pillow writes no EXIF/ICC unless asked
    return NormalizedPortrait(
        jpeg=jpeg.getvalue(),
        width=rgb.width,
        height=rgb.height,
        sha256=hashlib.sha256(jpeg.getvalue()).hexdigest(),
        source_format=source_format,
        source_bytes=len(data),
        source_sha256=hashlib.sha256(data).hexdigest(),
        source_width=source_width,
        source_height=source_height,
    )


def _check_dimensions(size: tuple[int, int], limits: PortraitLimits) -> None:
    """Refuse, from the header alone, images too large to decode or too small to use."""
    width, height = size
    if width * height > limits.max_pixels:
        raise PortraitError(
            f"portrait is {width}x{height} px ({width * height / 1e6:.1f} megapixels); the limit "
            f"is {limits.max_pixels / 1e6:g} megapixels: scale it down"
        )
    if min(size) < limits.min_short_side:
        raise PortraitError(
            f"portrait is {width}x{height} px; the short side must be at least "
            f"{limits.min_short_side} px: use a larger image"
        )
    fitted = min(_fit(size, limits.max_side))
    if fitted < limits.min_short_side:
        raise PortraitError(
            f"portrait is {width}x{height} px, too elongated: scaled to fit {limits.max_side} px "
            f"its short side would be {fitted} px (at least {limits.min_short_side} needed): "
            "crop it closer to the subject"
        )


def _fit(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """``size`` scaled down (never up) to fit in a ``max_side`` square, aspect ratio kept."""
    scale = min(1.0, max_side / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _to_rgb(image: Image.Image, max_side: int) -> Image.Image:
    """Any decoded mode -> 8-bit sRGB RGB no larger than ``max_side``."""
    image = _to_8bit(image)
    has_alpha = image.has_transparency_data
    if has_alpha:
        image = image.convert("RGBA")  # palette and tRNS-keyed transparency become real alpha
    elif image.mode not in ("RGB", "L", "CMYK", "LAB"):
        image = image.convert("RGB")  # the modes kept are the ones a colour profile describes
    image = _to_srgb(image, "RGBA" if has_alpha else "RGB")
    size = _fit(image.size, max_side)
    if size != image.size:
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if has_alpha:
        background = Image.new("RGBA", image.size, (*BACKGROUND, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")


def _to_8bit(image: Image.Image) -> Image.Image:
    """16/32-bit grey -> 8-bit L. Pillow's ``convert`` clips such values at 255, which would
    turn a 16-bit photo almost white."""
    if image.mode.startswith("I;16"):
        image = image.convert("I")  # point() rejects some 16-bit byte orders (I;16B)
        scale, offset = 1 / 256, 0.0
    elif image.mode in ("I", "F"):
        # 32-bit integer and float grey have no agreed white point: stretch the actual range.
        low, high = cast(tuple[float, float], image.getextrema())  # one band: (min, max)
        scale = 255 / (high - low) if high > low else 0.0
        offset = -low * scale
    else:
        return image
    grey = image.point(lambda value: value * scale + offset).convert("L")
    grey.info.pop("transparency", None)  # a 16-bit colour key no longer matches any 8-bit value
    return grey


def _to_srgb(image: Image.Image, mode: str) -> Image.Image:
    """Convert to ``mode`` ("RGB" or "RGBA") in sRGB, honouring an embedded ICC profile (wide
    gamut phone photos, print CMYK) and the Lab colour space, which Pillow's plain ``convert``
    gets wrong."""
    icc = image.info.get("icc_profile")
    if not icc and image.mode != "LAB":
        return image.convert(mode)
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc)) if icc else _LAB
        return ImageCms.ImageCmsTransform(source, _SRGB, image.mode, mode).apply(image)
    except (OSError, ValueError):  # a damaged profile, or one that does not match the mode
        return image.convert(mode)


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"

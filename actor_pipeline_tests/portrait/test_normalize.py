"""normalize_portrait on real files crafted here: every accepted format and mode, every refusal."""

import hashlib
import io
import struct
import zlib

import pytest
from PIL import ExifTags, GifImagePlugin, Image

from actor_pipeline.errors import ConfigurationError, PortraitError
from actor_pipeline.portrait.limits import PortraitLimits
from actor_pipeline.portrait.normalize import BACKGROUND, NormalizedPortrait, normalize_portrait, sniff_format
from actor_pipeline_tests.support.images import QUADRANT_COLOURS, encode, quadrants

# sRGB primaries adapted to D50, as an ICC profile stores them.
SRGB_RED = (0.4361, 0.2225, 0.0139)
SRGB_GREEN = (0.3851, 0.7169, 0.0971)
SRGB_BLUE = (0.1431, 0.0606, 0.7141)


def decoded(portrait: NormalizedPortrait) -> Image.Image:
    image = Image.open(io.BytesIO(portrait.jpeg))
    assert image.format == "JPEG" and image.mode == "RGB"
    assert image.size == (portrait.width, portrait.height)
    return image


def assert_colour(actual: object, expected: tuple[int, ...], tolerance: int = 24) -> None:
    assert isinstance(actual, tuple)
    assert all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True)), (actual, expected)


def assert_quadrants(image: Image.Image) -> None:
    """``image`` shows ``quadrants()`` the right way up."""
    w, h = image.size
    centres = ((w // 4, h // 4), (3 * w // 4, h // 4), (w // 4, 3 * h // 4), (3 * w // 4, 3 * h // 4))
    for centre, colour in zip(centres, QUADRANT_COLOURS, strict=True):
        assert_colour(image.getpixel(centre), colour)


def png(width: int, height: int, bit_depth: int, colour_type: int, pixels: bytes) -> bytes:
    """A PNG assembled chunk by chunk, for what Pillow cannot write (48-bit RGB, bomb headers).
    ``pixels`` is one row, repeated ``height`` times."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    rows = (b"\x00" + pixels) * height if pixels else b""
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def rgb_icc_profile(red: tuple[float, ...], green: tuple[float, ...], blue: tuple[float, ...]) -> bytes:
    """A minimal ICC v2 RGB display profile (matrix + gamma 2.2) with the given primaries."""

    def xyz(values: tuple[float, ...]) -> bytes:
        return b"XYZ " + bytes(4) + struct.pack(">3i", *(round(v * 65536) for v in values))

    d50 = (0.9642, 1.0, 0.8249)
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(2.2 * 256)) + bytes(2)
    tags: tuple[tuple[bytes, bytes], ...] = (
        (b"wtpt", xyz(d50)),
        (b"rXYZ", xyz(red)),
        (b"gXYZ", xyz(green)),
        (b"bXYZ", xyz(blue)),
    )
    tags += tuple((name, curve) for name in (b"rTRC", b"gTRC", b"bTRC"))
    data_start = 128 + 4 + 12 * len(tags)
    table, data = struct.pack(">I", len(tags)), b""
    for name, body in tags:
        table += name + struct.pack(">II", data_start + len(data), len(body))
        data += body
    header = struct.pack(
        ">I4sI4s4s4s12s4s4sI4s4s8sI12s4s16s28s",
        data_start + len(data), b"none", 0x02100000, b"mntr", b"RGB ", b"XYZ ", bytes(12), b"acsp",
        bytes(4), 0, bytes(4), bytes(4), bytes(8), 0, xyz(d50)[8:], bytes(4), bytes(16), bytes(28),
    )  # fmt: skip
    return header + table + data


@pytest.mark.parametrize(
    ("image_format", "params"),
    [
        ("JPEG", {"quality": 95}),
        ("PNG", {}),
        ("WEBP", {"quality": 95}),
        ("GIF", {}),  # saved as a palette image
        ("BMP", {}),
        ("TIFF", {"compression": "tiff_lzw"}),
    ],
)
def test_every_supported_format_becomes_an_rgb_jpeg(image_format: str, params: dict[str, object]) -> None:
    data = encode(quadrants(), image_format, **params)
    portrait = normalize_portrait(data)
    assert_quadrants(decoded(portrait))
    assert (portrait.width, portrait.height) == (300, 400)
    assert portrait.source_format == image_format
    assert (portrait.source_width, portrait.source_height) == (300, 400)
    assert portrait.source_bytes == len(data)
    assert portrait.source_sha256 == hashlib.sha256(data).hexdigest()
    assert portrait.sha256 == hashlib.sha256(portrait.jpeg).hexdigest()


def test_the_same_input_gives_the_same_bytes() -> None:
    data = encode(quadrants(), "PNG")
    assert normalize_portrait(data) == normalize_portrait(data)


@pytest.mark.parametrize(
    ("orientation", "stored"),
    [
        (3, Image.Transpose.ROTATE_180),
        (6, Image.Transpose.ROTATE_90),  # phone held upright: stored sideways, shown rotated 90° clockwise
        (8, Image.Transpose.ROTATE_270),
        (2, Image.Transpose.FLIP_LEFT_RIGHT),
    ],
)
def test_exif_orientation_is_applied(orientation: int, stored: Image.Transpose) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    data = encode(quadrants().transpose(stored), "JPEG", quality=95, exif=exif)
    portrait = normalize_portrait(data)
    assert_quadrants(decoded(portrait))
    assert (portrait.source_width, portrait.source_height) == (300, 400)


def test_metadata_is_stripped() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 1
    exif[ExifTags.Base.Make] = "PhoneCo"
    exif[ExifTags.Base.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (48.0, 51.0, 30.0)}
    data = encode(quadrants(), "JPEG", exif=exif, icc_profile=rgb_icc_profile(SRGB_RED, SRGB_GREEN, SRGB_BLUE))
    assert b"PhoneCo" in data
    image = decoded(normalize_portrait(data))
    assert not image.getexif()
    assert "icc_profile" not in image.info and "exif" not in image.info
    assert b"PhoneCo" not in normalize_portrait(data).jpeg


def test_cmyk_jpeg_is_converted_to_rgb() -> None:
    cmyk = Image.new("CMYK", (300, 300), (255, 0, 0, 0))  # pure cyan ink
    cmyk.paste((0, 0, 0, 255), (0, 150, 300, 300))  # black ink on the bottom half
    data = encode(cmyk, "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    image = decoded(normalize_portrait(data))
    assert_colour(image.getpixel((150, 50)), (0, 255, 255))
    assert_colour(image.getpixel((150, 250)), (0, 0, 0))


def test_an_embedded_icc_profile_is_applied() -> None:
    # A profile whose "red" is sRGB green: only a colour-managed conversion turns red pixels green.
    swapped = rgb_icc_profile(red=SRGB_GREEN, green=SRGB_RED, blue=SRGB_BLUE)
    data = encode(Image.new("RGB", (300, 300), (255, 0, 0)), "PNG", icc_profile=swapped)
    assert_colour(decoded(normalize_portrait(data)).getpixel((10, 10)), (0, 255, 0), tolerance=8)


def test_a_damaged_icc_profile_falls_back_to_plain_conversion() -> None:
    data = encode(quadrants(), "PNG", icc_profile=b"not a profile")
    assert_quadrants(decoded(normalize_portrait(data)))


def test_lab_tiff_is_converted_colorimetrically() -> None:
    data = encode(Image.new("LAB", (300, 300), (128, 128, 128)), "TIFF")  # L* 50, a* = b* = 0: mid grey
    assert_colour(decoded(normalize_portrait(data)).getpixel((10, 10)), (119, 119, 119), tolerance=4)


@pytest.mark.parametrize(("image_format", "mode"), [("PNG", "I;16"), ("TIFF", "I;16"), ("TIFF", "I;16B")])
def test_16_bit_grey_is_scaled_not_clipped(image_format: str, mode: str) -> None:
    grey = Image.new(mode, (300, 300), 0x8000)  # half of full scale
    grey.paste(0xFFFF, (0, 0, 150, 300))
    data = encode(grey, image_format)
    assert Image.open(io.BytesIO(data)).mode == mode
    image = decoded(normalize_portrait(data))
    assert_colour(image.getpixel((225, 150)), (128, 128, 128), tolerance=3)
    assert_colour(image.getpixel((75, 150)), (255, 255, 255), tolerance=3)


def test_16_bit_rgb_png() -> None:
    pixel = struct.pack(">3H", 0xFFFF, 0x8000, 0x0000)
    image = decoded(normalize_portrait(png(300, 300, 16, 2, pixel * 300)))
    assert_colour(image.getpixel((150, 150)), (255, 128, 0), tolerance=3)


def test_float_tiff_range_is_stretched() -> None:
    gradient = Image.linear_gradient("L").resize((300, 300)).convert("F").point(lambda v: v / 255)  # 0.0 .. 1.0
    image = decoded(normalize_portrait(encode(gradient, "TIFF")))
    assert_colour(image.getpixel((150, 2)), (0, 0, 0), tolerance=8)
    assert_colour(image.getpixel((150, 297)), (255, 255, 255), tolerance=8)


def test_palette_transparency_becomes_grey_background() -> None:
    palette = quadrants().convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    transparent_index = palette.getpixel((0, 0))  # the top-left quadrant's colour
    data = encode(palette, "PNG", transparency=transparent_index)
    image = decoded(normalize_portrait(data))
    assert_colour(image.getpixel((75, 100)), BACKGROUND, tolerance=4)
    assert_colour(image.getpixel((225, 100)), QUADRANT_COLOURS[1])


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_alpha_is_flattened_onto_neutral_grey(mode: str) -> None:
    image = Image.new("RGBA", (300, 300), (255, 255, 255, 0))  # fully transparent ...
    image.paste((255, 255, 255, 255), (0, 0, 100, 300))  # ... except an opaque white band
    image.paste((255, 255, 255, 128), (100, 0, 200, 300))  # and a half-transparent one
    result = decoded(normalize_portrait(encode(image.convert(mode), "PNG")))
    assert_colour(result.getpixel((250, 150)), BACKGROUND, tolerance=3)  # grey, not black
    assert_colour(result.getpixel((50, 150)), (255, 255, 255), tolerance=3)
    assert_colour(result.getpixel((150, 150)), (192, 192, 192), tolerance=4)


def test_animated_gif_uses_the_first_frame() -> None:
    frames = [Image.new("RGB", (300, 300), colour) for colour in ((200, 0, 0), (0, 0, 200))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    gif = Image.open(io.BytesIO(data))
    assert isinstance(gif, GifImagePlugin.GifImageFile) and gif.n_frames == 2
    assert_colour(decoded(normalize_portrait(data)).getpixel((150, 150)), (200, 0, 0))


def test_large_images_are_downscaled() -> None:
    portrait = normalize_portrait(encode(quadrants(4400, 5000), "JPEG"))  # decoded at 1/2 scale, then resized
    assert (portrait.width, portrait.height) == (1802, 2048)
    assert (portrait.source_width, portrait.source_height) == (4400, 5000)
    assert_quadrants(decoded(portrait))
    small = normalize_portrait(encode(quadrants(1000, 600), "PNG"), PortraitLimits(max_side=500))
    assert (small.width, small.height) == (500, 300)


def test_bomb_header_is_refused_before_decoding() -> None:
    # 50000 x 50000 declared, no pixel data: decoding would fail differently (truncation).
    with pytest.raises(PortraitError, match="too large to decode safely"):
        normalize_portrait(png(50_000, 50_000, 8, 2, b""))
    with pytest.raises(PortraitError, match=r"8000x8000 px \(64\.0 megapixels\); the limit is 50 megapixels"):
        normalize_portrait(png(8_000, 8_000, 8, 2, b""))


def test_pillows_own_bomb_guard_is_reported_as_portrait_error() -> None:
    with pytest.raises(PortraitError, match="too large to decode safely.*decompression bomb"):
        normalize_portrait(png(50_000, 50_000, 8, 2, b""), PortraitLimits(max_pixels=10**12))


def test_too_many_bytes_are_refused() -> None:
    data = encode(quadrants(), "PNG")
    with pytest.raises(PortraitError, match=r"portrait is 0\.0 MB; the limit is 0\.0 MB: export it as a JPEG"):
        normalize_portrait(data, PortraitLimits(max_bytes=len(data) - 1))


def test_tiny_images_are_refused_with_the_reason() -> None:
    message = "portrait is 180x240 px; the short side must be at least 256 px: use a larger image"
    with pytest.raises(PortraitError, match=f"^{message}$"):
        normalize_portrait(encode(quadrants(180, 240), "PNG"))


def test_extremely_elongated_images_are_refused() -> None:
    with pytest.raises(PortraitError, match="4000x300 px, too elongated.*short side would be 154 px"):
        normalize_portrait(encode(Image.new("L", (4000, 300)), "PNG"))


def test_truncated_jpeg_is_refused() -> None:
    data = encode(quadrants(600, 800), "JPEG")
    with pytest.raises(PortraitError, match="could not be decoded as JPEG .*damaged or truncated"):
        normalize_portrait(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "portrait is empty (0 bytes): check the file or URL points at an image"),
        (
            b"\n<!DOCTYPE html><html><body>Not found</body></html>",
            "portrait looks like HTML, not an image: the URL probably points at a web page; link the image file itself",
        ),
        (b'{"error": "not found"}', "portrait looks like JSON, not an image"),
        (b'<?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>', "portrait looks like XML, not an image"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "portrait format SVG is not supported"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "portrait format HEIC is not supported"),
        (b"%PDF-1.7\n", "portrait format PDF is not supported: use JPEG, PNG, WebP, GIF, BMP or TIFF"),
        (bytes(range(256)), "portrait is not in a recognized image format: use JPEG, PNG, WebP, GIF, BMP or TIFF"),
    ],
)
def test_non_images_get_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(PortraitError) as raised:
        normalize_portrait(data)
    assert str(raised.value).startswith(message)


def test_sniff_names_the_subject() -> None:
    with pytest.raises(PortraitError, match="^portrait from https://x/a.jpg looks like HTML"):
        sniff_format(b"<html>", "portrait from https://x/a.jpg")


@pytest.mark.parametrize(
    "settings",
    [{"max_bytes": 0}, {"read_timeout_s": -1.0}, {"fetch_deadline_s": float("nan")}, {"max_redirects": -1},
     {"max_side": 200}],
)  # fmt: skip
def test_unusable_limits_are_configuration_errors(settings: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        PortraitLimits(**settings)  # type: ignore[arg-type]

"""The emulated ``black-forest-labs/flux-kontext-pro``: its input schema and its (cheap) output."""

import base64
import binascii
import hashlib
import io
import math
import random
from collections.abc import Callable, Collection, Mapping

from PIL import Image, ImageDraw

MODEL = "black-forest-labs/flux-kontext-pro"
ASPECT_RATIOS = (
    "match_input_image", "1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "4:5", "5:4", "21:9", "9:21", "2:1", "1:2",
)  # fmt: skip
OUTPUT_FORMATS = ("jpg", "png")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
# Sizes BFL documents; other ratios are approximated at ~1 MP in multiples of 16.
_KNOWN_SIZES = {"16:9": (1392, 752), "9:16": (752, 1392), "1:1": (1024, 1024)}

# Resolves a file URL to (content type, bytes), or None if no such file.
FileLookup = Callable[[str], tuple[str, bytes] | None]


def validate_input(input_: object, find_file: FileLookup, max_inline_bytes: int) -> list[dict[str, str]]:
    """The ``invalid_fields`` Replicate would report for ``input_`` (empty if valid).

    Stricter than confirmed behaviour in two places, so that a client relying on them is caught:
    a data URI above the documented 256 KB and ``safety_tolerance`` above 2 with an input image
    are refused.
    """
    if not isinstance(input_, Mapping):
        return missing_input()
    problems = additional_properties(input_, _CHECKS)
    if "prompt" not in input_:
        problems.append(invalid_field("required", "input", "prompt is required"))
    for key, check in _CHECKS.items():
        if key in input_ and (message := check(input_[key], find_file, max_inline_bytes)):
            problems.append(invalid_field("invalid", f"input.{key}", message))
    tolerance = input_.get("safety_tolerance")
    if input_.get("input_image") and isinstance(tolerance, int) and tolerance > 2:
        problems.append(
            invalid_field(
                "maximum",
                "input.safety_tolerance",
                "safety_tolerance must be less than or equal to 2 when input_image is provided",
            )
        )
    return problems


def decode_data_uri(uri: str) -> tuple[str, bytes] | None:
    """(media type, bytes) of a base64 data URI, or None if it is not one."""
    header, sep, encoded = uri.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        return None
    try:
        return header[5:-7], base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None


def resolve_image(value: str, find_file: FileLookup) -> tuple[str, bytes] | None:
    """(media type, bytes) behind an ``input_image`` that is a data URI or an uploaded file's URL."""
    return decode_data_uri(value) if value.startswith("data:") else find_file(value)


def output_size(aspect_ratio: str, input_size: tuple[int, int] | None) -> tuple[int, int]:
    """The output dimensions for ``aspect_ratio`` (``match_input_image`` follows the input)."""
    if aspect_ratio in _KNOWN_SIZES:
        return _KNOWN_SIZES[aspect_ratio]
    if aspect_ratio == "match_input_image":
        ratio = input_size[0] / input_size[1] if input_size else 1.0
    else:
        w, h = aspect_ratio.split(":")
        ratio = int(w) / int(h)
    width = math.sqrt(1024 * 1024 * ratio)
    return round(width / 16) * 16, round(width / ratio / 16) * 16


# Words of the pipeline's black-and-white shots: a real model draws those without colour.
_MONOCHROME_WORDS = ("black and white", "monochrome", "pen and ink", "graphite", "charcoal", "woodcut", "screentone")


def render(
    size: tuple[int, int],
    seed: object,
    prompt: str,
    output_format: str,
    *,
    near_identical: bool = False,
    colour_leak: bool = False,
) -> bytes:
    """A picture that depends only on seed and prompt (the same inputs give the same bytes, a
    different seed a different picture), made like a model's output as far as the pipeline's
    quality checks go: sharp shapes over a gradient, in colour unless the prompt asks for black
    and white (or ``colour_leak``). ``near_identical``: one picture, in colour, whatever the seed
    and prompt, but for a small mark the seed moves, as an editing model handing its input back
    barely changed."""
    rng = random.Random(hashlib.sha256(b"same" if near_identical else f"{seed}\x00{prompt}".encode()).digest())
    width, height = size
    top, bottom = (tuple(rng.randrange(256) for _ in range(3)) for _ in range(2))
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    image = Image.composite(Image.new("RGB", size, top), Image.new("RGB", size, bottom), image.convert("L"))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = rng.randrange(width), rng.randrange(height)
        w, h = rng.randrange(20, width // 3), rng.randrange(20, height // 3)
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x, y, x + w, y + h), fill=colour, outline=(0, 0, 0), width=3)
    if near_identical:
        mark = random.Random(str(seed))
        x, y = mark.randrange(width - 16), mark.randrange(height - 16)
        draw.rectangle((x, y, x + 16, y + 16), fill=(255, 255, 255))
    elif not colour_leak and any(word in prompt.lower() for word in _MONOCHROME_WORDS):
        image = image.convert("L").convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "PNG" if output_format == "png" else "JPEG", **({} if output_format == "png" else {"quality": 90}))
    return buffer.getvalue()


def image_size(data: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except OSError:
        return None


def invalid_field(kind: str, field: str, description: str) -> dict[str, str]:
    """One of the ``invalid_fields`` of a 422, as Replicate words them."""
    return {"type": kind, "field": field, "description": description}


def missing_input() -> list[dict[str, str]]:
    """The ``invalid_fields`` of a request whose input is not an object."""
    return [invalid_field("required", "input", "input is required")]


def additional_properties(input_: Mapping[str, object], allowed: Collection[str]) -> list[dict[str, str]]:
    """Each property of ``input_`` that the model's schema (its fields ``allowed``) does not have."""
    return [
        invalid_field("additional_property", f"input.{key}", f"Additional property {key} is not allowed")
        for key in input_
        if key not in allowed
    ]


def _check_prompt(value: object, *_: object) -> str | None:
    return None if isinstance(value, str) and value.strip() else "prompt must be a non-empty string"


def _check_image(value: object, find_file: FileLookup, max_inline_bytes: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        return "input_image must be a URI"
    resolved = resolve_image(value, find_file)
    if resolved is None:
        if value.startswith("data:"):
            return "input_image is not a valid base64 data URI"
        if "/v1/files/" in value:
            return "input_image refers to a file that does not exist (it was deleted, or it expired)"
        # A hosted file the emulator cannot fetch is taken on trust.
        return None if value.startswith(("https://", "http://")) else "input_image must be a URI"
    media_type, data = resolved
    if value.startswith("data:") and len(data) > max_inline_bytes:
        return f"input_image data URI holds {len(data)} bytes; upload files over {max_inline_bytes} bytes"
    if media_type not in IMAGE_TYPES or image_size(data) is None:
        return "Must be jpeg, png, gif, or webp."
    return None


def _enum(name: str, allowed: tuple[str, ...]) -> Callable[..., str | None]:
    def check(value: object, *_: object) -> str | None:
        if value in allowed:
            return None
        return f"{name} must be one of the following: " + ", ".join(f'"{a}"' for a in allowed)

    return check


def _check_tolerance(value: object, *_: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6:
        return None
    return "safety_tolerance must be an integer from 0 to 6"


def _check_seed(value: object, *_: object) -> str | None:
    return (
        None if value is None or (isinstance(value, int) and not isinstance(value, bool)) else "seed must be an integer"
    )


def _check_bool(value: object, *_: object) -> str | None:
    return None if isinstance(value, bool) else "prompt_upsampling must be a boolean"


_CHECKS: dict[str, Callable[[object, FileLookup, int], str | None]] = {
    "prompt": _check_prompt,
    "input_image": _check_image,
    "aspect_ratio": _enum("aspect_ratio", ASPECT_RATIOS),
    "prompt_upsampling": _check_bool,
    "seed": _check_seed,
    "output_format": _enum("output_format", OUTPUT_FORMATS),
    "safety_tolerance": _check_tolerance,
}

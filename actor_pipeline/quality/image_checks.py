"""Checks on one image: size, blank, sharpness, monochrome or colour. Numpy and Pillow only."""

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from actor_pipeline.errors import PipelineError
from actor_pipeline.quality.model import CheckName, CheckResult, Outcome
from actor_pipeline.quality.settings import DEFAULT_THRESHOLDS, QualityThresholds

ImageInput = bytes | Image.Image

# Colour statistics are taken on a thumbnail about this wide: plenty for fractions of pixels,
# and 16x fewer pixels to convert than the full 1392x752 frame.
_THUMBNAIL_WIDTH = 348


class UnreadableImage(PipelineError, ValueError):
    """The bytes are not an image Pillow can decode."""


def load_image(data: ImageInput) -> Image.Image:
    """``data`` as a decoded RGB image."""
    if isinstance(data, Image.Image):
        return data if data.mode == "RGB" else data.convert("RGB")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            # A decoded RGB image (every JPEG the model returns) is used as it is: no copy.
            return image if image.mode == "RGB" else image.convert("RGB")
    except UnidentifiedImageError as exc:  # its message names the buffer's address: useless, and never the same
        raise UnreadableImage("not a readable image: not in any format Pillow decodes") from exc
    except (OSError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(f"not a readable image: {exc}") from exc


def make_result(
    check: CheckName,
    passed: bool,
    measured: dict[str, float],
    threshold: dict[str, float],
    reason: str,
    thresholds: QualityThresholds,
) -> CheckResult:
    return CheckResult(
        check=check,
        outcome=Outcome.PASSED if passed else Outcome.FAILED,
        measured=measured,
        threshold=threshold,
        reason=reason,
        blocking=check in thresholds.blocking,
    )


def not_measured(check: CheckName, reason: str) -> CheckResult:
    return CheckResult(check=check, outcome=Outcome.NOT_MEASURED, reason=reason)


def check_size(image: ImageInput, thresholds: QualityThresholds = DEFAULT_THRESHOLDS) -> CheckResult:
    """Width, height and aspect ratio each within ``size_tolerance`` of ``expected_size``."""
    width, height = load_image(image).size
    want_w, want_h = thresholds.expected_size
    tol = thresholds.size_tolerance
    aspect, want_aspect = width / height, want_w / want_h
    passed = all(abs(got / want - 1) <= tol for got, want in ((width, want_w), (height, want_h), (aspect, want_aspect)))
    return make_result(
        CheckName.SIZE,
        passed,
        {"width": width, "height": height, "aspect": round(aspect, 4)},
        {"width": want_w, "height": want_h, "aspect": round(want_aspect, 4), "tolerance": tol},
        f"{width}x{height}" + (" as requested" if passed else f", expected {want_w}x{want_h} (within {tol:.0%})"),
        thresholds,
    )


def check_blank(image: ImageInput, thresholds: QualityThresholds = DEFAULT_THRESHOLDS) -> CheckResult:
    """Fails a flat frame: luminance standard deviation too small. Taken at full size from the
    histogram, so the thin lines of a sparse ink drawing count (a thumbnail would average them
    into the paper, and a 1-99 percentile spread never sees ink under 1% of the frame)."""
    counts = np.array(load_image(image).convert("L").histogram(), dtype=np.float64)
    levels = np.arange(256)
    mean = (counts * levels).sum() / counts.sum()
    std = float(np.sqrt((counts * (levels - mean) ** 2).sum() / counts.sum()))
    passed = std >= thresholds.min_luma_std
    return make_result(
        CheckName.BLANK,
        passed,
        {"luma_std": round(std, 2)},
        {"min_luma_std": thresholds.min_luma_std},
        f"{'varied' if passed else 'flat'}: luminance std {std:.1f} (min {thresholds.min_luma_std:g})",
        thresholds,
    )


def check_sharpness(image: ImageInput, thresholds: QualityThresholds = DEFAULT_THRESHOLDS) -> CheckResult:
    """Edge sharpness: a high percentile, over the tiles that hold edges, of each tile's
    sqrt(var(Laplacian) / mean squared gradient). Dividing by the gradient makes it independent of
    contrast, so the black lines of an ink drawing and the soft edges of a photo share one
    threshold; a blur of sigma pixels scores about 1/sigma wherever the edges are."""
    laplacian, gradient = _laplacian_and_gradient(np.asarray(load_image(image).convert("L")))
    lap_var = _per_tile(laplacian, thresholds.sharpness_tile, "var")
    grad_sq = _per_tile(gradient, thresholds.sharpness_tile, "mean")
    edges = grad_sq >= thresholds.sharpness_edge_floor**2
    ratios = np.sqrt(lap_var[edges] / grad_sq[edges])
    score = float(np.percentile(ratios, thresholds.sharpness_percentile)) if ratios.size else 0.0
    measured = {
        "sharpness": round(score, 3),
        "edge_tiles": int(edges.sum()),
        # The plain statistic (landscape.md's A4: p90 over all tiles), for comparison only: it
        # scores flat vector art below blurred woodcuts, so it cannot be the threshold here.
        "laplacian_var_p90": round(float(np.percentile(lap_var, 90)), 1) if lap_var.size else 0.0,
    }
    passed = score >= thresholds.min_sharpness
    if not ratios.size:
        reason = (
            f"no edges: no {thresholds.sharpness_tile}px tile reaches gradient RMS {thresholds.sharpness_edge_floor:g}"
        )
    else:
        reason = (
            f"{'sharp' if passed else 'blurred'}: edge sharpness {score:.2f} (min {thresholds.min_sharpness:g}) "
            f"over {int(edges.sum())} edge tiles"
        )
    return make_result(
        CheckName.SHARPNESS, passed, measured, {"min_sharpness": thresholds.min_sharpness}, reason, thresholds
    )


def check_monochrome(image: ImageInput, thresholds: QualityThresholds = DEFAULT_THRESHOLDS) -> CheckResult:
    """For black-and-white shots: at most ``max_color_leak`` of the pixels carry colour."""
    fraction = _colored_fraction(load_image(image), thresholds.chroma_threshold)
    passed = fraction <= thresholds.max_color_leak
    verdict = "monochrome" if passed else "colour leak"
    return _tone(CheckName.MONOCHROME, passed, verdict, fraction, ("max", thresholds.max_color_leak), thresholds)


def check_color(image: ImageInput, thresholds: QualityThresholds = DEFAULT_THRESHOLDS) -> CheckResult:
    """For colour shots: at least ``min_color_fraction`` of the pixels carry colour."""
    fraction = _colored_fraction(load_image(image), thresholds.chroma_threshold)
    passed = fraction >= thresholds.min_color_fraction
    verdict = "in colour" if passed else "not in colour"
    return _tone(CheckName.COLOR, passed, verdict, fraction, ("min", thresholds.min_color_fraction), thresholds)


def _tone(
    check: CheckName,
    passed: bool,
    verdict: str,
    fraction: float,
    bound: tuple[str, float],
    thresholds: QualityThresholds,
) -> CheckResult:
    """A colour-fraction check's result; ``bound`` is ("max" or "min", the allowed fraction)."""
    side, limit = bound
    return make_result(
        check,
        passed,
        {"colored_fraction": round(fraction, 5)},
        {"chroma": thresholds.chroma_threshold, f"{side}_colored_fraction": limit},
        f"{verdict}: {fraction:.1%} of pixels have chroma above {thresholds.chroma_threshold:g} ({side} {limit:.1%})",
        thresholds,
    )


def srgb_to_lab(image: Image.Image) -> np.ndarray:
    """CIELAB (D65) of an RGB image, shape (height, width, 3)."""
    linear = _SRGB_TO_LINEAR[np.asarray(image.convert("RGB"))]
    xyz = linear @ _LINEAR_TO_XYZ_OVER_WHITE.T
    f = np.where(xyz > _LAB_EPSILON, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def _thumbnail(image: Image.Image) -> Image.Image:
    return image.reduce(max(1, image.width // _THUMBNAIL_WIDTH))


def _colored_fraction(image: Image.Image, chroma_threshold: float) -> float:
    lab = srgb_to_lab(_thumbnail(image))
    return float((np.hypot(lab[..., 1], lab[..., 2]) > chroma_threshold).mean())


def _laplacian_and_gradient(luma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 4-neighbour Laplacian and the squared central-difference gradient of the inner pixels
    of an 8-bit ``luma``, in float32, computed in place: every value is an integer or a quarter
    of one well inside float32's exact range, so this equals the plain formulas (the gradient
    being (dx/2)^2 + (dy/2)^2) bit for bit, with two full-frame arrays allocated instead of nine."""
    centre = luma[1:-1, 1:-1]
    laplacian = np.add(luma[:-2, 1:-1], luma[2:, 1:-1], dtype=np.float32)
    laplacian += luma[1:-1, :-2]
    laplacian += luma[1:-1, 2:]
    for _ in range(4):
        laplacian -= centre
    grad_sq = np.subtract(luma[1:-1, 2:], luma[1:-1, :-2], dtype=np.float32)
    grad_sq *= grad_sq
    grad_y = np.subtract(luma[2:, 1:-1], luma[:-2, 1:-1], dtype=np.float32)
    grad_y *= grad_y
    grad_sq += grad_y
    grad_sq *= 0.25
    return laplacian, grad_sq


def _per_tile(values: np.ndarray, tile: int, stat: str) -> np.ndarray:
    """``stat`` ("mean" or "var") of each whole ``tile`` x ``tile`` block, flattened."""
    rows, cols = values.shape[0] // tile, values.shape[1] // tile
    blocks = values[: rows * tile, : cols * tile].reshape(rows, tile, cols, tile)
    return getattr(blocks, stat)(axis=(1, 3)).ravel()


_SRGB_TO_LINEAR = np.array(
    [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in np.arange(256) / 255], dtype=np.float32
)
_LINEAR_TO_XYZ_OVER_WHITE = (
    np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    / np.array([[0.95047], [1.0], [1.08883]])
).astype(np.float32)
_LAB_EPSILON = (6 / 29) ** 3

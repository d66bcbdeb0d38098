"""Near-duplicates within one actor's set: perceptual hashes (``imagehash``) plus a colour guard."""

import itertools
from collections.abc import Mapping

import imagehash
import numpy as np
from PIL import Image

from actor_pipeline.quality.image_checks import ImageInput, load_image, make_result, srgb_to_lab
from actor_pipeline.quality.model import CheckName, CheckResult, DuplicatePair, Fingerprint, pack, unpack
from actor_pipeline.quality.settings import DEFAULT_THRESHOLDS, QualityThresholds

_THUMBNAIL = (32, 18)  # 16:9, coarse enough to ignore grain and JPEG noise


def fingerprint(image: ImageInput) -> Fingerprint:
    rgb = load_image(image)
    thumbnail = np.asarray(rgb.resize(_THUMBNAIL, Image.Resampling.BOX))
    gray = rgb.convert("L")  # both hashes start with this conversion: made once, not twice
    return Fingerprint(
        phash=str(imagehash.phash(gray)), dhash=str(imagehash.dhash(gray)), thumbnail=pack(thumbnail, "u1")
    )


def distance(a: Fingerprint, b: Fingerprint) -> tuple[int, float]:
    """(pHash + dHash Hamming distance, mean delta E of the thumbnails)."""
    return _distance(a, b, _lab(a), _lab(b))


def _distance(a: Fingerprint, b: Fingerprint, lab_a: np.ndarray, lab_b: np.ndarray) -> tuple[int, float]:
    hashes = _hamming(a.phash, b.phash) + _hamming(a.dhash, b.dhash)
    return hashes, float(np.linalg.norm(lab_a - lab_b, axis=-1).mean())


def _hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _lab(print_: Fingerprint) -> np.ndarray:
    return srgb_to_lab(Image.fromarray(unpack(print_.thumbnail, "u1").reshape(_THUMBNAIL[1], _THUMBNAIL[0], 3)))


def check_near_duplicates(
    fingerprints: Mapping[str, Fingerprint], thresholds: QualityThresholds = DEFAULT_THRESHOLDS
) -> tuple[dict[str, CheckResult], tuple[DuplicatePair, ...]]:
    """Per-shot results and the near-duplicate pairs, for shots in the mapping's order.

    A pair is near-duplicate when both its structure and its colours match. The later shot of a
    pair fails and the earlier one passes, so one regeneration resolves it.
    """
    labs = {shot: _lab(print_) for shot, print_ in fingerprints.items()}  # once per shot, not per pair
    distances = {
        (a, b): _distance(fingerprints[a], fingerprints[b], labs[a], labs[b])
        for a, b in itertools.combinations(fingerprints, 2)
    }
    pairs = tuple(
        DuplicatePair(first=a, second=b, hash_distance=hashes, color_difference=round(color, 2))
        for (a, b), (hashes, color) in distances.items()
        if hashes <= thresholds.max_hash_distance and color <= thresholds.max_duplicate_color_difference
    )
    limits = {
        "max_hash_distance": thresholds.max_hash_distance,
        "max_color_difference": thresholds.max_duplicate_color_difference,
    }
    results = {}
    for shot in fingerprints:
        others = {b if a == shot else a: d for (a, b), d in distances.items() if shot in (a, b)}
        if not others:
            results[shot] = make_result(
                CheckName.NEAR_DUPLICATE, True, {}, limits, "no other shot to compare", thresholds
            )
            continue
        nearest = min(others, key=lambda other: others[other])
        hashes, color = others[nearest]
        measured = {"hash_distance": hashes, "color_difference": round(color, 2)}
        earlier = [pair.first for pair in pairs if pair.second == shot]
        later = [pair.second for pair in pairs if pair.first == shot]
        if earlier:
            reason = f"near-duplicate of {', '.join(earlier)}"
        elif later:
            reason = f"kept; near-duplicated by {', '.join(later)}"
        else:
            reason = f"distinct: nearest is {nearest} (hash distance {hashes}, delta E {color:.1f})"
        results[shot] = make_result(CheckName.NEAR_DUPLICATE, not earlier, measured, limits, reason, thresholds)
    return results, pairs

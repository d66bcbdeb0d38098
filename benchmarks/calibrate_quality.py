"""Calibrate the quality checks' thresholds (actor_pipeline/quality).

For each check, measures images that must pass and images that must fail and prints, as Markdown,
each group's range, the default threshold, its margin on both sides and any image on the wrong
side. ``actor_pipeline/quality/CALIBRATION.md`` is this output with its commentary.

Images: the offline preview of all 17 catalog shots (as the PreviewBackend encodes them) for
``--seeds`` seed sets, the Replicate emulator's renders, crafted line drawings and a synthetic
photo, scikit-image's bundled public-domain photos when scikit-image is installed (it is not a
dependency), and degraded copies of all of these. Identity figures need the faces extra.

    .venv/bin/python -m benchmarks.calibrate_quality [--seeds 3]
"""

import argparse
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from PIL import Image, ImageEnhance, ImageOps

from actor_pipeline.catalog.model import Category, load_catalog
from actor_pipeline.generation.preview_backend import JPEG_QUALITY
from actor_pipeline.quality import (
    DEFAULT_THRESHOLDS,
    CheckResult,
    FacesUnavailable,
    check_blank,
    check_color,
    check_monochrome,
    check_sharpness,
    check_size,
    fingerprint,
    load_face_analyzer,
)
from actor_pipeline.quality.duplicates import distance
from actor_pipeline.quality.faces import upsample_levels
from actor_pipeline.render.preview import render_preview
from actor_pipeline.samples import SAMPLE_PORTRAIT
from actor_pipeline_tests.quality import crafted
from actor_pipeline_tests.replicate_emulator import flux

T = DEFAULT_THRESHOLDS
COLOUR_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field")  # the others are greyscale
Images = dict[str, Image.Image]


@dataclass
class Group:
    label: str
    expect: str  # "pass", "fail" or "info" (shown, not a calibration target)
    images: Images


def encoded(image: Image.Image, quality: int = JPEG_QUALITY) -> Image.Image:
    return crafted.decoded(crafted.jpeg(image, quality))


def previews(portrait: Image.Image, seeds: int) -> list[dict[str, tuple[Category, Image.Image]]]:
    shots = load_catalog().shots
    return [
        {s.id: (s.category, encoded(render_preview(portrait, s.preview, 1000 * run + s.index))) for s in shots}
        for run in range(seeds)
    ]


def skimage_photos() -> Images:
    try:
        from skimage import data
    except ImportError:
        print("_scikit-image not installed: no real photos (pip install scikit-image to add them)._\n")
        return {}
    names = (*COLOUR_PHOTOS, "camera", "page", "text", "brick", "grass")
    return {name: Image.fromarray(getattr(data, name)()).convert("RGB") for name in names}


def table(
    check: Callable[[Image.Image], CheckResult],
    key: str,
    threshold: float,
    groups: Iterable[Group],
    higher_passes: bool = True,
) -> None:
    """One row per group (``key`` measured by ``check``, compared with ``threshold``), then the
    threshold's distance to the closest must-pass and must-fail images."""
    print("| group | expect | n | min | max | on the wrong side of the threshold |\n|---|---|---|---|---|---|")
    closest: dict[str, list[tuple[float, str]]] = {"pass": [], "fail": []}  # (distance, description)
    for group in groups:
        if not group.images:  # scikit-image not installed
            continue
        values = {name: check(image).measured[key] for name, image in group.images.items()}
        passes = {name: value >= threshold if higher_passes else value <= threshold for name, value in values.items()}
        lo, hi = min(values, key=values.__getitem__), max(values, key=values.__getitem__)
        if group.expect == "info":
            wrong = f"{sum(not ok for ok in passes.values())} of {len(values)} fail"
        else:
            misses = [f"{name} ({values[name]:g})" for name, ok in passes.items() if ok != (group.expect == "pass")]
            wrong = ", ".join(misses) or "none"
            closest[group.expect] += [
                (abs(v - threshold), f"{name} {v:g} ({group.label})") for name, v in values.items()
            ]
        print(
            f"| {group.label} | {group.expect} | {len(values)} | {values[lo]:g} ({lo}) | {values[hi]:g} ({hi}) | {wrong} |"
        )
    margins = [f"must-{side} {min(found)[1]}" for side, found in closest.items() if found]
    print(f"\nThreshold {threshold:g}. Closest: {'; '.join(margins)}.\n")


def calibrate_size(runs: list[dict[str, tuple[Category, Image.Image]]]) -> None:
    print(f"## size: within {T.size_tolerance:.0%} of {T.expected_size[0]}x{T.expected_size[1]}\n")
    cases = {
        "preview 1392x752": runs[0]["pen_ink"][1],
        "1392x784 (exact 16:9)": crafted.flat(size=(1392, 784)),
        "1024x576 (16:9, smaller)": crafted.flat(size=(1024, 576)),
        "1024x1024": crafted.flat(size=(1024, 1024)),
        "1400x756 (+0.6%)": crafted.flat(size=(1400, 756)),
    }
    print("| image | aspect | outcome |\n|---|---|---|")
    for name, image in cases.items():
        result = check_size(image)
        print(f"| {name} | {result.measured['aspect']:g} | {result.outcome.value} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="preview seed sets (near-duplicate false positives)")
    args = parser.parse_args()
    with Image.open(SAMPLE_PORTRAIT) as image:
        portrait = image.convert("RGB")
    runs = previews(portrait, args.seeds)
    first = runs[0]
    photos = skimage_photos()
    by_category = {c: {k: im for k, (cat, im) in first.items() if cat is c} for c in Category}
    all_previews = {k: im for k, (_, im) in first.items()}
    colour_previews = by_category[Category.PHOTOREAL] | by_category[Category.COLOR_STYLIZED]
    bw_previews = by_category[Category.BW_STYLIZED]
    lines = {f"line {w}px": encoded(crafted.line_drawing(w)) for w in (1, 2, 4)}
    synthetic = {"noise photo": encoded(crafted.noise_photo())}
    emulator = {f"emulator {s.id}": (s.category, crafted.decoded(flux.render((1392, 752), 7, s.prompt("person"), "jpg"))) for s in load_catalog().shots}  # fmt: skip
    emulator_bw = {k: im for k, (c, im) in emulator.items() if c is Category.BW_STYLIZED}
    emulator_colour = {k: im for k, (c, im) in emulator.items() if c is not Category.BW_STYLIZED}
    sharp_sources = all_previews | photos | lines | synthetic | emulator_bw | emulator_colour

    calibrate_size(runs)

    print(f"## blank: luminance std >= {T.min_luma_std:g}\n")
    table(
        check_blank,
        "luma_std",
        T.min_luma_std,
        [
            Group("previews", "pass", all_previews),
            Group("photos (scikit-image)", "pass", photos),
            Group("line drawings", "pass", lines),
            Group("emulator renders", "pass", emulator_bw | emulator_colour),
            Group(
                "flat / near-black",
                "fail",
                {
                    "flat grey": encoded(crafted.flat()),
                    "flat white": encoded(crafted.flat((255, 255, 255))),
                    "solid colour": encoded(crafted.flat((200, 40, 90))),
                    "portrait at 3% brightness": encoded(crafted.brightened(portrait, 0.03)),
                },
            ),
        ],
    )

    print(
        f"## sharpness: p{T.sharpness_percentile:g} over edge tiles ({T.sharpness_tile}px, gradient RMS >= "
        f"{T.sharpness_edge_floor:g}) of sqrt(var(Laplacian) / mean gradient^2) >= {T.min_sharpness:g}\n"
    )
    blur = {s: {f"{k} s{s}": encoded(crafted.blurred(v, s)) for k, v in sharp_sources.items()} for s in (1, 1.5, 2, 3)}
    groups = [
        Group("previews", "pass", all_previews),
        Group("previews, JPEG q70", "pass", {k: encoded(v, 70) for k, v in all_previews.items()}),
        Group("photos (scikit-image)", "pass", photos),
        Group("line drawings, synthetic photo", "pass", lines | synthetic),
        Group("emulator renders", "pass", emulator_bw | emulator_colour),
        Group("all of those, Gaussian sigma 3", "fail", blur[3]),
        Group("all of those, sigma 2", "info", blur[2]),
        Group("all of those, sigma 1.5", "info", blur[1.5]),
        Group("all of those, sigma 1", "info", blur[1]),
        Group("previews, 3x downscaled and upscaled", "info", {
            k: encoded(v.resize((v.width // 3, v.height // 3), Image.Resampling.LANCZOS).resize(v.size, Image.Resampling.BICUBIC))
            for k, v in all_previews.items()
        }),
    ]  # fmt: skip
    table(check_sharpness, "sharpness", T.min_sharpness, groups)
    print(
        "The plain statistic on the same images, with A4's threshold of 150 (landscape.md): p90 over all tiles of var(Laplacian):\n"
    )
    table(check_sharpness, "laplacian_var_p90", 150, [groups[0], groups[3], groups[5], groups[6]])

    print(
        f"## monochrome: at most {T.max_color_leak:.1%} of pixels with CIELAB chroma > {T.chroma_threshold:g} "
        f"(black-and-white shots)\n"
    )
    sepia = {f"{k} sepia": encoded(ImageOps.colorize(v.convert("L"), (40, 26, 13), (255, 240, 192))) for k, v in bw_previews.items()}  # fmt: skip
    table(
        check_monochrome,
        "colored_fraction",
        T.max_color_leak,
        [
            Group("B&W previews, all seed sets", "pass", {f"{k}/{n}": im for n, run in enumerate(runs) for k, (c, im) in run.items() if c is Category.BW_STYLIZED}),
            Group("emulator renders of B&W shots", "pass", emulator_bw),
            Group("B&W previews on cream paper (245,238,220)", "pass", {k: encoded(crafted.on_paper(v, (245, 238, 220))) for k, v in bw_previews.items()}),
            Group("B&W previews, cool cast (blend 5% blue)", "pass", {k: encoded(crafted.tinted(v, (40, 80, 255), 0.05)) for k, v in bw_previews.items()}),
            Group("B&W previews, red tint (blend 20% red)", "fail", {k: encoded(crafted.tinted(v, (255, 0, 0), 0.2)) for k, v in bw_previews.items()}),
            Group("B&W previews, sepia", "fail", sepia),
            Group("B&W previews + red patch on 1% of the frame", "fail", {k: encoded(crafted.with_patch(v, 0.01)) for k, v in bw_previews.items()}),
            Group("colour previews (a B&W shot came out in colour)", "fail", colour_previews),
            Group("B&W previews, red tint (blend 10% red)", "info", {k: encoded(crafted.tinted(v, (255, 0, 0), 0.1)) for k, v in bw_previews.items()}),
        ],
        higher_passes=False,
    )  # fmt: skip

    print(f"## color: at least {T.min_color_fraction:.0%} of pixels with chroma > {T.chroma_threshold:g} (photoreal and colour-stylized shots)\n")  # fmt: skip
    table(
        check_color,
        "colored_fraction",
        T.min_color_fraction,
        [
            Group("photoreal + colour previews, all seed sets", "pass", {f"{k}/{n}": im for n, run in enumerate(runs) for k, (c, im) in run.items() if c is not Category.BW_STYLIZED}),
            Group("colour photos (scikit-image)", "pass", {k: v for k, v in photos.items() if k in COLOUR_PHOTOS}),
            Group("emulator renders of colour shots", "pass", emulator_colour),
            Group("colour previews in greyscale", "fail", {k: encoded(v.convert("L")) for k, v in colour_previews.items()}),
            Group("B&W previews", "fail", bw_previews),
            Group("B&W previews + red patch on 1%", "fail", {k: encoded(crafted.with_patch(v, 0.01)) for k, v in bw_previews.items()}),
            Group("colour previews at 30% saturation", "info", {k: encoded(ImageEnhance.Color(v).enhance(0.3)) for k, v in colour_previews.items()}),
        ],
    )  # fmt: skip

    calibrate_duplicates(runs, portrait)
    calibrate_identity(portrait, photos)


def calibrate_duplicates(runs: list[dict[str, tuple[Category, Image.Image]]], portrait: Image.Image) -> None:
    print(
        f"## near_duplicate: pHash + dHash distance <= {T.max_hash_distance} and thumbnail delta E <= "
        f"{T.max_duplicate_color_difference:g}\n"
    )

    def flagged(hashes: int, color: float) -> bool:
        return hashes <= T.max_hash_distance and color <= T.max_duplicate_color_difference

    distinct = []
    for run in runs:
        prints = {k: fingerprint(im) for k, (_, im) in run.items()}
        distinct += [(*distance(prints[a], prints[b]), a, b) for a, b in itertools.combinations(prints, 2)]
    distinct.sort()
    wrong = [f"{a}~{b} ({h}, {c:.1f})" for h, c, a, b in distinct if flagged(h, c)]
    print(
        f"Distinct shots: {len(distinct)} pairs over {len(runs)} preview seed sets; flagged: {', '.join(wrong) or 'none'}."
    )
    print(
        "Closest pairs by hash distance (hash, delta E):",
        "; ".join(f"{a}~{b} {h}, {c:.1f}" for h, c, a, b in distinct[:5]),
    )
    by_color = sorted(distinct, key=lambda d: d[1])[:3]
    print("Closest pairs by colour:", "; ".join(f"{a}~{b} {h}, {c:.1f}" for h, c, a, b in by_color), "\n")

    first = {k: im for k, (_, im) in runs[0].items()}
    shots = {s.id: s for s in load_catalog().shots}
    variants: dict[str, Callable[[Image.Image], Image.Image]] = {
        "re-encoded JPEG q50": lambda v: encoded(v, 50),
        "brightness x1.15": lambda v: crafted.brightened(v, 1.15),
        "brightness x0.87": lambda v: crafted.brightened(v, 0.87),
        "contrast x1.1": lambda v: ImageEnhance.Contrast(v).enhance(1.1),
        "half size": lambda v: v.resize((v.width // 2, v.height // 2)),
        "Gaussian sigma 1": lambda v: crafted.blurred(v, 1),
        "cropped 1%": lambda v: crafted.cropped(v, 0.01),
        "cropped 2%": lambda v: crafted.cropped(v, 0.02),
        "saturation x0.5": lambda v: ImageEnhance.Color(v).enhance(0.5),
    }
    print("| copy of each preview shot | caught | max hash distance | max delta E |\n|---|---|---|---|")
    for label, make in variants.items():
        pairs = [distance(fingerprint(v), fingerprint(make(v))) for v in first.values()]
        caught = sum(flagged(*pair) for pair in pairs)
        print(f"| {label} | {caught}/{len(pairs)} | {max(h for h, _ in pairs)} | {max(c for _, c in pairs):.1f} |")
    same_look = [
        distance(fingerprint(v), fingerprint(encoded(render_preview(portrait, shots[k].preview, 99))))
        for k, v in first.items()
    ]
    print(
        f"| same look, another seed (info) | {sum(flagged(*p) for p in same_look)}/{len(same_look)} | "
        f"{max(h for h, _ in same_look)} | {max(c for _, c in same_look):.1f} |\n"
    )


def calibrate_identity(portrait: Image.Image, photos: Images) -> None:
    print(
        f"## identity: dlib descriptor distance to the portrait <= {T.identity_max_distance_photoreal:g} "
        f"(photoreal), {T.identity_max_distance_stylized:g} (stylized, never blocks)\n"
    )
    try:
        analyzer = load_face_analyzer()
    except FacesUnavailable as exc:
        print(f"_Not measured: {exc}._\n")
        return
    subjects = {"sample portrait (painted man)": portrait}
    if "astronaut" in photos:
        subjects["scikit-image astronaut (photo, woman)"] = photos["astronaut"]
    faces = {name: analyzer.find_portrait_face(image) for name, image in subjects.items()}
    if len(faces) == 2:
        a, b = faces.values()
        if a and b:
            print(f"Different people, portrait to portrait: {a.distance(b):.3f}\n")
    print(
        "| renders of | category | same person (to own portrait) | other person (to the other portrait) | no face found |\n|---|---|---|---|---|"
    )
    for name, image in subjects.items():
        own = faces[name]
        other = next((f for n, f in faces.items() if n != name), None)
        rendered = previews(image, 1)[0]
        for category in Category:
            same, cross, missing = [], [], []
            for shot, (cat, im) in rendered.items():
                if cat is not category:
                    continue
                face = analyzer.find_face(im, upsample_levels(cat))
                if face is None or own is None:
                    missing.append(shot)
                    continue
                same.append(face.distance(own))
                if other is not None:
                    cross.append(face.distance(other))
            print(f"| {name} | {category.value} | {_span(same)} | {_span(cross)} | {', '.join(missing) or '-'} |")
    print()


def _span(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}" if values else "-"


if __name__ == "__main__":
    main()

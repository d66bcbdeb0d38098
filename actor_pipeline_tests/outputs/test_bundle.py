"""The LoRA bundle, read back from the zip and checked against shared/docs/trainer-formats.md."""

import io
import os
import re
import tomllib
import zipfile
from pathlib import Path, PurePosixPath

import pytest
from PIL import Image

from actor_pipeline.catalog.descriptors import ACTOR_TYPES, HUMAN_BY_SEX
from actor_pipeline.catalog.model import Category, Shot, load_catalog, parse_catalog
from actor_pipeline.outputs.bundle import (
    COMMON_MINIMUM,
    KOHYA_CONFIG,
    MEDIUMS,
    Bundle,
    BundleEntry,
    Layout,
    build_bundle,
    caption,
    class_phrase,
)
from actor_pipeline.render.preview import STYLES
from actor_pipeline_tests.support.images import encode, jpeg

SHOTS = load_catalog().shots
REPLICATE_IMAGES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")  # flux-fine-tuner caption.py
LEFT_OUT = {"woodcut": "failed sharpness", "gouache": "near-duplicate of 16_watercolor"}


def _jpeg(shade: int) -> bytes:
    return jpeg((64, 36), (shade, 255 - shade, 128))


def _entries(shots: tuple[Shot, ...] = SHOTS) -> list[BundleEntry]:
    return [BundleEntry(shot, _jpeg(10 * shot.index)) for shot in shots]


def _passed() -> list[BundleEntry]:
    return [e for e in _entries() if e.shot.id not in LEFT_OUT]


def _read(bundle: Bundle) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle.data)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def _assert_pairs(files: dict[str, bytes], trigger: str, klass: str) -> None:
    """Every image is a JPEG with a same-stem, one-line, non-empty caption naming trigger and class,
    and every caption belongs to an image (no other .txt a trainer could take for one)."""
    stems = {PurePosixPath(name).with_suffix("") for name in files if name.endswith((".jpg", ".txt"))}
    for stem in stems:
        assert {f"{stem}.jpg", f"{stem}.txt"} <= files.keys(), stem
        image, text = files[f"{stem}.jpg"], files[f"{stem}.txt"].decode()
        assert re.fullmatch(r"\d{2,}", stem.name) and not stem.name.endswith("_mask")
        with Image.open(io.BytesIO(image)) as opened:
            assert opened.format == "JPEG"
        assert text.strip() and "\n" not in text and "\r" not in text, stem
        assert text.startswith(f"{trigger}, {klass}, ") and text.count(trigger) == 1, text


def _assert_nothing_hidden(names: list[str]) -> None:
    for name in names:
        parts = PurePosixPath(name).parts
        assert "__MACOSX" not in parts and not any(part.startswith(".") for part in parts), name


def test_flat_bundle_holds_only_jpeg_caption_pairs_at_the_root() -> None:
    bundle = build_bundle(_passed(), "woman", left_out=LEFT_OUT)
    files = _read(bundle)
    kept = [shot.index for shot in SHOTS if shot.id not in LEFT_OUT]
    assert sorted(files) == sorted(f"{index:02d}.{ext}" for index in kept for ext in ("jpg", "txt"))
    _assert_pairs(files, "TOK", "a woman")
    _assert_nothing_hidden(list(files))
    assert not bundle.report.below_minimum and bundle.report.warning is None


def test_replicate_finds_a_caption_for_every_image_and_would_not_autocaption(tmp_path: Path) -> None:
    for layout in Layout:
        root = tmp_path / layout.value
        with zipfile.ZipFile(io.BytesIO(build_bundle(_passed(), "woman", layout=layout).data)) as archive:
            archive.extractall(root)
        images = [Path(d) / f for d, _, names in os.walk(root) for f in names if f.lower().endswith(REPLICATE_IMAGES)]
        assert len(images) == 15 and all(image.with_suffix(".txt").is_file() for image in images)


def test_captions_name_trigger_class_medium_and_what_varies() -> None:
    captions = {shot.id: caption(shot, "TOK", "woman") for shot in SHOTS}
    assert len(set(captions.values())) == len(SHOTS)  # each names what differs in its shot
    for shot in SHOTS:
        text = captions[shot.id]
        assert shot.caption and text == f"TOK, a woman, {MEDIUMS[shot.preview.style]}, {shot.caption}"
        if shot.category is Category.PHOTOREAL:
            assert text.startswith("TOK, a woman, photo, ")
        else:
            assert "photo" not in text and shot.preview.style != "photo", shot.id
        if shot.category is Category.BW_STYLIZED:
            assert re.search(r"black and white|monochrome", text), shot.id


def test_every_preview_style_has_a_caption_medium() -> None:
    assert set(MEDIUMS) == set(STYLES)
    assert "pen and ink drawing" in MEDIUMS["pen_ink"] and MEDIUMS["watercolor"] == "watercolor painting"


DESCRIPTORS = sorted({*HUMAN_BY_SEX.values(), *filter(None, ACTOR_TYPES.values())})


@pytest.mark.parametrize(
    ("descriptor", "expected"), [(noun, f"an {noun}" if noun[0] in "aeiou" else f"a {noun}") for noun in DESCRIPTORS]
)
def test_class_phrase_has_the_right_article(descriptor: str, expected: str) -> None:
    assert class_phrase(descriptor) == expected
    assert caption(SHOTS[0], "TOK", descriptor).startswith(f"TOK, {expected}, photo, ")


def test_a_catalog_without_captions_still_names_medium_and_scene() -> None:
    custom = parse_catalog(
        {
            "shots": [
                {"id": "beach", "category": "photoreal", "label": "Beach walk", "template": "The {descriptor} walks."},
                {"id": "ink", "category": "bw_stylized", "label": "Ink", "template": "Ink {descriptor}.",
                 "preview": {"style": "pen_ink"}},
                {"id": "pastel", "category": "color_stylized", "label": "Pastel", "template": "A {descriptor}."},
            ]
        },
        "test",
    )
    beach, ink, pastel = custom.shots
    assert caption(beach, "TOK", "creature") == "TOK, a creature, photo, beach walk"
    assert caption(ink, "TOK", "creature") == "TOK, a creature, black and white pen and ink drawing"
    assert caption(pastel, "TOK", "creature") == "TOK, a creature, pastel"


def test_kohya_layout_puts_the_pairs_in_a_repeats_trigger_class_folder() -> None:
    bundle = build_bundle(_passed(), "robotic character", trigger="ohwx", layout=Layout.KOHYA, repeats=6)
    files = _read(bundle)
    folders = {PurePosixPath(name).parent for name in files}
    assert folders == {PurePosixPath("."), PurePosixPath("6_ohwx robotic character")}
    root = [name for name in files if "/" not in name]
    assert root == [KOHYA_CONFIG]  # kohya skips files at the root of train_data_dir
    # kohya's extract_dreambooth_params: repeats before the first '_', class tokens after it
    folder = "6_ohwx robotic character"
    assert int(folder.split("_")[0]) == 6 and "_".join(folder.split("_")[1:]) == "ohwx robotic character"
    _assert_pairs({k: v for k, v in files.items() if k != KOHYA_CONFIG}, "ohwx", "a robotic character")
    _assert_nothing_hidden(list(files))
    for name, data in files.items():
        if name.endswith(".txt"):  # kohya reads the first line only and asserts it is not empty
            assert data.decode().splitlines()[0].strip() == data.decode()

    config = tomllib.loads(files[KOHYA_CONFIG].decode())
    assert config["general"] == {"caption_extension": ".txt"}  # kohya's default is .caption
    (subset,) = config["datasets"][0]["subsets"]
    assert subset == {"image_dir": folder, "num_repeats": 6, "class_tokens": "ohwx robotic character"}
    assert bundle.report.images[0].file == f"{folder}/01.jpg"


def test_left_out_images_are_reported_and_not_zipped() -> None:
    bundle = build_bundle(_passed(), "woman", left_out=LEFT_OUT)
    files = _read(bundle)
    for shot in SHOTS:
        assert (f"{shot.index:02d}.jpg" in files) is (shot.id not in LEFT_OUT)
    assert [(item.shot_id, item.reason) for item in bundle.report.left_out] == list(LEFT_OUT.items())
    assert [image.shot_id for image in bundle.report.images] == [s.id for s in SHOTS if s.id not in LEFT_OUT]
    assert _jpeg(10 * load_catalog().shot("woodcut").index) not in files.values()
    with zipfile.ZipFile(io.BytesIO(bundle.data)) as archive:
        assert b"Left out: woodcut, gouache." in archive.comment


def test_fewer_than_ten_images_are_flagged_in_report_and_zip() -> None:
    few = _entries()[: COMMON_MINIMUM - 1]
    bundle = build_bundle(few, "woman", left_out={e.shot.id: "failed QC" for e in _entries()[COMMON_MINIMUM - 1 :]})
    assert bundle.report.below_minimum
    assert bundle.report.warning == "9 images, below the minimum of 10"
    with zipfile.ZipFile(io.BytesIO(bundle.data)) as archive:
        assert b"below the minimum of 10" in archive.comment
    assert not build_bundle(_entries()[:COMMON_MINIMUM], "woman").report.below_minimum


def test_same_inputs_give_the_same_bytes_whatever_their_order() -> None:
    for layout in Layout:
        first = build_bundle(_passed(), "woman", left_out=LEFT_OUT, layout=layout)
        again = build_bundle(list(reversed(_passed())), "woman", left_out=LEFT_OUT, layout=layout)
        assert first.data == again.data and first.report == again.report
        with zipfile.ZipFile(io.BytesIO(first.data)) as archive:
            assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert build_bundle(_passed(), "woman").data != build_bundle(_passed(), "woman", trigger="ohwx").data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"trigger": "TOK woman"}, "trigger word"),
        ({"trigger": "a/b"}, "trigger word"),
        ({"trigger": ""}, "trigger word"),
        ({"descriptor": "wo/man"}, "descriptor"),
        ({"left_out": {"pen_ink": "blurry"}}, "both bundled and left out"),
        ({"repeats": 0}, "repeats"),
        ({"entries": []}, "nothing to bundle"),
        ({"entries": _entries()[:2] + _entries()[:1]}, "bundled once"),
    ],
)
def test_bad_inputs_are_refused(change: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"entries": _entries(), "descriptor": "woman", "layout": Layout.KOHYA, **change}
    with pytest.raises(ValueError, match=message):
        build_bundle(**arguments)  # type: ignore[arg-type]


def test_non_jpeg_images_are_refused() -> None:
    png = encode(Image.new("RGB", (8, 8)), "PNG")
    with pytest.raises(ValueError, match="JPEG"):
        build_bundle([BundleEntry(SHOTS[0], png)], "woman")

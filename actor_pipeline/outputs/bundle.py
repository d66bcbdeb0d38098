"""The LoRA bundle: one zip of an actor's QC-passed images with a caption file per image.

The rules come from what each trainer accepts (``shared/docs/trainer-formats.md``):

- flat layout (Replicate's flux trainer, ai-toolkit, fal, BFL): only ``NN.jpg`` + ``NN.txt`` pairs
  at the root. No notes file goes in: Replicate and ai-toolkit would skip one, but fal and BFL
  unpack the zip on their side without documenting what they do with extra files, and BFL counts
  files against a 20-image cap. The summary (and the below-minimum warning) goes in the zip
  *comment*, which is archive metadata that no trainer reads as a file (``unzip -z`` shows it).
- kohya layout: the same pairs in ``<repeats>_<trigger> <class>/`` plus a root ``dataset.toml``
  setting ``caption_extension = ".txt"`` (kohya's default is ``.caption``). kohya skips files at
  the root of ``train_data_dir`` and Replicate/ai-toolkit only pick up images, so it is inert
  for every other trainer.

Captions are ``<trigger>, <a class>, <medium>, <what varies>``: the trigger first so it is in
every caption (kohya never injects it, fal's krea trainer ignores ``trigger_word`` when captions
exist), and the medium, setting, light and framing named so that they do not bind to the trigger.

The zip is deterministic (fixed timestamps, permissions, order; entries stored, not deflated, so
the bytes do not depend on the zlib version): the same inputs give the same bytes, which keeps
the storage write idempotent.
"""

import io
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, Field

from actor_pipeline.catalog.model import Category, Shot

DEFAULT_TRIGGER = "TOK"  # Replicate's flux trainer default
DEFAULT_KOHYA_REPEATS = 10
COMMON_MINIMUM = 10  # Replicate and fal's turbo trainer recommend at least 10 images
KOHYA_CONFIG = "dataset.toml"

# The medium each preview style stands for in a caption. Photoreal shots are "photo"; the
# black-and-white styles say so, so that monochrome does not bind to the trigger either.
MEDIUMS: dict[str, str] = {
    "photo": "photo",
    "pen_ink": "black and white pen and ink drawing",
    "graphite": "monochrome graphite pencil sketch",
    "charcoal": "black and white charcoal drawing",
    "woodcut": "black and white woodcut print",
    "mono_vector": "monochrome vector illustration",
    "manga": "black and white manga panel",
    "comic": "comic book illustration",
    "flat_vector": "flat vector illustration",
    "watercolor": "watercolor painting",
    "gouache": "gouache painting",
}

# The trigger becomes part of a folder name (kohya) and a comma-separated caption: one plain token.
_TRIGGER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
_DESCRIPTOR = re.compile(r"[a-z][a-z' -]{0,47}")
_JPEG_MAGIC = b"\xff\xd8\xff"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
_FILE_MODE = 0o100644 << 16  # regular file, rw-r--r--, in the Unix half of external_attr
_UNIX = 3


class Layout(StrEnum):
    FLAT = "flat"
    KOHYA = "kohya"


@dataclass(frozen=True)
class BundleEntry:
    """One image that passed QC, with the catalog shot it was made for."""

    shot: Shot
    image: bytes  # JPEG


class BundledImage(BaseModel):
    shot_id: str
    file: str
    caption: str


class LeftOut(BaseModel):
    shot_id: str
    reason: str = Field(min_length=1)


class BundleReport(BaseModel):
    """What went into the bundle and what did not; the lead puts this in the manifest."""

    layout: Layout
    trigger: str
    class_phrase: str
    images: list[BundledImage]
    left_out: list[LeftOut]
    minimum: int = Field(COMMON_MINIMUM, description="the fewest images a usable bundle holds")
    below_minimum: bool
    warning: str | None = None


@dataclass(frozen=True)
class Bundle:
    data: bytes  # the zip
    report: BundleReport


def class_phrase(descriptor: str) -> str:
    """The actor's class with its indefinite article: "a woman", "an anthropomorphic character"."""
    noun = _checked_descriptor(descriptor)
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def medium(shot: Shot) -> str:
    """How the shot is made, for its caption. A stylized shot left with the default ``photo``
    preview (a custom catalog may omit ``preview``) is named by its label instead."""
    if shot.category is not Category.PHOTOREAL and shot.preview.style == "photo":
        return shot.label.lower()
    return MEDIUMS[shot.preview.style]


def caption(shot: Shot, trigger: str, descriptor: str) -> str:
    """One line: trigger, class, medium, then the catalog's words for what varies."""
    parts = [_checked_trigger(trigger), class_phrase(descriptor), medium(shot)]
    if shot.caption:
        parts.append(shot.caption)
    elif shot.category is Category.PHOTOREAL:
        parts.append(shot.label.lower())  # a custom catalog without captions: the label names the scene
    return " ".join(", ".join(parts).split())  # whitespace collapsed: never a second line


def build_bundle(
    entries: Sequence[BundleEntry],
    descriptor: str,
    *,
    left_out: Mapping[str, str] | None = None,
    trigger: str = DEFAULT_TRIGGER,
    layout: Layout = Layout.FLAT,
    repeats: int = DEFAULT_KOHYA_REPEATS,
    minimum: int = COMMON_MINIMUM,
) -> Bundle:
    """Zip ``entries`` (the QC-passed images) for LoRA training.

    ``left_out`` maps the shot ids the caller kept out to the reason (failed QC, not generated...);
    they are reported, never zipped. ``repeats`` applies to the kohya layout only. Fewer images
    than ``minimum`` are flagged (``below_minimum`` and a warning).
    """
    left_out = dict(left_out or {})
    _check_entries(entries, left_out)
    if repeats < 1:
        raise ValueError(f"kohya repeats must be at least 1, got {repeats}")
    noun = _checked_descriptor(descriptor)
    folder = f"{repeats}_{_checked_trigger(trigger)} {noun}/" if layout is Layout.KOHYA else ""

    images = [
        BundledImage(shot_id=e.shot.id, file=f"{folder}{e.shot.index:02d}.jpg", caption=caption(e.shot, trigger, noun))
        for e in sorted(entries, key=lambda e: e.shot.index)
    ]
    below = len(images) < minimum
    report = BundleReport(
        layout=layout,
        trigger=trigger,
        class_phrase=class_phrase(noun),
        images=images,
        left_out=[LeftOut(shot_id=shot_id, reason=reason) for shot_id, reason in left_out.items()],
        minimum=minimum,
        below_minimum=below,
        warning=f"{len(images)} images, below the minimum of {minimum}" if below else None,
    )

    by_id = {e.shot.id: e.image for e in entries}
    files: list[tuple[str, bytes]] = []
    for image in images:
        files.append((image.file, by_id[image.shot_id]))
        files.append((image.file.removesuffix(".jpg") + ".txt", image.caption.encode()))
    if layout is Layout.KOHYA:
        files.append((KOHYA_CONFIG, _kohya_config(folder.rstrip("/"), repeats, f"{trigger} {noun}").encode()))
    return Bundle(_zip(files, _comment(report)), report)


def _check_entries(entries: Sequence[BundleEntry], left_out: Mapping[str, str]) -> None:
    if not entries:
        raise ValueError("no image passed QC: there is nothing to bundle")
    ids = [e.shot.id for e in entries]
    indexes = [e.shot.index for e in entries]
    if len(set(ids)) != len(ids) or len(set(indexes)) != len(indexes):
        raise ValueError(f"each shot may be bundled once; got {ids}")
    both = sorted(set(ids) & set(left_out))
    if both:
        raise ValueError(f"shots both bundled and left out: {', '.join(both)}")
    for entry in entries:
        if not entry.image.startswith(_JPEG_MAGIC):
            raise ValueError(f"shot {entry.shot.id}: the bundle takes JPEG images only (fal's WebP support is unknown)")


def _checked_trigger(trigger: str) -> str:
    if not _TRIGGER.fullmatch(trigger):
        raise ValueError(f"trigger word {trigger!r} must be one token of letters, digits, '_' or '-' (1-32)")
    return trigger


def _checked_descriptor(descriptor: str) -> str:
    noun = " ".join(descriptor.split()).lower()
    if not _DESCRIPTOR.fullmatch(noun):
        raise ValueError(f"actor descriptor {descriptor!r} must be a few plain words, like 'woman' or 'creature'")
    return noun


def _kohya_config(folder: str, repeats: int, class_tokens: str) -> str:
    # kohya resolves image_dir against the working directory, not this file, hence the note.
    return (
        "# kohya sd-scripts dataset config. From the folder this zip was extracted into, pass\n"
        f"#   --dataset_config {KOHYA_CONFIG}\n"
        '# or, without it: --train_data_dir . --caption_extension ".txt"\n'
        "# Captions are the first line of each .txt (kohya's default extension is .caption).\n"
        "[general]\n"
        'caption_extension = ".txt"\n'
        "\n"
        "[[datasets]]\n"
        "\n"
        "  [[datasets.subsets]]\n"
        f'  image_dir = "{folder}"\n'
        f"  num_repeats = {repeats}\n"
        f'  class_tokens = "{class_tokens}"\n'
    )


def _comment(report: BundleReport) -> bytes:
    lines = [
        f"LoRA dataset, {report.layout.value} layout: {len(report.images)} images with same-stem .txt captions; "
        f"trigger {report.trigger!r}, class {report.class_phrase!r}."
    ]
    if report.left_out:
        lines.append("Left out: " + ", ".join(item.shot_id for item in report.left_out) + ".")
    if report.warning:
        lines.append(f"WARNING: {report.warning}.")
    return "\n".join(lines).encode()


def _zip(files: Sequence[tuple[str, bytes]], comment: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.comment = comment
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.create_system = _UNIX
            info.external_attr = _FILE_MODE
            archive.writestr(info, data)
    return buffer.getvalue()

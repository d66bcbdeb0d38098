"""``SetChecker`` and ``check_set``: every check on one actor's set of shots."""

import hashlib
import json
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

from actor_pipeline.catalog.descriptors import normalize_actor_type
from actor_pipeline.catalog.model import Category
from actor_pipeline.quality.duplicates import check_near_duplicates, fingerprint
from actor_pipeline.quality.faces import (
    FaceAnalyzer,
    FacesUnavailable,
    face_results,
    load_face_analyzer,
    upsample_levels,
)
from actor_pipeline.quality.image_checks import (
    ImageInput,
    UnreadableImage,
    check_blank,
    check_color,
    check_monochrome,
    check_sharpness,
    check_size,
    load_image,
    make_result,
    not_measured,
)
from actor_pipeline.quality.model import CheckName, CheckResult, Face, ImageAnalysis, SetReport, ShotReport
from actor_pipeline.quality.settings import DEFAULT_THRESHOLDS, QualityThresholds

# Part of every analysis key: raise it when a measurement changes, so kept analyses are redone.
_ANALYSIS_VERSION = 1


@dataclass(frozen=True)
class SetChecker:
    """The checks of one actor's set, bound to its normalized portrait (as the pipeline stores
    it: EXIF orientation applied), each shot's category and the actor's type.

    Face and identity are measured for human actors when ``identity`` is on and the faces extra is
    installed, otherwise they are "not measured". Images are analysed on ``workers`` threads
    (default: one per core); numpy, Pillow and dlib release the GIL in their loops.

    Measuring an image costs about 0.2 CPU-s (faces most of it), so a caller that keeps each
    image's ``ImageAnalysis`` (``SetReport.analyses``) hands it back instead of the image when
    ``reusable`` says it still holds: a rerun of two shots then measures two images, not the set.
    """

    portrait: ImageInput | None
    categories: Mapping[str, Category | str]
    actor_type: str
    thresholds: QualityThresholds = DEFAULT_THRESHOLDS
    identity: bool = True
    workers: int | None = None

    def reusable(self, shot: str, image_sha256: str, analysis: ImageAnalysis) -> bool:
        """Whether ``analysis`` is what measuring the shot's image (of this sha256) would give."""
        return analysis.key == self._key(shot, image_sha256)

    def check(self, images_by_shot: Mapping[str, ImageInput | ImageAnalysis]) -> SetReport:
        """Check the set: shot id -> JPEG bytes or image, or a kept analysis of it (see
        ``reusable``), in catalog order."""
        if missing := [shot for shot in images_by_shot if shot not in self.categories]:
            raise ValueError(f"no category given for shot(s) {', '.join(missing)}")
        with ThreadPoolExecutor(max_workers=self.workers or os.cpu_count() or 1) as pool:
            # Submitted first, so dlib's models load while the other workers measure images.
            portrait_job = pool.submit(self._portrait_face)
            jobs = {
                shot: pool.submit(self._analyse, shot, image)
                for shot, image in images_by_shot.items()
                if not isinstance(image, ImageAnalysis)
            }
            analyses = {
                shot: image if isinstance(image, ImageAnalysis) else jobs[shot].result()
                for shot, image in images_by_shot.items()
            }
            portrait_face = portrait_job.result()

        duplicates, pairs = check_near_duplicates(
            {shot: found.fingerprint for shot, found in analyses.items() if found.fingerprint}, self.thresholds
        )
        reports = {}
        for shot, found in analyses.items():
            category = self._category(shot)
            if found.fingerprint is None:  # unreadable: its size result says why
                results = (*found.results, *_faces_not_measured("image not readable"))
            elif isinstance(self._analyzer, str):
                results = (*found.results, duplicates[shot], *_faces_not_measured(self._analyzer))
            else:
                results = (
                    *found.results,
                    duplicates[shot],
                    *face_results(found.face, portrait_face, category, self.thresholds),
                )
            reports[shot] = ShotReport(shot=shot, category=category, results=results)
        return SetReport(shots=reports, duplicate_pairs=pairs, analyses=analyses)

    @cached_property
    def _analyzer(self) -> FaceAnalyzer | str:
        """The analyzer, or why faces are not measured."""
        return _face_analyzer(normalize_actor_type(self.actor_type), self.identity)

    def _category(self, shot: str) -> Category:
        return Category(self.categories[shot])

    def _key(self, shot: str, image_sha256: str) -> str:
        """What an analysis of the shot's image depends on, hashed."""
        inputs = {**self._settings, "image": image_sha256, "category": self._category(shot).value}
        return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()

    @cached_property
    def _settings(self) -> dict[str, object]:
        """The part of every key that is the same for all shots."""
        thresholds = self.thresholds.model_dump(mode="json")
        thresholds["blocking"] = sorted(thresholds["blocking"])  # a set: its order varies between processes
        return {"version": _ANALYSIS_VERSION, "thresholds": thresholds, "faces": not isinstance(self._analyzer, str)}

    def _analyse(self, shot: str, data: ImageInput) -> ImageAnalysis:
        # Black-and-white shots must be monochrome; photoreal and colour-stylized ones in colour.
        category, thresholds = self._category(shot), self.thresholds
        tone_name, tone_check = (
            (CheckName.MONOCHROME, check_monochrome)
            if category is Category.BW_STYLIZED
            else (CheckName.COLOR, check_color)
        )
        # Only bytes get a key: the bytes behind an image object are unknown, so it is never reused.
        key = self._key(shot, hashlib.sha256(data).hexdigest()) if isinstance(data, bytes) else ""
        try:
            image = load_image(data)
        except UnreadableImage as exc:
            unreadable = make_result(CheckName.SIZE, False, {}, {}, str(exc), thresholds)
            skipped = (CheckName.BLANK, CheckName.SHARPNESS, tone_name, CheckName.NEAR_DUPLICATE)
            return ImageAnalysis(
                key=key, results=(unreadable, *(not_measured(c, "image not readable") for c in skipped))
            )
        results = (
            check_size(image, thresholds),
            check_blank(image, thresholds),
            check_sharpness(image, thresholds),
            tone_check(image, thresholds),
        )
        analyzer = self._analyzer
        face = None if isinstance(analyzer, str) else analyzer.find_face(image, upsample_levels(category))
        return ImageAnalysis(key=key, results=results, fingerprint=fingerprint(image), face=face)

    def _portrait_face(self) -> Face | str:
        """The portrait's face, or why there is none."""
        analyzer = self._analyzer
        if isinstance(analyzer, str):
            return analyzer
        if self.portrait is None:
            return "no portrait given"
        try:
            return analyzer.find_portrait_face(self.portrait) or "no face found on the portrait"
        except UnreadableImage:
            return "portrait not readable"


def check_set(
    images_by_shot: Mapping[str, ImageInput | ImageAnalysis],
    portrait: ImageInput | None,
    categories: Mapping[str, Category | str],
    actor_type: str,
    thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
    *,
    identity: bool = True,
    workers: int | None = None,
) -> SetReport:
    """Check one actor's images once: ``SetChecker(...).check(images_by_shot)``."""
    return SetChecker(portrait, categories, actor_type, thresholds, identity, workers).check(images_by_shot)


def prepare_identity(portrait: bytes, actor_type: str) -> None:
    """Load dlib's models and find the portrait's face ahead of ``check_set`` (about 1.3 s), for
    a caller with time to spare, such as while the shots are being made. Never raises."""
    analyzer = _face_analyzer(normalize_actor_type(actor_type), identity=True)
    if not isinstance(analyzer, str):
        try:
            analyzer.find_portrait_face(portrait)
        except UnreadableImage:
            pass  # check_set says so


def _faces_not_measured(reason: str) -> tuple[CheckResult, CheckResult]:
    return not_measured(CheckName.FACE, reason), not_measured(CheckName.IDENTITY, reason)


def _face_analyzer(kind: str, identity: bool) -> FaceAnalyzer | str:
    """The analyzer, or why faces are not measured."""
    if not identity:
        return "face checks turned off"
    if kind != "human":
        return f"not measured for a {kind} actor: dlib's face models know human faces only"
    try:
        return load_face_analyzer()
    except FacesUnavailable as exc:
        return f"faces extra not available: {exc}"

"""``check_set``: every check on one actor's set of shots."""

import os
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image

from actor_pipeline.catalog.descriptors import normalize_actor_type
from actor_pipeline.catalog.model import Category
from actor_pipeline.quality.duplicates import Fingerprint, check_near_duplicates, fingerprint
from actor_pipeline.quality.faces import (
    Face,
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
from actor_pipeline.quality.model import CheckName, CheckResult, SetReport, ShotReport
from actor_pipeline.quality.settings import DEFAULT_THRESHOLDS, QualityThresholds


@dataclass(frozen=True)
class _Analysis:
    """The single-image checks of one shot; duplicates and identity need the whole set."""

    results: tuple[CheckResult, ...]
    image: Image.Image | None = None  # None: unreadable
    fingerprint: Fingerprint | None = None


def check_set(
    images_by_shot: Mapping[str, ImageInput],
    portrait: ImageInput | None,
    categories: Mapping[str, Category | str],
    actor_type: str,
    thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
    *,
    identity: bool = True,
    workers: int | None = None,
) -> SetReport:
    """Check one actor's images (shot id -> JPEG bytes or image, in catalog order) against the
    normalized portrait (as the pipeline stores it: EXIF orientation applied).

    ``categories`` gives each shot's category. Face and identity are measured for human actors
    when ``identity`` is on and the faces extra is installed, otherwise they are "not measured".
    Images are checked on ``workers`` threads (default: one per core); numpy, Pillow and dlib
    release the GIL in their loops.
    """
    if missing := [shot for shot in images_by_shot if shot not in categories]:
        raise ValueError(f"no category given for shot(s) {', '.join(missing)}")
    shot_categories = {shot: Category(categories[shot]) for shot in images_by_shot}
    kind = normalize_actor_type(actor_type)
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        # The pool runs jobs in submission order: dlib's models load (1-2 s) while the other
        # workers run the single-image checks, then faces are searched. A job only waits for
        # jobs submitted before it, so even one worker cannot deadlock.
        analyzer_job = pool.submit(_face_analyzer, kind, identity)
        jobs = {
            shot: pool.submit(_check_image, image, shot_categories[shot], thresholds)
            for shot, image in images_by_shot.items()
        }
        face_jobs = {
            shot: pool.submit(_find_face, job, analyzer_job, shot_categories[shot]) for shot, job in jobs.items()
        }
        portrait_job = pool.submit(_portrait_face, analyzer_job, portrait)
        analyses = {shot: job.result() for shot, job in jobs.items()}
        faces = {shot: job.result() for shot, job in face_jobs.items()}
        analyzer, portrait_face = analyzer_job.result(), portrait_job.result()

    duplicates, pairs = check_near_duplicates(
        {shot: found.fingerprint for shot, found in analyses.items() if found.fingerprint}, thresholds
    )
    reports = {}
    for shot, found in analyses.items():
        category = shot_categories[shot]
        if found.fingerprint is None:  # unreadable: its size result says why
            results = (*found.results, *_faces_not_measured("image not readable"))
        elif isinstance(analyzer, str):
            results = (*found.results, duplicates[shot], *_faces_not_measured(analyzer))
        else:
            results = (
                *found.results,
                duplicates[shot],
                *face_results(faces[shot], portrait_face, category, thresholds),
            )
        reports[shot] = ShotReport(shot=shot, category=category, results=results)
    return SetReport(shots=reports, duplicate_pairs=pairs)


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


def _portrait_face(analyzer_job: Future[FaceAnalyzer | str], portrait: ImageInput | None) -> Face | str:
    """The portrait's face, or why there is none."""
    analyzer = analyzer_job.result()
    if isinstance(analyzer, str):
        return analyzer
    if portrait is None:
        return "no portrait given"
    try:
        return analyzer.find_portrait_face(portrait) or "no face found on the portrait"
    except UnreadableImage:
        return "portrait not readable"


def _check_image(data: ImageInput, category: Category, thresholds: QualityThresholds) -> _Analysis:
    # Black-and-white shots must be monochrome; photoreal and colour-stylized ones in colour.
    tone_name, tone_check = (
        (CheckName.MONOCHROME, check_monochrome) if category is Category.BW_STYLIZED else (CheckName.COLOR, check_color)
    )
    try:
        image = load_image(data)
    except UnreadableImage as exc:
        unreadable = make_result(CheckName.SIZE, False, {}, {}, str(exc), thresholds)
        skipped = (CheckName.BLANK, CheckName.SHARPNESS, tone_name, CheckName.NEAR_DUPLICATE)
        return _Analysis((unreadable, *(not_measured(check, "image not readable") for check in skipped)))
    results = (
        check_size(image, thresholds),
        check_blank(image, thresholds),
        check_sharpness(image, thresholds),
        tone_check(image, thresholds),
    )
    return _Analysis(results, image, fingerprint(image))


def _find_face(
    analysis_job: Future[_Analysis], analyzer_job: Future[FaceAnalyzer | str], category: Category
) -> Face | None:
    image, analyzer = analysis_job.result().image, analyzer_job.result()
    if image is None or isinstance(analyzer, str):
        return None
    return analyzer.find_face(image, upsample_levels(category))

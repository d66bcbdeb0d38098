"""Face presence and identity: the optional ``faces`` extra (``pip install 'actor-pipeline[faces]'``).

dlib is used directly (``dlib-bin``): its HOG frontal-face detector, the 5-point landmark model and
the ResNet face encoder, whose files ship in ``face_recognition_models``. Never the 68-point model
(trained on iBUG 300-W, not for commercial use) and never the ``face_recognition`` package, which
loads that model at import. The ResNet descriptor of a face is compared with the portrait's by
Euclidean distance (dlib: under 0.6 is the same person, 99.38% on LFW).

dlib's models know human faces only: the caller measures faces for human actors only, and a face
that is not found is "not measured", except on photoreal shots (see ``face_results``).
"""

import contextlib
import copy
import importlib.util
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from PIL import Image

from actor_pipeline.catalog.model import Category
from actor_pipeline.errors import PipelineError
from actor_pipeline.quality.image_checks import ImageInput, load_image, make_result, not_measured
from actor_pipeline.quality.model import CheckName, CheckResult, Face, Outcome, pack
from actor_pipeline.quality.settings import DEFAULT_THRESHOLDS, QualityThresholds

INSTALL_HINT = "pip install 'actor-pipeline[faces]'"
LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
ENCODER_FILE = "dlib_face_recognition_resnet_model_v1.dat"
# Faces are searched at most this wide: HOG's cost grows with the pixels (a 1392x752 shot costs
# twice a 1024x553 one, a 12 MP phone photo seconds), and at this size the first pass still finds
# faces from about 110 px of the full shot, the second from about 55 px.
_SEARCH_MAX_SIDE = 1024


class FacesUnavailable(PipelineError, RuntimeError):
    """The faces extra is not installed (or its model files are missing)."""


class FaceAnalyzer:
    """dlib's detector, landmark model and encoder, loaded once; ``find_face`` is thread-safe."""

    def __init__(self, dlib: ModuleType, models: Path) -> None:
        self._detector = dlib.get_frontal_face_detector()  # 1-2 s: it parses the HOG model from text
        self._predictor = dlib.shape_predictor(str(models / LANDMARKS_FILE))
        self._encoder = dlib.face_recognition_model_v1(str(models / ENCODER_FILE))
        # dlib's detector keeps its scan state in the object and the encoder its activations in the
        # network, so threads must not share them: each thread detects with its own copy of the
        # detector (milliseconds to copy), and encodings take turns (0.1 s each).
        self._local = threading.local()
        self._encoder_lock = threading.Lock()
        # The last few stored portraits' faces, found once even when threads ask at once.
        self._portrait_lock = threading.Lock()
        self._stored_portrait_face = lru_cache(maxsize=4)(self._find_stored_portrait_face)

    def find_face(self, image: Image.Image, upsample: Sequence[int] = (0,)) -> Face | None:
        """The largest frontal face in ``image`` (its box in ``image``'s pixels), trying each
        upsampling level in turn (0 finds faces from about 80 px of the searched size, 1 from
        about 40 px at four times the cost)."""
        scale = min(1.0, _SEARCH_MAX_SIDE / max(image.size))
        if scale < 1:
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)
        # HOG on the luminance: about 30 % less CPU than on three channels, and the calibration
        # images gave the same faces (one more, on a monochrome vector shot); the encoder wants colour.
        gray = np.asarray(image.convert("L"))
        detector = self._thread_detector()
        for level in upsample:
            boxes = list(detector(gray, level))
            if boxes:
                break
        else:
            return None
        box = max(boxes, key=lambda found: found.area())
        pixels = np.asarray(image.convert("RGB"))
        with self._encoder_lock:
            descriptor = np.array(self._encoder.compute_face_descriptor(pixels, self._predictor(pixels, box)))
        left, top, right, bottom = (round(edge / scale) for edge in (box.left(), box.top(), box.right(), box.bottom()))
        return Face(box=(left, top, right, bottom), descriptor=pack(descriptor, "<f4"))

    def find_portrait_face(self, portrait: ImageInput) -> Face | None:
        """The portrait's face; a stored portrait's (bytes) is remembered for the last few, so
        ``prepare_identity`` can find it while the shots are being made."""
        if isinstance(portrait, Image.Image):
            return self.find_face(portrait, upsample=(0, 1))
        with self._portrait_lock:
            return self._stored_portrait_face(portrait)

    def _find_stored_portrait_face(self, portrait: bytes) -> Face | None:
        return self.find_face(load_image(portrait), upsample=(0, 1))

    def _thread_detector(self) -> Any:  # dlib ships no type stubs
        detector = getattr(self._local, "detector", None)
        if detector is None:
            detector = self._local.detector = copy.deepcopy(self._detector)
        return detector


_load_lock = threading.Lock()


def load_face_analyzer() -> FaceAnalyzer:
    """The process-wide analyzer, loaded once even when threads ask at once. Raises
    ``FacesUnavailable`` when the extra is not installed (not cached, so installing it takes
    effect in a running process)."""
    with _load_lock:
        return _load_once()


def preload_face_analyzer() -> None:
    """Load the process-wide analyzer now if the faces extra is installed, for a process about to
    fork: its children share the models instead of each loading them (without the extra, a run
    says so itself)."""
    with contextlib.suppress(FacesUnavailable):
        load_face_analyzer()


def load_face_models() -> FaceAnalyzer:
    """A new analyzer (1-2 s): ``load_face_analyzer`` keeps one per process."""
    try:
        import dlib
    except ImportError as exc:
        raise FacesUnavailable(f"dlib is not installed ({INSTALL_HINT})") from exc
    # find_spec locates the package without running its __init__, which imports pkg_resources
    # (gone from setuptools 82): only the data files are needed.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FacesUnavailable(f"face_recognition_models is not installed ({INSTALL_HINT})")
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    missing = [name for name in (LANDMARKS_FILE, ENCODER_FILE) if not (models / name).is_file()]
    if missing:
        raise FacesUnavailable(f"face_recognition_models lacks {', '.join(missing)} ({INSTALL_HINT})")
    return FaceAnalyzer(dlib, models)


_load_once = lru_cache(maxsize=1)(load_face_models)


def upsample_levels(category: Category) -> tuple[int, ...]:
    """Photoreal shots, where a face is expected, get a second, finer pass (wide shots show the
    face small); stylized shots get one pass, their identity being informative only."""
    return (0, 1) if category is Category.PHOTOREAL else (0,)


def face_results(
    face: Face | None,
    portrait: Face | str,
    category: Category,
    thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
) -> tuple[CheckResult, CheckResult]:
    """The face and identity results of one shot of a human actor; ``portrait`` is the portrait's
    face or why there is none.

    No face on a photoreal shot is a failure, shown but not blocking by default: HOG misses
    profiles, back views and silhouettes, which the catalog asks for, so it is worth a look but
    not a paid regeneration. No face on a stylized shot is "not measured".
    """
    if face is None:
        if category is Category.PHOTOREAL:
            reason = "no frontal face found on a photoreal shot of a human actor"
            face_result = make_result(CheckName.FACE, False, {}, {}, reason, thresholds)
        else:
            face_result = not_measured(CheckName.FACE, "no face found on a stylized shot")
        return face_result, not_measured(CheckName.IDENTITY, "no face found on the shot")
    left, top, right, bottom = face.box
    size: dict[str, float] = {"face_width": right - left, "face_height": bottom - top}
    face_result = make_result(
        CheckName.FACE, True, size, {}, f"face found ({right - left}x{bottom - top} px)", thresholds
    )
    if isinstance(portrait, str):
        return face_result, not_measured(CheckName.IDENTITY, portrait)
    distance = face.distance(portrait)
    photoreal = category is Category.PHOTOREAL
    limit = thresholds.identity_max_distance_photoreal if photoreal else thresholds.identity_max_distance_stylized
    passed = distance <= limit
    identity_result = CheckResult(
        check=CheckName.IDENTITY,
        outcome=Outcome.PASSED if passed else Outcome.FAILED,
        measured={"distance": round(distance, 4)},
        threshold={"max_distance": limit},
        reason=f"{'same person' if passed else 'identity drift'}: distance to the portrait {distance:.2f} (max {limit:g})",
        blocking=CheckName.IDENTITY in thresholds.blocking and photoreal,
    )
    return face_result, identity_result

"""The emulated LoRA trainer (``ostris/flux-dev-lora-trainer``) and the model that runs its output
(``black-forest-labs/flux-dev-lora`` with ``lora_weights``): input schemas, the training's
lifecycle and logs, and pictures "of the trained actor" (made from the bundle's own images).

A training is ``starting`` for ``training_queue_s``, ``processing`` for ``training_s`` (its logs
grow with ai-toolkit's step progress), then ``succeeded`` with ``output {version, weights}`` or
``failed``; it is billed for its time ``processing`` (``metrics.predict_time``), canceled ones too.
"""

import hashlib
import io
import math
import random
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from PIL import Image, ImageDraw

from actor_pipeline_tests.replicate_emulator.flux import FileLookup, additional_properties, invalid_field, missing_input

TRAINER = "ostris/flux-dev-lora-trainer"
# The version the pipeline pins (``TrainingSettings.trainer_version``): any other is refused, as
# Replicate refuses a version that does not exist.
TRAINER_VERSION = "b6af14222e6bd9be257cbc1ea4afda3cd0503e1133083b9d1de0364d8568e6ef"
LORA_MODEL = "black-forest-labs/flux-dev-lora"
TRAINING_ERROR = "Training failed: CUDA out of memory (emulated failure)"
MIN_IMAGES = 10  # the trainer's recommended minimum; fewer is accepted (Replicate does not refuse it)
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")



@dataclass
class Training:
    id: str
    destination: str
    input: dict[str, object]
    created: datetime
    t0: float
    queue_s: float
    run_s: float
    fails: bool
    version_id: str  # of the destination model's new version
    canceled_at: float | None = None

    @property
    def ends_at(self) -> float:
        end = self.t0 + self.queue_s + self.run_s
        return min(end, self.canceled_at) if self.canceled_at is not None else end

    def status(self, now: float) -> str:
        if self.canceled_at is not None and self.canceled_at <= now and self.canceled_at < self.t0 + self.queue_s + self.run_s:
            return "canceled"
        if now < self.t0 + self.queue_s:
            return "starting"
        if now < self.ends_at:
            return "processing"
        return "failed" if self.fails else "succeeded"

    def billed_s(self, now: float) -> float:
        """Seconds spent ``processing`` so far: what Replicate bills a training for."""
        return max(0.0, min(now, self.ends_at) - self.t0 - self.queue_s)

    def steps(self) -> int:
        steps = self.input.get("steps", 1000)
        return steps if isinstance(steps, int) else 1000

    def logs(self, now: float) -> str:
        """ai-toolkit's tqdm lines, one per tenth of the steps done so far."""
        if self.status(now) == "starting":
            return ""
        lines = ["Extracting input_images...", "Running ai-toolkit (flux_train_replicate)..."]
        done = min(1.0, self.billed_s(now) / self.run_s) if self.run_s else 1.0
        total = self.steps()
        for tenth in range(1, math.floor(done * 10 + 1e-9) + 1):
            step = total * tenth // 10
            lines.append(f"flux_train_replicate: {tenth * 10:3d}%|{'#' * tenth:<10}| {step}/{total} [00:{tenth:02d}<00:10, 1.00it/s, lr: 4.0e-04]")
        if self.fails and self.status(now) == "failed":
            lines.append(TRAINING_ERROR)
        return "\n".join(lines) + "\n"

    def json(self, now: float, api_base: str, files_base: str, iso: Callable[[datetime], str]) -> dict[str, object]:
        status = self.status(now)
        url = f"{api_base}/v1/trainings/{self.id}"
        body: dict[str, object] = {
            "id": self.id,
            "model": TRAINER,
            "version": TRAINER_VERSION,
            "input": self.input,
            "logs": self.logs(now),
            "output": None,
            "error": None,
            "status": status,
            "created_at": iso(self.created),
            "urls": {"get": url, "cancel": f"{url}/cancel"},
        }
        if status != "starting":
            body["started_at"] = iso(self.created + timedelta(seconds=self.queue_s))
        if status in ("succeeded", "failed", "canceled"):
            body["completed_at"] = iso(self.created + timedelta(seconds=self.ends_at - self.t0))
            body["metrics"] = {"predict_time": round(self.billed_s(now), 6)}
        if status == "succeeded":
            body["output"] = {"version": f"{self.destination}:{self.version_id}", "weights": self.weights(files_base)}
        elif status == "failed":
            body["error"] = TRAINING_ERROR
        return body

    def weights(self, files_base: str) -> str:
        return f"{files_base}/{self.id}/trained_model.tar"


def validate_training_input(input_: object, find_file: FileLookup) -> list[dict[str, str]]:
    """The ``invalid_fields`` the trainer's schema reports for ``input_`` (empty if valid)."""
    if not isinstance(input_, Mapping):
        return missing_input()
    problems = additional_properties(input_, _TRAINER_INPUTS)
    images = input_.get("input_images")
    if not isinstance(images, str):
        problems.append(invalid_field("required", "input", "input_images is required"))
    elif (found := find_file(images)) is None and not images.startswith("https://"):
        problems.append(invalid_field("invalid", "input.input_images", "input_images must be a URL of a zip file"))
    elif found is not None and not zipfile.is_zipfile(io.BytesIO(found[1])):
        problems.append(invalid_field("invalid", "input.input_images", "input_images is not a zip file"))
    for key, (kind, low, high) in _TRAINER_INPUTS.items():
        value = input_.get(key)
        if value is None or kind is str:
            continue
        if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
            problems.append(invalid_field("invalid", f"input.{key}", f"{key} must be a {kind.__name__}"))
        elif low is not None and high is not None and not low <= value <= high:  # type: ignore[operator]
            problems.append(invalid_field("invalid", f"input.{key}", f"{key} must be from {low} to {high}"))
    return problems


def validate_lora_input(input_: object) -> list[dict[str, str]]:
    """The ``invalid_fields`` of ``flux-dev-lora`` (a subset of its schema; the pipeline's inputs)."""
    if not isinstance(input_, Mapping):
        return missing_input()
    problems = additional_properties(input_, _LORA_INPUTS)
    if not isinstance(input_.get("prompt"), str) or not str(input_["prompt"]).strip():
        problems.append(invalid_field("required", "input", "prompt is required"))
    if input_.get("output_format", "webp") not in ("webp", "jpg", "png"):
        problems.append(invalid_field("enum", "input.output_format", 'output_format must be one of "webp", "jpg", "png"'))
    return problems


def bundle_images(zip_bytes: bytes) -> list[bytes]:
    """The images of a training zip, by name (what the trainer extracts)."""
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        names = sorted(n for n in archive.namelist() if n.lower().endswith(_IMAGE_SUFFIXES) and "__MACOSX" not in n)
        return [archive.read(name) for name in names]


def render_with_lora(trained_on: list[bytes], prompt: str, seed: object, output_format: str) -> bytes:
    """A picture of the trained actor: one of its training images, reframed on a background the
    prompt and seed choose (so the same inputs give the same bytes)."""
    rng = random.Random(hashlib.sha256(f"{seed}\x00{prompt}".encode()).digest())
    size = (1024, 1024)
    canvas = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(canvas)
    for _ in range(12):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        draw.rectangle((x, y, x + rng.randrange(40, 300), y + rng.randrange(40, 300)), fill=tuple(rng.randrange(256) for _ in range(3)))
    if trained_on:
        with Image.open(io.BytesIO(trained_on[rng.randrange(len(trained_on))])) as source:
            actor = source.convert("RGB")
            actor.thumbnail((800, 800))
            canvas.paste(actor, ((size[0] - actor.width) // 2, (size[1] - actor.height) // 2))
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG" if output_format == "png" else "JPEG", **({} if output_format == "png" else {"quality": 90}))
    return buffer.getvalue()


# name -> (type, minimum, maximum), from the trainer's train.py.
_TRAINER_INPUTS: dict[str, tuple[type, float | None, float | None]] = {
    "input_images": (str, None, None),
    "trigger_word": (str, None, None),
    "autocaption": (bool, None, None),
    "autocaption_prefix": (str, None, None),
    "autocaption_suffix": (str, None, None),
    "steps": (int, 3, 6000),
    "lora_rank": (int, 1, 128),
    "learning_rate": (float, 0, 1),
    "batch_size": (int, 1, 16),
    "resolution": (str, None, None),
    "caption_dropout_rate": (float, 0, 1),
    "optimizer": (str, None, None),
}
_LORA_INPUTS = (
    "prompt", "lora_weights", "lora_scale", "seed", "num_outputs", "output_format", "aspect_ratio",
    "guidance", "num_inference_steps", "output_quality", "go_fast", "megapixels", "disable_safety_checker",
)  # fmt: skip

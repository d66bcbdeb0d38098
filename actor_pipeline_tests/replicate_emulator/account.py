"""The emulated Replicate account: predictions, trainings, models, files, rate limits, injected
faults, counters.

Prediction lifecycles are computed from the clock, so no worker thread runs them: a prediction
is ``starting`` for ``queue_s``, ``processing`` for its latency, then ends as its prompt says.
The clock is ``time.monotonic()`` plus whatever ``advance`` skipped, so a test can let a day
pass at once. Every method is called from an HTTP handler thread; one condition guards all
state and wakes the requests held by ``Prefer: wait``.
"""

import base64
import copy
import hashlib
import math
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from actor_pipeline_tests.replicate_emulator import flux, trainings
from actor_pipeline_tests.replicate_emulator.trainings import LORA_MODEL, Training

FLAGGED_ERROR = "The input or output was flagged as sensitive. Please try again with different inputs. (E005)"
MODEL_ERROR = "Prediction failed: the model crashed (emulated failure)"
VERSION_ID = hashlib.sha256(b"emulated flux-kontext-pro").hexdigest()
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_TERMINAL = ("succeeded", "failed", "canceled")
Outcome = Literal["succeeded", "failed", "flagged", "canceled", "hung"]
FaultSite = Literal["create", "poll", "list", "upload", "download", "train"]
Limit = Literal["create", "read"]


@dataclass
class Behaviour:
    """How the emulated API and model behave. Tests may change fields at any time; a
    prediction takes its latency and outcome when it is created."""

    latency_s: float = 0.1
    queue_s: float = 0.01  # time spent "starting"
    # A Prefer: wait is answered by then at the latest (Replicate: 60 s); lower it to make the
    # server answer "processing" early.
    wait_cap_s: float = 60.0
    output_ttl_s: float = 3600.0  # outputs are deleted an hour after the prediction
    # For API predictions "all input parameters, output values, output files, and logs are
    # automatically removed after an hour" (data retention): the JSON then has data_removed true
    # and an empty input (what the real API puts there is not documented), no output, no logs.
    data_ttl_s: float = 3600.0
    file_ttl_s: float = 86400.0  # uploads are deleted a day after (their expires_at); taken at upload
    # Replicate answers with the files "as soon as they are all available ... status may still be
    # processing": when on, a prediction that made its image stays "processing" with its output
    # set for early_output_s before it turns "succeeded".
    early_output: bool = False
    early_output_s: float = 1.0
    data_uri_outputs: bool = False  # answer outputs as data: URIs (sync mode did, late 2024)
    creates_per_minute: int = 600
    reads_per_minute: int = 3000
    page_size: int = 100
    max_inline_bytes: int = 256_000
    # A prompt containing one of these substrings ends that way instead of succeeding.
    flagged: tuple[str, ...] = ("[flag]",)
    # The error of a flagged prediction: Replicate and BFL word E005 in several ways.
    flagged_error: str = FLAGGED_ERROR
    failing: tuple[str, ...] = ("[fail]",)
    hung: tuple[str, ...] = ("[hang]",)
    canceled_elsewhere: tuple[str, ...] = ("[cancel]",)
    slow: Mapping[str, float] = field(default_factory=dict)  # substring -> latency_s
    # An outage: every API request is answered 503 (and counted in ``refused_in_outage``) while on.
    down: bool = False
    # Every output nearly the same picture whatever the prompt (flux.render's near_identical).
    near_identical: bool = False
    # A prompt containing one of these comes back in colour though it asks for black and white.
    colour_leaks: tuple[str, ...] = ()
    # A create is taken this long after it arrives (a request held in a queue under load): a
    # client that gives up first has not made the prediction yet when it looks for it.
    create_delay_s: float = 0.0
    # Trainings: "starting" this long, then "processing" (billed) for training_s.
    training_queue_s: float = 0.05
    training_s: float = 2.0
    failing_trainings: int = 0  # the next N trainings created fail at their end
    username: str = "emulated-user"  # the token's account: models may be created for it only


@dataclass(frozen=True)
class Fault:
    """One injected failure: an HTTP status, or ``status=None`` to drop the connection unanswered."""

    status: int | None = None
    # Creates only: the prediction is created before the request fails, as when a response is lost.
    after_create: bool = False
    # Training creates only: the training is created this long after the request failed, as one a
    # gateway gave up on while the API still held it in a queue.
    taken_after_s: float = 0.0


class Problem(Exception):
    """An HTTP error answer (``application/problem+json``)."""

    def __init__(
        self, status: int, title: str, detail: str, headers: Mapping[str, str] | None = None, **extra: object
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.body = {"title": title, "detail": detail, "status": status, **extra}
        self.headers = dict(headers or {})


class Dropped(Exception):
    """The connection is to be closed without an answer."""


@dataclass(frozen=True)
class Counters:
    """What the account saw, for tests to assert on."""

    create_requests: int  # every create POST, throttled and failed ones included
    predictions_created: int
    succeeded: int
    failed: int
    canceled: int
    # Billed predictions: flux-kontext-pro is charged per output image, so every prediction whose
    # image was made counts, also one still "processing" with its output set (early_output) or
    # canceled after that (assumed billed: no more lenient than Replicate could be).
    paid: int
    predictions_per_shot: Mapping[tuple[object, object], int]  # (prompt, seed) -> predictions
    polls: int  # GET /v1/predictions/{id}
    lists: int
    cancel_requests: int
    uploads: int  # completed
    files_deleted: int
    throttled: int  # 429 answers
    refused_in_outage: int  # requests answered 503 while ``Behaviour.down``
    unfinished_wait_answers: int  # Prefer: wait answered before the prediction ended
    downloads: Mapping[str, int]  # prediction id -> complete output downloads
    download_requests: int
    peak_in_flight: int
    create_times: tuple[float, ...]  # time.monotonic() of each create request (advance not included)
    trainings_created: int = 0
    # Trainings billed: every one that spent time "processing" (canceled and failed ones too).
    trainings_billed: int = 0
    training_seconds_billed: float = 0.0
    training_statuses: Mapping[str, int] = field(default_factory=dict)  # status -> trainings
    training_lists: int = 0
    training_cancel_requests: int = 0
    models_created: int = 0


@dataclass
class _Prediction:
    id: str
    model: str
    input: dict[str, object]
    created: datetime
    t0: float  # time.monotonic() at creation
    queue_s: float
    latency_s: float
    outcome: Outcome
    error: str | None  # for the "failed" and "flagged" outcomes
    settle_s: float  # "processing" with the output set, before "succeeded" (early_output)
    output_format: str
    size: tuple[int, int]
    canceled_at: float | None = None
    image: bytes | None = None
    near_identical: bool = False  # how the image looks (Behaviour's)
    colour_leak: bool = False

    @property
    def done_at(self) -> float:
        """When the image is made, or the model fails."""
        return math.inf if self.outcome == "hung" else self.t0 + self.queue_s + self.latency_s

    @property
    def settled_at(self) -> float:
        """When it turns terminal unless canceled: ``settle_s`` after the image is made."""
        return self.done_at + self.settle_s

    @property
    def ends_at(self) -> float:
        return min(self.settled_at, self.canceled_at if self.canceled_at is not None else math.inf)

    @property
    def answer_at(self) -> float:
        """When a held ``Prefer: wait`` is answered: at the end, or as soon as the output is set."""
        return min(self.done_at, self.ends_at)

    def status(self, now: float) -> str:
        if self.canceled_at is not None and self.canceled_at <= now and self.canceled_at < self.settled_at:
            return "canceled"
        if now < self.t0 + self.queue_s:
            return "starting"
        if now < self.settled_at:
            return "processing"
        return {"flagged": "failed", "failed": "failed", "canceled": "canceled"}.get(self.outcome, "succeeded")

    def has_output(self, now: float) -> bool:
        """Whether the image was made (and so is billed and downloadable)."""
        canceled_before = self.canceled_at is not None and self.canceled_at < self.done_at
        return self.outcome == "succeeded" and now >= self.done_at and not canceled_before


@dataclass
class _File:
    id: str
    name: str
    content_type: str
    data: bytes
    metadata: dict[str, object]
    created: datetime
    t0: float  # the account's clock at upload
    ttl_s: float

    @property
    def expires(self) -> float:
        """When Replicate deletes the file (its ``expires_at``)."""
        return self.t0 + self.ttl_s


@dataclass(frozen=True)
class Holdings:
    """What an account holds: predictions, uploads, trainings, models and counters. Picklable,
    and valid in any process of this machine (its clock readings are ``time.monotonic()``'s,
    which counts from boot): a fixture makes a set once and gives each test's emulator a copy."""

    predictions: dict[str, _Prediction]
    files: dict[str, _File]
    trainings: dict[str, Training]
    models: dict[str, dict[str, object]]
    counts: Counter[str]
    downloads: Counter[str]
    create_times: list[float]


class Account:
    """State and behaviour behind the emulated API; ``api`` turns HTTP requests into calls."""

    def __init__(self, token: str, api_base: str, files_base: str, behaviour: Behaviour) -> None:
        self.token = token
        self.api_base = api_base
        self.files_base = files_base
        self.behaviour = behaviour
        self._cond = threading.Condition()
        self._stopping = False
        self._predictions: dict[str, _Prediction] = {}
        self._files: dict[str, _File] = {}
        self._trainings: dict[str, Training] = {}
        self._models: dict[str, dict[str, object]] = {}  # "owner/name" -> the model's JSON
        self._faults: dict[FaultSite, deque[Fault]] = {site: deque() for site in get_args(FaultSite)}
        self._throttles: deque[tuple[float, str]] = deque()  # (retry after s, style)
        self._windows: dict[str, deque[float]] = {"create": deque(), "read": deque()}
        self._counts: Counter[str] = Counter()
        self._downloads: Counter[str] = Counter()
        self._create_times: list[float] = []
        self._skipped_s = 0.0  # added to the clock by advance()

    # --- fault injection -------------------------------------------------------------------

    def inject(self, site: FaultSite, *faults: Fault) -> None:
        """Make the next requests at ``site`` fail, one fault per request, in order: ``create``
        (POST a prediction), ``poll`` (GET one), ``list`` (GET the list), ``upload`` (POST a file) or
        ``download`` (an output)."""
        with self._cond:
            self._faults[site].extend(faults)

    def throttle_creates(
        self, count: int, retry_after_s: float = 1, style: Literal["detail", "header", "field"] = "detail"
    ) -> None:
        """Answer the next ``count`` creates with 429. ``style`` says where the delay is given:
        only in the detail text (documented), also in a ``Retry-After`` header (unconfirmed), or
        also in a ``retry_after`` body field (the low-credit variant)."""
        with self._cond:
            self._throttles.extend([(retry_after_s, style)] * count)

    def advance(self, seconds: float) -> None:
        """Move the clock on as if ``seconds`` had passed at once ("a day later"): predictions
        progress, outputs and uploads expire, rate-limit windows slide."""
        with self._cond:
            self._skipped_s += seconds
            self._cond.notify_all()

    def age(self, seconds: float) -> None:
        """Move every prediction and upload ``seconds`` into the past, as if made that long ago
        (unlike ``advance``, clients see it in the timestamps too): outputs expire, and the
        prediction list shows them as old."""
        with self._cond:
            for prediction in self._predictions.values():
                prediction.created -= timedelta(seconds=seconds)
                prediction.t0 -= seconds
                if prediction.canceled_at is not None:
                    prediction.canceled_at -= seconds
            for file in self._files.values():
                file.created -= timedelta(seconds=seconds)
                file.t0 -= seconds
            self._cond.notify_all()

    def holdings(self) -> Holdings:
        """A copy of what the account holds (``restore`` takes it back)."""
        with self._cond:
            return copy.deepcopy(
                Holdings(self._predictions, self._files, self._trainings, self._models, self._counts,
                         self._downloads, self._create_times)
            )  # fmt: skip

    def restore(self, holdings: Holdings) -> None:
        """Hold a copy of ``holdings`` instead of what the account holds now."""
        kept = copy.deepcopy(holdings)
        with self._cond:
            self._predictions, self._files, self._trainings = kept.predictions, kept.files, kept.trainings
            self._models, self._counts, self._downloads = kept.models, kept.counts, kept.downloads
            self._create_times = kept.create_times
            self._cond.notify_all()

    def stop(self) -> None:
        """Release every request held by ``Prefer: wait``."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    # --- requests ----------------------------------------------------------------------------

    def answer_or_fail(self) -> None:
        """Answer 503 to every API request during an outage (``Behaviour.down``)."""
        if self.behaviour.down:
            with self._cond:
                self._counts["refused_in_outage"] += 1
            raise Problem(503, "Service Unavailable", "emulated outage")

    def authorize(self, authorization: str | None) -> None:
        if authorization != f"Bearer {self.token}":
            raise Problem(401, "Unauthenticated", "You did not pass a valid authentication token")

    def admit(self, kind: Limit) -> dict[str, str]:
        """Apply the per-minute limit of ``kind``; return the ratelimit headers."""
        limit = self.behaviour.creates_per_minute if kind == "create" else self.behaviour.reads_per_minute
        with self._cond:
            now = self._now()
            window = self._windows[kind]
            while window and window[0] <= now - 60:
                window.popleft()
            reset = max(1, math.ceil(window[0] + 60 - now)) if window else 1
            if len(window) >= limit:
                self._counts["throttled"] += 1
                raise _throttled(reset, "detail", {"ratelimit-remaining": "0", "ratelimit-reset": str(reset)})
            window.append(now)
            return {"ratelimit-remaining": str(limit - len(window)), "ratelimit-reset": str(reset)}

    def create(self, model: str, body: object, wait_s: float | None) -> dict[str, object]:
        """POST a prediction; with ``wait_s``, hold the answer until it ends or the wait runs out."""
        with self._cond:
            self._counts["create_requests"] += 1
            self._create_times.append(time.monotonic())
            if self._throttles:
                retry_after, style = self._throttles.popleft()
                self._counts["throttled"] += 1
                raise _throttled(retry_after, style)
            fault = self._take("create")
        if fault and not fault.after_create:
            _fail(fault)
        input_ = body.get("input") if isinstance(body, dict) else None
        if self.behaviour.create_delay_s:
            time.sleep(self.behaviour.create_delay_s)  # held in a queue before the API takes it
        with self._cond:
            invalid = (
                trainings.validate_lora_input(input_)
                if model == LORA_MODEL
                else flux.validate_input(input_, self._find_file, self.behaviour.max_inline_bytes)
            )
            if invalid:
                detail = "".join(f"- {problem['field']}: {problem['description']}\n" for problem in invalid)
                raise Problem(422, "Input validation failed", detail, invalid_fields=invalid)
            assert isinstance(input_, dict)
            prediction = self._new_prediction(model, input_)
        if fault:
            _fail(fault)
        if wait_s is None:
            return self.prediction(prediction.id)
        with self._cond:
            until = self._now() + min(wait_s, self.behaviour.wait_cap_s)
            while not self._stopping and (now := self._now()) < min(until, prediction.answer_at):
                self._cond.wait(min(until, prediction.answer_at) - now)
            if prediction.status(self._now()) not in _TERMINAL:
                self._counts["unfinished_wait_answers"] += 1
            return self._json(prediction)

    def poll(self, prediction_id: str) -> dict[str, object]:
        with self._cond:
            self._counts["polls"] += 1
            fault = self._take("poll")
        if fault:
            _fail(fault)
        return self.prediction(prediction_id)

    def prediction(self, prediction_id: str) -> dict[str, object]:
        with self._cond:
            return self._json(self._get(prediction_id))

    def cancel(self, prediction_id: str) -> dict[str, object]:
        with self._cond:
            self._counts["cancel_requests"] += 1
            prediction = self._get(prediction_id)
            now = self._now()
            if prediction.status(now) not in _TERMINAL:
                prediction.canceled_at = now
                self._cond.notify_all()
            return self._json(prediction)

    def list_predictions(
        self, created_after: datetime | None, created_before: datetime | None, offset: int
    ) -> tuple[list[dict[str, object]], int | None]:
        """One page, newest first, and the offset of the next page (if any)."""
        with self._cond:
            self._counts["lists"] += 1
            fault = self._take("list")
        if fault:
            _fail(fault)
        with self._cond:
            chosen = [
                p
                for p in self._predictions.values()
                if (created_after is None or p.created >= created_after)
                and (created_before is None or p.created < created_before)
            ]
            chosen.sort(key=lambda p: p.created, reverse=True)
            page = chosen[offset : offset + self.behaviour.page_size]
            following = offset + len(page)
            return [self._json(p) for p in page], following if following < len(chosen) else None

    def upload(self, name: str, content_type: str, data: bytes, metadata: dict[str, object]) -> dict[str, object]:
        with self._cond:
            fault = self._take("upload")
        if fault:
            _fail(fault)
        with self._cond:
            self._counts["uploads"] += 1
            ttl_s = self.behaviour.file_ttl_s
            file = _File(_new_file_id(), name, content_type, data, metadata, self._utcnow(), self._now(), ttl_s)
            self._files[file.id] = file
            return self._file_json(file)

    def file(self, file_id: str) -> dict[str, object]:
        with self._cond:
            if (file := self._live_file(file_id)) is None:
                raise _not_found()
            return self._file_json(file)

    def files(self) -> list[dict[str, object]]:
        with self._cond:
            return [self._file_json(f) for f in self._files.values() if self._live_file(f.id)]

    def delete_file(self, file_id: str) -> None:
        with self._cond:
            if self._live_file(file_id) is None:
                raise _not_found()
            del self._files[file_id]
            self._counts["files_deleted"] += 1

    def download(self, prediction_id: str) -> tuple[str, bytes]:
        """The output image of a prediction, as served by replicate.delivery."""
        with self._cond:
            self._counts["download_requests"] += 1
            fault = self._take("download")
            prediction = self._predictions.get(prediction_id)
            now = self._now()
            if prediction is None or not prediction.has_output(now):
                raise _not_found()
            if now >= prediction.done_at + self.behaviour.output_ttl_s:
                raise Problem(404, "Not found", "This output has expired and was deleted")
        if fault:
            _fail(fault)
        with self._cond:
            self._downloads[prediction_id] += 1
            return _media_type(prediction.output_format), self._image(prediction)

    def counters(self) -> Counters:
        with self._cond:
            now = self._now()
            statuses = Counter(p.status(now) for p in self._predictions.values())
            per_shot = Counter((p.input.get("prompt"), p.input.get("seed")) for p in self._predictions.values())
            return Counters(
                create_requests=self._counts["create_requests"],
                predictions_created=len(self._predictions),
                succeeded=statuses["succeeded"],
                failed=statuses["failed"],
                canceled=statuses["canceled"],
                paid=sum(p.has_output(now) for p in self._predictions.values()),
                predictions_per_shot=dict(per_shot),
                polls=self._counts["polls"],
                lists=self._counts["lists"],
                cancel_requests=self._counts["cancel_requests"],
                uploads=self._counts["uploads"],
                files_deleted=self._counts["files_deleted"],
                throttled=self._counts["throttled"],
                refused_in_outage=self._counts["refused_in_outage"],
                unfinished_wait_answers=self._counts["unfinished_wait_answers"],
                downloads=dict(self._downloads),
                download_requests=self._counts["download_requests"],
                peak_in_flight=_peak((p.t0, p.ends_at) for p in self._predictions.values()),
                create_times=tuple(self._create_times),
                trainings_created=len(self._trainings),
                trainings_billed=sum(t.billed_s(now) > 0 for t in self._trainings.values()),
                training_seconds_billed=round(sum(t.billed_s(now) for t in self._trainings.values()), 6),
                training_statuses=dict(Counter(t.status(now) for t in self._trainings.values())),
                training_lists=self._counts["training_lists"],
                training_cancel_requests=self._counts["training_cancel_requests"],
                models_created=self._counts["models_created"],
            )

    def current_account(self) -> dict[str, object]:
        return {"type": "user", "username": self.behaviour.username, "name": "Emulated User", "github_url": None}

    def create_model(self, body: object) -> dict[str, object]:
        """``POST /v1/models``: owner, name, visibility and hardware are required; only the
        token's own account may own it."""
        if not isinstance(body, dict) or any(not isinstance(body.get(k), str) for k in ("owner", "name", "visibility", "hardware")):
            raise Problem(422, "Input validation failed", "owner, name, visibility and hardware are required")
        if body["owner"] != self.behaviour.username:
            raise Problem(403, "Forbidden", f"You do not have permission to create models for {body['owner']}")
        key = f"{body['owner']}/{body['name']}"
        with self._cond:
            if key in self._models:
                raise Problem(409, "Conflict", f"A model with the name {key} already exists")
            self._counts["models_created"] += 1
            self._models[key] = {
                "url": f"https://replicate.com/{key}",
                "owner": body["owner"],
                "name": body["name"],
                "description": body.get("description"),
                "visibility": body["visibility"],
                "github_url": None,
                "paper_url": None,
                "license_url": None,
                "run_count": 0,
                "cover_image_url": None,
                "default_example": None,
                "latest_version": None,
            }
            return self._models[key]

    def model(self, owner: str, name: str) -> dict[str, object]:
        with self._cond:
            found = self._models.get(f"{owner}/{name}")
        if found is None or found["visibility"] == "private" and owner != self.behaviour.username:
            raise _not_found()
        return found

    def create_training(self, owner: str, name: str, version: str, body: object) -> dict[str, object]:
        """``POST /v1/models/{owner}/{name}/versions/{version}/trainings``."""
        if f"{owner}/{name}" != trainings.TRAINER or version != trainings.TRAINER_VERSION:
            raise Problem(404, "Not found", "The specified version does not exist (or perhaps you don't have permission)")
        destination = body.get("destination") if isinstance(body, dict) else None
        with self._cond:
            self._counts["create_requests"] += 1
            fault = self._take("train")
        if fault and fault.taken_after_s:
            late = threading.Timer(fault.taken_after_s, self._new_training, (destination, body))
            late.daemon = True
            late.start()
            _fail(fault)
        if fault and not fault.after_create:
            _fail(fault)
        answer = self._new_training(destination, body)
        if fault:
            _fail(fault)
        return answer

    def _new_training(self, destination: object, body: object) -> dict[str, object]:
        with self._cond:
            if not isinstance(destination, str) or destination not in self._models:
                raise Problem(404, "Not found", "The specified training destination does not exist")
            if destination.split("/")[0] != self.behaviour.username:
                raise Problem(403, "Forbidden", f"You do not have permission to write to {destination}")
            input_ = body.get("input") if isinstance(body, dict) else None
            if invalid := trainings.validate_training_input(input_, self._find_file):
                detail = "".join(f"- {problem['field']}: {problem['description']}\n" for problem in invalid)
                raise Problem(422, "Input validation failed", detail, invalid_fields=invalid)
            assert isinstance(input_, dict)
            b = self.behaviour
            training = Training(
                id=_new_prediction_id(),
                destination=destination,
                input=dict(input_),
                created=self._utcnow(),
                t0=self._now(),
                queue_s=b.training_queue_s,
                run_s=b.training_s,
                fails=b.failing_trainings > 0,
                version_id=secrets.token_hex(32),
            )
            b.failing_trainings = max(0, b.failing_trainings - 1)
            self._trainings[training.id] = training
            return self._training_json(training)

    def training(self, training_id: str) -> dict[str, object]:
        with self._cond:
            self._counts["polls"] += 1
            return self._training_json(self._get_training(training_id))

    def cancel_training(self, training_id: str) -> dict[str, object]:
        with self._cond:
            self._counts["training_cancel_requests"] += 1
            training = self._get_training(training_id)
            if training.status(self._now()) in ("starting", "processing"):
                training.canceled_at = self._now()
            return self._training_json(training)

    def list_trainings(self, offset: int) -> tuple[list[dict[str, object]], int | None]:
        """One page of the account's trainings, newest first, and the offset of the next one."""
        with self._cond:
            self._counts["training_lists"] += 1
            chosen = sorted(self._trainings.values(), key=lambda t: t.created, reverse=True)
            page = chosen[offset : offset + self.behaviour.page_size]
            following = offset + len(page)
            return [self._training_json(t) for t in page], following if following < len(chosen) else None

    def trainings(self) -> list[dict[str, object]]:
        """Every training as the API shows it now, oldest first."""
        with self._cond:
            return [self._training_json(t) for t in self._trainings.values()]

    def predictions(self) -> list[dict[str, Any]]:
        """Every prediction as the API shows it now, oldest first."""
        with self._cond:
            return [self._json(p) for p in self._predictions.values()]

    # --- internals (call with the condition held) ------------------------------------------

    def _new_prediction(self, model: str, input_: dict[str, object]) -> _Prediction:
        b = self.behaviour
        prompt = str(input_["prompt"])
        latency = next((s for key, s in b.slow.items() if key in prompt), b.latency_s)
        rules: tuple[tuple[tuple[str, ...], Outcome], ...] = (
            (b.hung, "hung"), (b.flagged, "flagged"), (b.failing, "failed"), (b.canceled_elsewhere, "canceled"),
        )  # fmt: skip
        outcome: Outcome = next((o for keys, o in rules if any(k in prompt for k in keys)), "succeeded")
        errors: dict[Outcome, str] = {"flagged": b.flagged_error, "failed": MODEL_ERROR}
        image = input_.get("input_image")
        resolved = flux.resolve_image(image, self._find_file) if isinstance(image, str) else None
        size = flux.output_size(
            str(input_.get("aspect_ratio", "match_input_image")),
            flux.image_size(resolved[1]) if resolved else None,
        )
        prediction = _Prediction(
            id=_new_prediction_id(),
            model=model,
            input=dict(input_),
            created=self._utcnow(),
            t0=self._now(),
            queue_s=b.queue_s,
            latency_s=latency,
            outcome=outcome,
            error=errors.get(outcome),
            settle_s=b.early_output_s if b.early_output and outcome == "succeeded" else 0.0,
            output_format=str(input_.get("output_format", "png")),
            size=size,
            near_identical=b.near_identical,
            colour_leak=any(key in prompt for key in b.colour_leaks),
        )
        self._predictions[prediction.id] = prediction
        return prediction

    def _now(self) -> float:
        return time.monotonic() + self._skipped_s

    def _utcnow(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._skipped_s)

    def _take(self, site: FaultSite) -> Fault | None:
        faults = self._faults[site]
        return faults.popleft() if faults else None

    def _get(self, prediction_id: str) -> _Prediction:
        if prediction_id not in self._predictions:
            raise _not_found()
        return self._predictions[prediction_id]

    def _get_training(self, training_id: str) -> Training:
        if training_id not in self._trainings:
            raise _not_found()
        return self._trainings[training_id]

    def _training_json(self, training: Training) -> dict[str, object]:
        return training.json(self._now(), self.api_base, self.files_base, _iso)

    def _trained_on(self, weights: object) -> list[bytes]:
        """The training images behind a ``lora_weights`` URL of one of this account's trainings."""
        training = next((t for t in self._trainings.values() if t.weights(self.files_base) == weights), None)
        found = self._find_file(str(training.input["input_images"])) if training else None
        return trainings.bundle_images(found[1]) if found else []

    def _live_file(self, file_id: str) -> _File | None:
        """The file, unless it was deleted or has expired (Replicate deletes it then)."""
        file = self._files.get(file_id)
        return file if file is not None and self._now() < file.expires else None

    def _find_file(self, url: str) -> tuple[str, bytes] | None:
        prefix = f"{self.api_base}/v1/files/"
        file = self._live_file(url.removeprefix(prefix)) if url.startswith(prefix) else None
        return (file.content_type, file.data) if file else None

    def _image(self, prediction: _Prediction) -> bytes:
        if prediction.image is None and prediction.model == LORA_MODEL:
            prediction.image = trainings.render_with_lora(
                self._trained_on(prediction.input.get("lora_weights")),
                str(prediction.input["prompt"]),
                prediction.input.get("seed"),
                prediction.output_format,
            )
        if prediction.image is None:
            seed = prediction.input.get("seed")
            prediction.image = flux.render(
                prediction.size,
                seed,
                str(prediction.input["prompt"]),
                prediction.output_format,
                near_identical=prediction.near_identical,
                colour_leak=prediction.colour_leak,
            )
        return prediction.image

    def _json(self, p: _Prediction) -> dict[str, object]:
        now = self._now()
        status = p.status(now)
        url = f"{self.api_base}/v1/predictions/{p.id}"
        logs = f"Using seed: {p.input.get('seed')}\nGenerating...\n" if status != "starting" else ""
        removed = status in _TERMINAL and now >= p.ends_at + self.behaviour.data_ttl_s
        body: dict[str, object] = {
            "id": p.id,
            "model": p.model,
            "version": "hidden",
            "input": {} if removed else p.input,
            "logs": "" if removed else logs,
            "output": None,
            "data_removed": removed,
            "error": None,
            "status": status,
            "created_at": _iso(p.created),
            "source": "api",
            "urls": {"get": url, "cancel": f"{url}/cancel", "web": f"https://replicate.com/p/{p.id}"},
        }
        if status != "starting":
            body["started_at"] = _iso(p.created + timedelta(seconds=p.queue_s))
        if status in _TERMINAL:
            ran = p.ends_at - p.t0 - p.queue_s
            body["completed_at"] = _iso(p.created + timedelta(seconds=p.ends_at - p.t0))
            body["metrics"] = {"predict_time": round(max(0.0, ran), 6), "total_time": round(p.ends_at - p.t0, 6)}
        if p.has_output(now) and not removed:
            body["logs"] = f"{logs}Generated image in {p.latency_s:.1f}sec\n"
            body["output"] = self._output(p)
        if status == "succeeded":
            body["metrics"] = {**body["metrics"], "image_count": 1}  # type: ignore[dict-item]
        elif status == "failed":
            body["error"] = p.error
        return body

    def _output(self, p: _Prediction) -> str | list[str]:
        if self.behaviour.data_uri_outputs:
            encoded = base64.b64encode(self._image(p)).decode("ascii")
            url = f"data:{_media_type(p.output_format)};base64,{encoded}"
        else:
            url = f"{self.files_base}/{p.id}/output.{p.output_format}"
        return [url] if p.model == LORA_MODEL else url  # flux-dev-lora answers a list (num_outputs)

    def _file_json(self, f: _File) -> dict[str, object]:
        return {
            "id": f.id,
            "name": f.name,
            "content_type": f.content_type,
            "size": len(f.data),
            "etag": hashlib.md5(f.data).hexdigest(),
            "checksums": {"sha256": hashlib.sha256(f.data).hexdigest(), "md5": hashlib.md5(f.data).hexdigest()},
            "metadata": f.metadata,
            "created_at": _iso(f.created),
            "expires_at": _iso(f.created + timedelta(seconds=f.ttl_s)),
            "urls": {"get": f"{self.api_base}/v1/files/{f.id}"},
        }


def _fail(fault: Fault) -> None:
    if fault.status is None:
        raise Dropped()
    raise Problem(fault.status, "Internal Server Error" if fault.status == 500 else "Service error", "emulated fault")


def _throttled(retry_after_s: float, style: str, headers: Mapping[str, str] | None = None) -> Problem:
    shown = f"{retry_after_s:g}"
    extra: dict[str, object] = {"retry_after": retry_after_s} if style == "field" else {}
    all_headers = {**(headers or {}), **({"Retry-After": shown} if style == "header" else {})}
    return Problem(
        429, "Too Many Requests", f"Request was throttled. Your rate limit resets in ~{shown}s.", all_headers, **extra
    )


def _not_found() -> Problem:
    return Problem(404, "Not found", "The requested resource could not be found.")


def _media_type(output_format: str) -> str:
    return "image/png" if output_format == "png" else "image/jpeg"


def _peak(intervals: Iterable[tuple[float, float]]) -> int:
    # Ends sort before starts at the same instant: back-to-back predictions do not overlap.
    events = sorted(e for start, end in intervals for e in ((start, 1), (end, -1)))
    peak = current = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


def _new_prediction_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(26))


def _new_file_id() -> str:
    # As Replicate makes them: a UUID's text in base64, 48 characters with capitals, e.g.
    # "NGZiNmY2YzQtMThhZi00ZjcyLWFhZjktODg4NTY0NWNlMDEy" (replicate-python's file cassette).
    return base64.b64encode(str(uuid.uuid4()).encode()).decode("ascii")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

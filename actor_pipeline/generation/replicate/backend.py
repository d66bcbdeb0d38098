"""The Replicate backend: ``flux-kontext-pro`` through the official ``replicate`` client (1.0.x).

Where the client's defaults would cost money or hang, this module takes over:

- creates go through ``client.models.predictions.async_create(..., wait=N)``:
  ``client.predictions.create(model=...)`` silently drops ``wait``, and ``run()`` treats a
  ``processing`` answer as final and returns ``None``; the wait is short, so the prediction id
  reaches the shot journal while the image is being made;
- the client never retries a POST nor a dropped connection; this backend retries creates, but
  after any failure that may have created the prediction it looks for it before creating again,
  and an attempt resumed from the journal adopts its prediction by id (or, when the create's
  answer was lost, finds it in the prediction list) instead of paying again;
- ``recall`` reads the account's prediction list once per run, so that what our own state lost
  (or never had: another machine) is adopted while it lives and counted in the ledger otherwise;
- failures that paid nothing (5xx, 429, dropped connections) are waited out together, up to
  ``outage_wait_s``, and count no attempt; a refused token stops the run at once;
- polling has a deadline (the client has none), after which the prediction is canceled;
- outputs are downloaded once, at once (they are deleted after an hour), by a plain HTTP client
  with this backend's own bounded retries: the client's retry transport would multiply them.
"""

import asyncio
import base64
import hashlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from io import BytesIO

import httpx
import replicate
from PIL import Image
from replicate.exceptions import ReplicateError
from replicate.pagination import Page
from replicate.prediction import Prediction

from actor_pipeline.errors import ConfigurationError, CredentialsRefused, PipelineError, StorageUnavailable
from actor_pipeline.generation.replicate.lookup import (
    EXPIRY_MARGIN,
    find_created,
    is_upload,
    listed_since,
    look_until,
    output_alive,
    output_expiry,
    parse_timestamp,
    upload_sha256,
)
from actor_pipeline.generation.replicate.outage import Outage, refuse_credentials, through_outage, watched_client
from actor_pipeline.generation.replicate.pacing import CreatePacer, ReadPace
from actor_pipeline.generation.replicate.problems import describe, is_content_flagged
from actor_pipeline.generation.replicate.retry import (
    UNSENT,
    RetryWait,
    Throttled,
    http_status,
    retrying,
    transient,
    unanswered,
)
from actor_pipeline.generation.replicate.settings import ReplicateSettings
from actor_pipeline.generation.replicate.transfer import Portrait, discard_portrait, download_client, send_portrait
from actor_pipeline.generation.types import (
    CreatesClosed,
    Faded,
    GeneratedImage,
    Listing,
    Recalled,
    Resume,
    ShotGenerationError,
    ShotGenerator,
    ShotJob,
    ShotProgress,
    ShotStatus,
    Usage,
)

log = logging.getLogger(__name__)

_TERMINAL = frozenset({"succeeded", "failed", "canceled"})


class ReplicateBackend:
    """``ImageBackend`` on Replicate. One instance serves every actor; the create pacer is
    shared by all of them, the HTTP client is per actor session."""

    name = "replicate"

    def __init__(self, settings: ReplicateSettings, api_token: str) -> None:
        if not api_token:
            raise ConfigurationError(
                "no Replicate API token: set REPLICATE_API_TOKEN to one from https://replicate.com/account/api-tokens"
            )
        self.settings = settings
        self._api_token = api_token
        self.model = self.settings.model
        self.aspect_ratio = self.settings.aspect_ratio
        self._pacer = CreatePacer(self.settings.creates_per_minute, self.settings.create_burst)
        self._reads = ReadPace(self.settings.reads_per_minute)
        self._wait = RetryWait(self.settings.retry_base_delay_s, self.settings.retry_max_delay_s)

    def fingerprint_params(self) -> Mapping[str, object]:
        """The inputs besides portrait, prompt and seed that shape the image."""
        s = self.settings
        return {
            "model": s.model,
            "aspect_ratio": s.aspect_ratio,
            "output_format": s.output_format,
            "safety_tolerance": s.safety_tolerance,
            "prompt_upsampling": s.prompt_upsampling,
        }

    @asynccontextmanager
    async def session(self, portrait_jpeg: bytes) -> AsyncIterator[ShotGenerator]:
        """Send the portrait once and yield a generator for the actor's shots.

        The ``replicate.Client`` lives exactly as long as the session: its ``httpx.AsyncClient``
        is bound to the event loop that first used it (client issue #217), and the transport
        handed to it is closed here, which the client offers no way to do.
        """
        outage = Outage(self.settings.outage_wait_s)
        downloads = download_client()
        try:
            async with watched_client(self._api_token, outage, self._reads) as client:
                portrait = await send_portrait(client, portrait_jpeg, self.settings, self._wait)
                shots = _ActorShots(
                    client, downloads, portrait, self.settings, (self._pacer, self._reads), self._wait, outage
                )
                try:
                    yield shots
                finally:
                    if shots.unfinished:
                        # A rerun that finds them in the prediction list proves they are this portrait's by it.
                        log.info("kept the portrait upload: %d unfinished prediction(s) use it", len(shots.unfinished))
                    else:
                        await discard_portrait(client, portrait)
        finally:
            await downloads.aclose()


    async def listed(self, wordings: set[tuple[str, int]], since: datetime) -> Listing:
        """What ``recall`` finds, without a portrait to adopt by, and the predictions of the model
        whose input is removed: for reading the bill."""
        outage = Outage(self.settings.outage_wait_s)

        async def never(_: object) -> bool:
            return False

        async with watched_client(self._api_token, outage, self._reads) as client:
            return await _recall(client, self.settings, outage, self._wait, wordings, since, never)


async def _recall(
    client: replicate.Client,
    s: ReplicateSettings,
    outage: Outage,
    wait: RetryWait,
    wordings: set[tuple[str, int]],
    since: datetime,
    same_portrait: Callable[[object], Awaitable[bool]],
) -> Listing:
    since = max(since, datetime.now(UTC) - timedelta(hours=s.history_lookback_h))

    async def read_page(cursor: str) -> Page[Prediction]:
        return await through_outage(lambda: client.predictions.async_list(cursor), outage, wait, s.model)

    found, faded = [], []
    async for prediction in listed_since(since, read_page):
        if prediction.model != s.model:
            continue
        sent = prediction.input or {}
        created_at = parse_timestamp(prediction.created_at) if prediction.created_at else datetime.now(UTC)
        usage = _found_usage(prediction, s.price_per_image_usd)
        if "prompt" not in sent:  # removed (the client's model drops data_removed): whose it was is lost
            faded.append(Faded(prediction.id, created_at, usage))
            continue
        if (sent.get("prompt"), sent.get("seed")) not in wordings:
            continue
        made = prediction.status == "succeeded" or _output_out(prediction)
        running = prediction.status in ("starting", "processing") and not made
        alive = running or made and output_alive(prediction)
        found.append(
            Recalled(
                prediction_id=prediction.id,
                prompt=str(sent["prompt"]),
                seed=int(sent["seed"]),
                created_at=created_at,
                usage=usage,
                running=running,
                adoptable=alive and await same_portrait(sent.get("input_image")),
            )
        )
    return Listing(found, faded)


def _found_usage(prediction: Prediction, price_usd: float) -> Usage:
    """What a prediction found in the list (not made by this attempt) has cost so far."""
    usage = Usage(predictions_created=1, predictions_recovered=1)
    if prediction.status == "succeeded" or _output_out(prediction):
        usage.predictions_succeeded, usage.cost_usd = 1, price_usd
    elif prediction.status == "failed":
        usage.predictions_failed = 1
    elif prediction.status == "canceled":
        usage.predictions_canceled = 1
    return usage


class _ShotFailed(PipelineError):
    """A shot's failure, before usage and payload are attached to it."""

    def __init__(self, message: str, status: ShotStatus = ShotStatus.FAILED) -> None:
        super().__init__(message)
        self.status = status


class _ActorShots:
    """The ``ShotGenerator`` of one actor session."""

    def __init__(
        self,
        client: replicate.Client,
        downloads: httpx.AsyncClient,
        portrait: Portrait,
        settings: ReplicateSettings,
        pacing: tuple[CreatePacer, ReadPace],
        wait: RetryWait,
        outage: Outage,
    ) -> None:
        self._client = client
        self._downloads = downloads
        self._portrait = portrait
        self._settings = settings
        self._pacer, self._reads = pacing
        self._wait = wait
        self._outage = outage
        self._portrait_checks: dict[str, bool] = {}
        # Predictions made or adopted in this session that have not ended with their shot.
        self.unfinished: set[str] = set()
        # Wordings created again after a create that got no answer, by when their attempt began.
        self.made_again: dict[tuple[str, int], datetime] = {}

    async def recall(self, wordings: set[tuple[str, int]], since: datetime) -> Listing:
        """The model's predictions for ``wordings`` created since ``since`` (at most
        ``history_lookback_h`` back), newest first, in one paginated pass over the list."""
        return await _recall(self._client, self._settings, self._outage, self._wait, wordings, since, self._same_portrait)

    async def cancel(self, prediction_id: str) -> Usage:
        """Cancel a prediction no shot will use (a create Replicate took late, after the shot
        had made it again): what it cost as it ended, paid if it finished meanwhile."""
        s = self._settings
        prediction = await retrying(
            lambda: self._client.predictions.async_cancel(prediction_id), s.create_attempts, self._wait
        )
        return _found_usage(prediction, s.price_per_image_usd)

    async def _same_portrait(self, image: object) -> bool:
        """Whether an input image is this session's portrait: the same URI, or the same bytes
        (an earlier run's upload, by its checksum; a data URI or other URL, by its content)."""
        if not isinstance(image, str):
            return False
        if image == self._portrait.input_image:
            return True
        if image not in self._portrait_checks:
            self._portrait_checks[image] = await self._digest(image) == self._portrait.sha256
        return self._portrait_checks[image]

    async def _digest(self, image: str) -> str | None:
        s = self._settings
        try:
            if is_upload(image):
                return await upload_sha256(self._client, image, s.create_attempts, self._wait)
            data = await retrying(lambda: self._fetch(image), s.download_attempts, self._wait)
        except Exception as exc:  # gone or unreadable: not proven to be this portrait
            log.info("could not compare an earlier input image with the portrait: %s", describe(exc))
            return None
        return hashlib.sha256(data).hexdigest()

    async def generate(self, job: ShotJob, progress: ShotProgress) -> GeneratedImage:
        """Create (or adopt), await and download one prediction, reporting each step to
        ``progress`` before the next; raise ``ShotGenerationError`` otherwise."""
        s = self._settings
        input_: dict[str, object] = {
            "prompt": job.prompt,
            "input_image": self._portrait.input_image,
            "aspect_ratio": s.aspect_ratio,
            "output_format": s.output_format,
            "safety_tolerance": s.safety_tolerance,
            "seed": job.seed,
            "prompt_upsampling": s.prompt_upsampling,
        }
        payload = {**input_, "input_image": self._portrait.shown}
        usage = progress.usage
        resume = job.resume
        prediction_id = resume.prediction_id if resume else None
        try:
            if resume and resume.output_url and _alive(resume):
                data, width, height = await self._download(resume.output_url, resume.prediction_id or "?")
                return GeneratedImage(data, width, height, resume.prediction_id, usage, payload)
            prediction = await self._adopt(resume, input_, usage, progress) if resume else None
            if prediction is None:
                prediction = await self._create(input_, usage, progress, job)
            prediction_id = prediction.id
            self.unfinished.add(prediction_id)
            log.info("shot %s/%s: prediction %s", job.actor_id, job.shot_id, prediction_id)
            # Leave time after the prediction for the download and the store.
            remaining = progress.deadline - time.monotonic()
            prediction = await self._settle(prediction, progress.deadline - min(30.0, remaining / 4), usage)
            url = self._account(prediction, usage, already_paid=bool(resume and resume.output_url))
            await progress.output_ready(url, output_expiry(prediction))
            data, width, height = await self._download(url, prediction.id)
            self.unfinished.discard(prediction_id)
            return GeneratedImage(data, width, height, prediction_id, usage, payload)
        except (CreatesClosed, StorageUnavailable, CredentialsRefused):
            raise  # the runner's own stops, not this shot's failure
        except Exception as exc:
            # Anything else escaping would lose the usage of a prediction that exists.
            failure = exc if isinstance(exc, _ShotFailed) else _ShotFailed(describe(exc))
            if failure.status is not ShotStatus.IN_PROGRESS and prediction_id:
                self.unfinished.discard(prediction_id)
            raise ShotGenerationError(
                str(failure), failure.status, prediction_id=prediction_id, usage=usage, request_payload=payload
            ) from exc

    async def _adopt(
        self, resume: Resume, input_: dict[str, object], usage: Usage, progress: ShotProgress
    ) -> Prediction | None:
        """The prediction an earlier run of this attempt created: by id, or (when the create's
        answer was lost, and this run's ``recall`` did not already look) from the prediction
        list; ``None`` if it never was created."""
        s = self._settings
        if resume.prediction_id is not None:
            prediction_id = resume.prediction_id
            return await through_outage(
                lambda: self._client.predictions.async_get(prediction_id), self._outage, self._wait, s.model
            )
        if resume.searched:
            return None
        found = await self._find(input_, resume.started_at, "an earlier run stopped during the create", resume.earlier_prediction)
        if found is not None:
            log.info("adopting prediction %s, created by a run that stopped before it heard back", found.id)
            usage.predictions_created += 1
            await progress.created(found.id)
        return found

    async def _create(self, input_: dict[str, object], usage: Usage, progress: ShotProgress, job: ShotJob) -> Prediction:
        """Create the shot's prediction, at most once; the intent is journaled before each
        request, so that a run killed before the answer arrives can find what it created. Failures
        that paid nothing are retried while the outage lasts no longer than ``outage_wait_s``."""
        s = self._settings
        for attempt in itertools.count(1):
            since = await progress.creating()
            await self._pacer.acquire()
            sent = time.monotonic()
            try:
                prediction = await self._client.models.predictions.async_create(
                    model=s.model, input=input_, wait=s.create_wait_s
                )
            except Throttled as exc:
                self._outage.failed(describe(exc))
                # The account's create budget is spent: hold back every shot, not just this one.
                self._pacer.pause(self._wait.after(exc, attempt))
                continue
            except (ReplicateError, httpx.TransportError) as exc:
                refuse_credentials(exc, s.model)
                if not transient(exc):
                    raise _ShotFailed(f"Replicate refused the prediction: {describe(exc)}") from exc
                self._outage.failed(describe(exc))
                await asyncio.sleep(self._wait.after(exc, attempt))
                if isinstance(exc, UNSENT):
                    continue
                # Earlier attempts were proven not to have created it, so a match is this one's.
                until = sent + (s.create_settle_s if unanswered(exc) else 0.0)
                failure = describe(exc)
                found = await look_until(lambda: self._find(input_, since, failure), until)
                if found is None:
                    if unanswered(exc):
                        # Replicate has no idempotency key: this bound is all that stands between a
                        # create held longer still and a second payment, so say so where it is paid.
                        log.warning(
                            "shot %s: a create got no answer (%s) and is not in Replicate's list %.0f s after it was "
                            "sent: creating it again; if Replicate takes the first one later, both are paid, and "
                            "`actor-pipeline ledger` shows it (create_settle_s waits longer)",
                            f"{job.actor_id}/{job.shot_id}", failure, s.create_settle_s,
                        )  # fmt: skip
                        self.made_again.setdefault((job.prompt, job.seed), since)
                    continue
                log.warning("create failed (%s) but made prediction %s: using it", describe(exc), found.id)
                prediction = found
            self._outage.answered()
            usage.predictions_created += 1
            await progress.created(prediction.id)
            return prediction
        raise AssertionError("unreachable: the loop returns or raises")

    async def _find(
        self, input_: dict[str, object], since: datetime, failure: str, exclude: str | None = None
    ) -> Prediction | None:
        s = self._settings
        try:
            return await through_outage(
                lambda: find_created(self._client, s.model, input_, since, exclude), self._outage, self._wait, s.model
            )
        except (CreatesClosed, CredentialsRefused):
            raise  # the attempt stays planned: the next run's recall tells whether it was created
        except Exception as exc:
            raise _ShotFailed(
                f"the create request failed ({failure}) in a way that may have created the "
                f"prediction, and the prediction list could not be read to check "
                f"({describe(exc)}); no second prediction was created, to avoid paying twice. "
                "Rerun the shot once Replicate answers again",
                ShotStatus.IN_PROGRESS,
            ) from exc

    async def _settle(self, prediction: Prediction, deadline: float, usage: Usage) -> Prediction:
        """Poll until the prediction ends (or its output is out early); cancel it at the
        deadline."""
        s = self._settings
        with self._reads.polling():
            while prediction.status not in _TERMINAL and not _output_out(prediction):
                if time.monotonic() >= deadline:
                    return await self._cancel_late(prediction, usage)
                wait_s = self._reads.interval(s.poll_interval_s)
                await asyncio.sleep(min(wait_s, max(0.0, deadline - time.monotonic())))
                try:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
                    # (a stop request) that arrives as the poll answers.
                    async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                        prediction = await self._client.predictions.async_get(prediction.id)
                except CreatesClosed:
                    raise  # Replicate down past the outage bound: the journal keeps the prediction for a rerun
                except Exception as exc:
                    if not transient(exc):
                        raise _ShotFailed(f"could not follow prediction {prediction.id}: {describe(exc)}") from exc
                    log.warning("polling %s: %s; polling on", prediction.id, describe(exc))
        return prediction

    async def _cancel_late(self, prediction: Prediction, usage: Usage) -> Prediction:
        """Cancel a prediction past its deadline. One that ended on its own meanwhile is
        returned, to be accounted as it ended."""
        s = self._settings
        limit = f"prediction {prediction.id} did not finish in time"
        try:
            prediction = await retrying(
                lambda: self._client.predictions.async_cancel(prediction.id), s.create_attempts, self._wait
            )
        except Exception as exc:
            raise _ShotFailed(
                f"{limit}, and canceling it failed ({describe(exc)}): a rerun adopts it if it "
                "finishes; raise the shot timeout if Replicate is slow",
                ShotStatus.IN_PROGRESS,
            ) from exc
        if prediction.status in ("succeeded", "failed") or _output_out(prediction):
            return prediction
        if prediction.status == "canceled":
            usage.predictions_canceled += 1
        raise _ShotFailed(
            f"{limit} and was canceled; rerun the shot, or raise the shot timeout if Replicate is slow",
            ShotStatus.TIMED_OUT,
        )

    def _account(self, prediction: Prediction, usage: Usage, *, already_paid: bool) -> str:
        """Account for a finished prediction (unless an earlier run did) and return its output."""
        if prediction.status == "failed":
            usage.predictions_failed += 1
            error = (prediction.error or "no error message").strip().rstrip(".") + "."
            if is_content_flagged(error):
                raise _ShotFailed(
                    f"prediction {prediction.id} was flagged by Replicate's safety filter: "
                    f"{error} The same words would be refused again: a rerun tries the shot's next "
                    "rewording (the catalog's), and when none is left, change the shot's prompt or check the portrait",
                    ShotStatus.CONTENT_FLAGGED,
                )
            raise _ShotFailed(f"prediction {prediction.id} failed: {error} Rerun the shot")
        if prediction.status == "canceled":
            usage.predictions_canceled += 1
            raise _ShotFailed(
                f"prediction {prediction.id} was canceled outside this pipeline (e.g. on "
                "replicate.com); rerun the shot",
                ShotStatus.CANCELED,
            )
        if not already_paid:
            usage.predictions_succeeded += 1
            usage.cost_usd = round(usage.cost_usd + self._settings.price_per_image_usd, 6)
        url = prediction.output
        if not isinstance(url, str) or not url.startswith(("https:", "http:", "data:")):
            raise _ShotFailed(f"prediction {prediction.id} succeeded without an image URL (output: {str(url)[:80]!r})")
        return url

    async def _download(self, url: str, prediction_id: str) -> tuple[bytes, int, int]:
        """Fetch the output (an https URL, or a data URI decoded locally) and check it is a JPEG.
        A failure other than the output being gone leaves the paid attempt for a rerun."""
        s = self._settings
        try:
            data = await retrying(lambda: self._fetch(url), s.download_attempts, self._wait)
        except Exception as exc:
            status = http_status(exc)
            if status is not None and 400 <= status < 500 and status != 429:
                raise _ShotFailed(
                    f"the image of prediction {prediction_id} is gone (HTTP {status}): Replicate "
                    "deletes outputs an hour after the prediction; rerun the shot"
                ) from exc
            raise _ShotFailed(
                f"could not download the image of prediction {prediction_id} after "
                f"{s.download_attempts} attempts: {describe(exc)}; it is paid for, and a rerun "
                "within the hour downloads it at no cost",
                ShotStatus.IN_PROGRESS,
            ) from exc
        try:
            with Image.open(BytesIO(data)) as image:
                kind, (width, height) = image.format, image.size
        except (OSError, Image.DecompressionBombError) as exc:
            raise _ShotFailed(f"the output of prediction {prediction_id} is not an image") from exc
        if kind != "JPEG":
            raise _ShotFailed(f"the output of prediction {prediction_id} is {kind}, not JPEG")
        return data, width, height

    async def _fetch(self, url: str) -> bytes:
        if url.startswith("data:"):
            return base64.b64decode(url.split(",", 1)[1])
        response = await self._downloads.get(url)
        response.raise_for_status()
        return response.content


def _output_out(prediction: Prediction) -> bool:
    """Replicate answers ``processing`` with the output already set once the files are ready:
    the image is made (and billed), so it is used rather than polled on."""
    return prediction.status == "processing" and isinstance(prediction.output, str) and bool(prediction.output)


def _alive(resume: Resume) -> bool:
    return resume.output_expires_at is not None and datetime.now(UTC) < resume.output_expires_at - EXPIRY_MARGIN

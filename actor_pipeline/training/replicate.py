"""The trainer on Replicate, through the official ``replicate`` client, with the image backend's
outage watch, retry waits and credential refusal.

Only two calls are paid: a training's create and a validation image's create; neither is ever
repeated blindly. Everything else (the account, the destination model, the upload, reads, the
trainings list, cancel) is safe to repeat and is waited out through an outage.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import replicate
from replicate.exceptions import ReplicateError
from replicate.pagination import Page
from replicate.prediction import Prediction
from replicate.training import Training

from actor_pipeline.errors import ConfigurationError
from actor_pipeline.generation.replicate.lookup import (
    OUTPUT_LIFETIME,
    SHOT_KEYS,
    find_created,
    listed_since,
    look_until,
    output_alive,
    parse_timestamp,
    upload_sha256,
)
from actor_pipeline.generation.replicate.outage import Outage, refuse_credentials, through_outage, watched_client
from actor_pipeline.generation.replicate.problems import describe
from actor_pipeline.generation.replicate.retry import UNSENT, RetryWait, http_status, retrying, transient, unanswered
from actor_pipeline.generation.replicate.settings import ReplicateSettings
from actor_pipeline.generation.replicate.transfer import download_client, upload_file
from actor_pipeline.training.settings import TrainingSettings
from actor_pipeline.training.types import TERMINAL, Painted, PaintFailed, Painting, TrainingState

log = logging.getLogger(__name__)

_PAINT_TIMEOUT_S = 300.0  # one validation image, create to download
_PAINTING_KEYS = (*SHOT_KEYS, "lora_weights")


class ReplicateTrainer:
    """``Trainer`` on Replicate."""

    name = "replicate"

    def __init__(self, settings: TrainingSettings, replicate_settings: ReplicateSettings, api_token: str) -> None:
        if not api_token:
            raise ConfigurationError(
                "no Replicate API token: set REPLICATE_API_TOKEN to one from https://replicate.com/account/api-tokens"
            )
        self.settings = settings
        self._replicate = replicate_settings
        self._api_token = api_token

    def price_per_second_usd(self) -> float:
        return self.settings.price_per_second_usd

    def price_per_image_usd(self) -> float:
        return self.settings.validation_price_per_image_usd

    @asynccontextmanager
    async def session(self) -> AsyncIterator["ReplicateTrainingSession"]:
        outage = Outage(self._replicate.outage_wait_s)
        wait = RetryWait(self._replicate.retry_base_delay_s, self._replicate.retry_max_delay_s)
        async with watched_client(self._api_token, outage) as client:
            async with download_client() as downloads:
                yield ReplicateTrainingSession(client, downloads, self.settings, self._replicate, outage, wait)


class ReplicateTrainingSession:
    def __init__(
        self,
        client: replicate.Client,
        downloads: httpx.AsyncClient,
        settings: TrainingSettings,
        replicate_settings: ReplicateSettings,
        outage: Outage,
        wait: RetryWait,
    ) -> None:
        self._client = client
        self._downloads = downloads
        self._settings = settings
        self._replicate = replicate_settings
        self._outage = outage
        self._wait = wait

    async def _read(self, path: str, method: str = "GET") -> dict[str, Any]:
        """A request the client has no model for: its ``Training`` drops ``metrics`` (what a
        training is billed for). Through the same client: token, transport and outage watch."""
        response = await self._client._async_request(method, path)
        body: dict[str, Any] = response.json()
        return body

    async def account(self) -> str:
        current = await through_outage(self._client.accounts.async_current, self._outage, self._wait, self._settings.trainer)
        return current.username

    async def ensure_destination(self, destination: str) -> None:
        # Not through_outage: a 403 here refuses the destination, not the token.
        owner, name = destination.split("/", 1)
        attempts = self._replicate.create_attempts
        try:
            await retrying(lambda: self._client.models.async_get(destination), attempts, self._wait)
            return
        except ReplicateError as exc:
            if exc.status != 404:
                raise _refused(destination, exc) from exc
        try:
            await retrying(
                lambda: self._client.models.async_create(
                    owner=owner, name=name, visibility="private", hardware=self._settings.hardware,
                    description="LoRA trained by actor-pipeline",
                ),
                attempts, self._wait,
            )  # fmt: skip
        except ReplicateError as exc:
            if exc.status != 409:  # created meanwhile by another maker: it is there
                raise _refused(destination, exc) from exc
        log.info("created the private destination model %s", destination)

    async def upload(self, data: bytes, filename: str) -> str:
        _, url = await upload_file(self._client, data, filename, "application/zip", self._replicate, self._wait)
        log.info("uploaded the LoRA bundle once (%d bytes) as %s", len(data), url)
        return url

    async def create(self, input_: Mapping[str, Any], destination: str) -> TrainingState:
        s = self._settings
        sent, sent_at = time.monotonic(), datetime.now(UTC)
        try:
            training = await self._client.trainings.async_create(
                model=s.trainer, version=s.trainer_version, input=dict(input_), destination=destination
            )
        except Exception as exc:
            if unanswered(exc):
                # The caller then looks for it in the trainings list: not before it is listed or
                # can no longer be taken, or a training made meanwhile would be paid with none
                # recorded. A list that cannot be read here is the caller's to report.
                upload = str(input_["input_images"])
                with contextlib.suppress(Exception):
                    await look_until(lambda: self.find(upload, sent_at), sent + self._replicate.create_settle_s)
            raise
        return _from_training(training)

    async def find(self, input_images: str, since: datetime) -> TrainingState | None:
        async for training in listed_since(since, self._read_page, "/v1/trainings"):
            if (training.input or {}).get("input_images") == input_images:
                return _from_training(training)
        return None

    async def find_bundle(self, input_: Mapping[str, Any], bundle_sha256: str, since: datetime) -> TrainingState | None:
        async for training in listed_since(since, self._read_page, "/v1/trainings"):
            sent = dict(training.input or {})
            upload = sent.pop("input_images", None)
            if training.status in ("failed", "canceled") or sent != dict(input_) or not isinstance(upload, str):
                continue
            if await self.upload_sha256(upload) == bundle_sha256:
                return _from_training(training)
        return None

    async def listed(self, since: datetime) -> list[TrainingState]:
        """Every training the account lists as created since ``since``, newest first (the list
        says nothing of what each was billed: ``get`` does)."""
        return [_from_training(training) async for training in listed_since(since, self._read_page, "/v1/trainings")]

    async def upload_sha256(self, url: str) -> str | None:
        """The checksum of the upload at ``url`` (``None``: not an upload, or gone)."""
        return await upload_sha256(self._client, url, self._replicate.create_attempts, self._wait)

    async def paintings(self, weights: Collection[str], since: datetime) -> list[Painting]:
        """The validation model's predictions created since ``since`` with one of ``weights`` as
        their LoRA (what the validation of those trainings was billed for), and those listed
        without their input, whose LoRA is unknown (``weights_url`` empty): Replicate removes the
        inputs an hour after a prediction ends."""
        model = self._settings.validation_model

        async def read_page(cursor: str) -> Page[Prediction]:
            return await through_outage(lambda: self._client.predictions.async_list(cursor), self._outage, self._wait, model)

        listed = [
            (prediction, prediction.input or {})
            async for prediction in listed_since(since, read_page)
            if prediction.model == model
        ]
        return [
            Painting(prediction.id, prediction.status, str(sent.get("lora_weights") or ""))
            for prediction, sent in listed
            if "prompt" not in sent or sent.get("lora_weights") in weights  # removed, or one of these LoRAs
        ]

    async def _read_page(self, cursor: str) -> Page[Training]:
        return await through_outage(
            lambda: self._client.trainings.async_list(cursor), self._outage, self._wait, self._settings.trainer
        )

    async def get(self, training_id: str) -> TrainingState:
        body = await through_outage(
            lambda: self._read(f"/v1/trainings/{training_id}"), self._outage, self._wait, self._settings.trainer
        )
        return _from_json(body)

    async def cancel(self, training_id: str) -> TrainingState:
        body = await retrying(
            lambda: self._read(f"/v1/trainings/{training_id}/cancel", "POST"), self._replicate.create_attempts, self._wait
        )
        return _from_json(body)

    async def paint(self, prompt: str, seed: int, weights_url: str, since: datetime) -> Painted:
        s = self._settings
        input_ = {
            "prompt": prompt,
            "lora_weights": weights_url,
            "lora_scale": s.lora_scale,
            "seed": seed,
            "num_outputs": 1,
            "output_format": "jpg",
            "aspect_ratio": "1:1",
        }
        deadline = time.monotonic() + _PAINT_TIMEOUT_S
        # What can still be adopted ended within the output's hour: no need to list further back.
        since = max(since, datetime.now(UTC) - OUTPUT_LIFETIME)
        try:
            # One made by an earlier run that died before storing it is already paid for.
            earlier = await self._find_painted(input_, since)
            prediction = earlier or await self._create_painting(input_, since)
            while prediction.status not in TERMINAL:
                if time.monotonic() > deadline:
                    await self._client.predictions.async_cancel(prediction.id)
                    raise PaintFailed(f"validation prediction {prediction.id} did not finish in time and was canceled")
                await asyncio.sleep(self._replicate.poll_interval_s)
                prediction = await through_outage(
                    lambda: self._client.predictions.async_get(prediction.id), self._outage, self._wait, s.validation_model
                )
        except (ReplicateError, httpx.HTTPError) as exc:
            refuse_credentials(exc, s.validation_model)
            raise PaintFailed(f"could not make a validation image: {describe(exc)}") from exc
        output = prediction.output[0] if isinstance(prediction.output, list) and prediction.output else prediction.output
        if prediction.status != "succeeded" or not isinstance(output, str):
            raise PaintFailed(f"validation prediction {prediction.id} {prediction.status}: {prediction.error or 'no image'}")
        try:
            response = await retrying(lambda: self._downloads.get(output), self._replicate.download_attempts, self._wait)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise PaintFailed(
                f"validation prediction {prediction.id}'s image could not be downloaded ({describe(exc)}): a rerun "
                "within the hour of its output takes it without paying again"
            ) from exc
        return Painted(response.content, prediction.id, adopted=earlier is not None)

    async def _create_painting(self, input_: dict[str, Any], since: datetime) -> Prediction:
        """Create the validation prediction once, never sending it again. A create that failed
        after it was sent may have made it anyway: it is looked for in the list, once after a
        5xx, and until ``create_settle_s`` after it was sent when no answer came (it may still be
        taken from a queue)."""
        sent = time.monotonic()
        try:
            return await self._client.models.predictions.async_create(
                model=self._settings.validation_model, input=input_, wait=self._replicate.create_wait_s
            )
        except Exception as exc:
            if isinstance(exc, UNSENT) or not transient(exc):
                raise  # never sent, or refused: nothing was made
            failure = describe(exc)
            settle_s = self._replicate.create_settle_s if unanswered(exc) else 0.0
            try:
                found = await look_until(lambda: self._find_painted(input_, since), sent + settle_s)
            except Exception as lookup:
                raise PaintFailed(
                    f"the validation image's create failed ({failure}) and the prediction list could not be read to "
                    f"check whether it was made ({describe(lookup)}); if it was, a rerun within the hour takes it "
                    "without paying again"
                ) from lookup
            if found is None:
                raise PaintFailed(
                    f"the validation image's create failed ({failure}) and Replicate listed no prediction for it: "
                    "nothing was paid"
                ) from exc
            log.info("validation prediction %s found in Replicate's list after its create failed (%s)", found.id, failure)
            return found

    async def _find_painted(self, input_: Mapping[str, Any], since: datetime) -> Prediction | None:
        """The newest prediction of this LoRA, prompt and seed since ``since`` that is running or
        succeeded with its output still there (failed and canceled ones are not billed; one whose
        output is deleted cannot be used)."""
        model = self._settings.validation_model
        found = await through_outage(
            lambda: find_created(self._client, model, input_, since, keys=_PAINTING_KEYS), self._outage, self._wait, model
        )
        if found is None or found.status in ("failed", "canceled"):
            return None
        return found if found.status != "succeeded" or output_alive(found) else None


def _refused(destination: str, exc: ReplicateError) -> Exception:
    status = http_status(exc)
    if status == 401:
        refuse_credentials(exc, destination)
    return ConfigurationError(
        f"Replicate refused the destination model {destination} (HTTP {status}: {describe(exc)}): this token's "
        "account may not write to it; set training.owner to your account or an organization you belong to, "
        "or training.model_name to a model you own; nothing was paid"
    )


def _from_training(training: Training) -> TrainingState:
    return TrainingState(
        id=training.id,
        status=training.status,
        created_at=parse_timestamp(training.created_at) if training.created_at else None,
        completed_at=parse_timestamp(training.completed_at) if training.completed_at else None,
        input_images=(training.input or {}).get("input_images"),
        input=training.input,
        version=training.version,
        logs=training.logs or "",
        output=training.output if isinstance(training.output, dict) else None,
        error=training.error,
    )


def _from_json(body: Mapping[str, Any]) -> TrainingState:
    metrics = body.get("metrics") or {}
    predict_time = metrics.get("predict_time")
    created, completed = body.get("created_at"), body.get("completed_at")
    output = body.get("output")
    return TrainingState(
        id=str(body["id"]),
        status=str(body["status"]),
        created_at=parse_timestamp(created) if isinstance(created, str) else None,
        completed_at=parse_timestamp(completed) if isinstance(completed, str) else None,
        input_images=(body.get("input") or {}).get("input_images"),
        input=body.get("input") if isinstance(body.get("input"), dict) else None,
        version=str(body["version"]) if body.get("version") else None,
        logs=str(body.get("logs") or ""),
        output=output if isinstance(output, dict) else None,
        error=body.get("error"),
        predict_time_s=float(predict_time) if isinstance(predict_time, (int, float)) else None,
    )

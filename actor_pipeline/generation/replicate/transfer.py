"""Getting the portrait to Replicate once per actor."""

import asyncio
import base64
import hashlib
import io
import logging
from dataclasses import dataclass

import httpx
import replicate
from replicate.exceptions import ReplicateError

from actor_pipeline.generation.replicate.outage import refuse_credentials
from actor_pipeline.generation.replicate.problems import describe
from actor_pipeline.generation.replicate.retry import RetryWait, retrying
from actor_pipeline.generation.replicate.settings import ReplicateSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Portrait:
    """The portrait as every shot of an actor sends it."""

    input_image: str  # data URI or Files API URL
    shown: str  # what request payloads show instead: never the base64 itself
    sha256: str  # of the JPEG sent, to recognize an earlier run's input as this portrait
    file_id: str | None = None  # the Files API upload, deleted when the actor is done


def download_client() -> httpx.AsyncClient:
    """The client that fetches outputs: their URLs are public, so no token is sent, and no retry
    transport multiplies the callers' own retries."""
    return httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=True)


async def upload_file(
    client: replicate.Client, data: bytes, filename: str, content_type: str, settings: ReplicateSettings, wait: RetryWait
) -> tuple[str, str]:
    """Upload ``data`` through the Files API: its id and URL. Repeating an upload is harmless
    (unpaid, and it expires in a day) but the client never retries a POST, so this does."""

    async def upload() -> tuple[str, str]:
        async with asyncio.timeout(settings.upload_timeout_s):  # not wait_for: see _settle in backend.py
            file = await client.files.async_create(io.BytesIO(data), filename=filename, content_type=content_type)
        return file.id, file.urls["get"]

    return await retrying(upload, settings.create_attempts, wait)


async def send_portrait(
    client: replicate.Client, jpeg: bytes, settings: ReplicateSettings, wait: RetryWait
) -> Portrait:
    """Inline the portrait as a data URI when the API allows it, else upload it once through
    the Files API so that every shot reuses the same URL."""
    sha256 = hashlib.sha256(jpeg).hexdigest()
    if len(jpeg) <= settings.inline_limit_bytes:
        encoded = base64.b64encode(jpeg).decode("ascii")
        return Portrait(f"data:image/jpeg;base64,{encoded}", f"<data URI, {len(jpeg)} bytes>", sha256)

    try:
        file_id, url = await upload_file(client, jpeg, "portrait.jpg", "image/jpeg", settings, wait)
    except (ReplicateError, httpx.HTTPError, TimeoutError) as exc:
        refuse_credentials(exc, settings.model)
        raise RuntimeError(
            f"could not upload the portrait ({len(jpeg)} bytes) to Replicate's Files API: "
            f"{describe(exc)}; rerun the actor once Replicate answers"
        ) from exc
    log.info("portrait uploaded once as %s (%d bytes)", url, len(jpeg))
    return Portrait(url, url, sha256, file_id)


async def discard_portrait(client: replicate.Client, portrait: Portrait) -> None:
    """Delete the upload, if there was one: it would otherwise linger for a day."""
    if portrait.file_id is None:
        return
    try:
        await client.files.async_delete(portrait.file_id)
    except (ReplicateError, httpx.HTTPError) as exc:
        log.warning("could not delete uploaded portrait %s: %s", portrait.file_id, describe(exc))

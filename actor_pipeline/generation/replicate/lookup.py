"""Finding the prediction that a failed create request may have made anyway."""

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from urllib.parse import urlencode, urlsplit

import replicate
from replicate.pagination import Page
from replicate.prediction import Prediction
from replicate.training import Training

from actor_pipeline.generation.replicate.retry import RetryWait, http_status, retrying

Listed = TypeVar("Listed", Prediction, Training)
Found = TypeVar("Found")

# What identifies a shot's prediction among the account's: its prompt and seed (seeds are derived
# per actor and shot). A LoRA's validation image adds the weights, as every training of an actor
# paints the same prompts and seeds.
SHOT_KEYS = ("prompt", "seed")

_TIMESTAMP = re.compile(r"(.+?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?")
# Our clock against Replicate's: the search starts this much before our first attempt.
_CLOCK_SKEW = timedelta(minutes=2)
# Replicate deletes a prediction's output files an hour after it ended (API-made predictions).
OUTPUT_LIFETIME = timedelta(hours=1)
# An output this close to its deletion is not worth starting to download.
EXPIRY_MARGIN = timedelta(minutes=1)


async def find_created(
    client: replicate.Client,
    model: str,
    input_: Mapping[str, object],
    since: datetime,
    exclude: str | None = None,
    keys: tuple[str, ...] = SHOT_KEYS,
) -> Prediction | None:
    """The newest prediction of ``model`` whose input has ``input_``'s ``keys`` (a shot's prompt
    and seed) created since ``since`` (give or take clock skew), or ``None`` if the account has
    none.

    Replicate documents no idempotency key for creates, so after a create that failed without
    saying whether it happened (a 5xx, a dropped or timed out connection) the only faithful
    check is ``GET /v1/predictions``: it lists the account's predictions newest first with their
    ``input``, and takes ``created_after`` to keep the list short. A shot's prompt and seed
    together identify it (seeds are derived per actor and shot), and the window excludes older
    runs of the same shot, and ``exclude`` names the shot's previous prediction, which a retry
    within the window must not take for its own. ``input_image`` is not compared: Replicate may store an inlined data
    URI under its own URL. Errors propagate: the caller must not create again when it cannot
    tell.
    """
    async for prediction in listed_since(since, client.predictions.async_list):
        sent = prediction.input or {}
        if prediction.id != exclude and prediction.model == model and all(sent.get(k) == input_[k] for k in keys):
            return prediction
    return None


async def look_until(find: Callable[[], Awaitable[Found | None]], until: float) -> Found | None:
    """``find()``, repeated (1 s apart, then 2, 4...) until it finds or ``until`` (monotonic)
    has passed: a create held in a queue is taken, and listed, only after the client gave up on
    its answer, and one created again meanwhile would be paid twice."""
    pause_s = 1.0
    while (found := await find()) is None:
        left_s = until - time.monotonic()
        if left_s <= 0:
            return None
        await asyncio.sleep(min(pause_s, left_s))
        pause_s *= 2
    return found


async def listed_since(
    since: datetime, read_page: Callable[[str], Awaitable[Page[Listed]]], path: str = "/v1/predictions"
) -> AsyncIterator[Listed]:
    """The account's predictions (or what else ``path`` lists newest first: trainings) created
    since ``since`` (less clock skew), one page request at a time through ``read_page`` (which
    may retry)."""
    start = since - _CLOCK_SKEW
    cursor = f"{path}?" + urlencode({"created_after": start.isoformat()})
    while True:
        page = await read_page(cursor)
        for prediction in page.results:
            # Newest first: older ones cannot match, even where created_after was ignored.
            if prediction.created_at and parse_timestamp(prediction.created_at) < start:
                return
            yield prediction
        if not page.next:
            return
        cursor = page.next


_FILES_PATH = re.compile(r"/v1/files/([^/]+)")


def is_upload(url: str) -> bool:
    """Whether ``url`` is a Files API upload's."""
    return _FILES_PATH.fullmatch(urlsplit(url).path) is not None


async def upload_sha256(client: replicate.Client, url: str, attempts: int, wait: RetryWait) -> str | None:
    """The checksum the Files API keeps of the upload at ``url``; ``None`` for a URL that is not an
    upload's, or one the Files API no longer has (404, 410): not proven to be anything of ours.
    Other failures raise."""
    if (match := _FILES_PATH.fullmatch(urlsplit(url).path)) is None:
        return None
    file_id = match.group(1)
    try:
        file = await retrying(lambda: client.files.async_get(file_id), attempts, wait)
    except Exception as exc:
        if http_status(exc) in (404, 410):
            return None
        raise
    return file.checksums.get("sha256")


def parse_timestamp(timestamp: str) -> datetime:
    # Replicate writes nanoseconds and "Z" ("2025-06-08T12:06:15.136427877Z"), which
    # fromisoformat (3.11) does not take: keep microseconds.
    match = _TIMESTAMP.fullmatch(timestamp)
    if match is None:
        raise ValueError(f"unreadable created_at {timestamp!r} in the prediction list")
    head, fraction, zone = match.groups()
    offset = "+00:00" if zone in (None, "Z") else zone
    return datetime.fromisoformat(f"{head}.{(fraction or '').ljust(6, '0')[:6]}{offset}")


def output_expiry(prediction: Prediction) -> datetime:
    """When the output will be deleted: an hour after the prediction ended (or now, when it
    says nothing)."""
    try:
        ended = parse_timestamp(prediction.completed_at) if prediction.completed_at else None
    except ValueError:
        ended = None
    return (ended or datetime.now(UTC)) + OUTPUT_LIFETIME


def output_alive(prediction: Prediction) -> bool:
    """Whether the prediction's output can still be downloaded, with a minute to spare."""
    return datetime.now(UTC) < output_expiry(prediction) - EXPIRY_MARGIN

"""One maker per actor: a lease in the pipeline's storage, whoever makes the set (the CLI, the
Python API, a Dagster run, another machine sharing the bucket).

The lease is created atomically (a locked file locally, a conditional write in S3) and names its
holder. A second maker gets ``ActorBusy`` naming who holds the actor since when. An S3 lease
carries an expiry that its holder renews; a lease whose holder died (expired, or a dead process
on this machine) is taken over with a conditional write, so two takers cannot both win. A local
lock dies with its process. Within one process the lease is re-entrant: the CLI holds it for the
whole command and the image stage inside it finds it held.
"""

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pydantic import BaseModel, ValidationError

from actor_pipeline.errors import ActorBusy, StorageUnavailable
from actor_pipeline.identifiers import validate_id
from actor_pipeline.storage.base import Storage

log = logging.getLogger(__name__)

LEASE_TTL_S = 60.0
_WAIT_POLL_S = 1.0
LEASE_PREFIX = "_leases/"


class LeaseInfo(BaseModel):
    host: str
    pid: int
    command: str
    since: datetime
    expires_at: datetime

    def describe(self) -> str:
        return f"{self.command} (pid {self.pid} on {self.host}) since {self.since:%Y-%m-%d %H:%M:%S} UTC"

    def stale(self, now: datetime) -> bool:
        return self.expires_at <= now or (self.host == socket.gethostname() and not pid_alive(self.pid))


class Lease(Protocol):
    """A lease as a storage backend holds it."""

    def renew(self, body: bytes) -> bool:
        """Extend it; ``False`` if another maker has taken it over."""
        ...

    def release(self) -> None: ...


@dataclass
class HeldActor:
    """The actor's lease, held by this process; ``lost`` is set if a renewal found it taken."""

    actor_id: str
    lease: Lease
    info: LeaseInfo
    lost: threading.Event = field(default_factory=threading.Event)
    holders: int = 1


_held: dict[tuple[str, str], HeldActor] = {}
_held_lock = threading.Lock()


def lease_key(actor_id: str) -> str:
    return f"{LEASE_PREFIX}{validate_id(actor_id)}.json"


@contextmanager
def hold_actor(
    storage: Storage, actor_id: str, command: str, ttl_s: float = LEASE_TTL_S, wait_s: float = 0.0
) -> Iterator[HeldActor]:
    """Hold the actor's lease for the duration; raise ``ActorBusy`` if another maker holds it
    for longer than ``wait_s``."""
    slot = (storage.locator, actor_id)
    with _held_lock:
        held = _held.get(slot)
        if held is not None:
            held.holders += 1
    if held is not None:
        try:
            yield held
        finally:
            with _held_lock:
                held.holders -= 1
        return
    held = _acquire_within(storage, actor_id, command, ttl_s, wait_s)
    with _held_lock:
        _held[slot] = held
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(held, ttl_s, stop), name=f"lease:{actor_id}", daemon=True)
    renewer.start()
    try:
        yield held
    finally:
        stop.set()
        renewer.join()
        with _held_lock:
            del _held[slot]
        try:
            held.lease.release()
        except StorageUnavailable as exc:  # it expires by itself
            log.warning("%s: could not release the lease: %s", actor_id, exc)


def current_holder(storage: Storage, actor_id: str) -> LeaseInfo | None:
    """Who makes the actor now, without touching the lease: ``None`` if nobody (or a holder that
    died)."""
    try:
        holder = _parse(storage.get(lease_key(actor_id)))
    except FileNotFoundError:
        return None
    return holder if holder is not None and not holder.stale(datetime.now(UTC)) else None


def _acquire_within(storage: Storage, actor_id: str, command: str, ttl_s: float, wait_s: float) -> HeldActor:
    """Another maker's lease is waited out for ``wait_s`` (two Dagster runs for the same actor,
    e.g. a rerun of non-adjacent failed shots, then follow each other instead of one failing)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return _acquire(storage, actor_id, command, ttl_s)
        except ActorBusy as busy:
            if time.monotonic() >= deadline:
                raise
            log.info("%s; waiting up to %.0f s more", busy, deadline - time.monotonic())
            time.sleep(min(_WAIT_POLL_S, max(0.0, deadline - time.monotonic())))


def _acquire(storage: Storage, actor_id: str, command: str, ttl_s: float) -> HeldActor:
    now = datetime.now(UTC)
    info = LeaseInfo(
        host=socket.gethostname(), pid=os.getpid(), command=command, since=now, expires_at=now + timedelta(seconds=ttl_s)
    )
    got = storage.lease(lease_key(actor_id), info.model_dump_json().encode(), lambda body: _stale(body, now))
    if isinstance(got, bytes):
        holder = _parse(got)
        who = holder.describe() if holder else "another process"
        raise ActorBusy(
            f"actor {actor_id!r} is being made by {who}: wait for it to finish (its set is then complete, "
            "at no extra cost), or stop it and rerun"
        )
    return HeldActor(actor_id, got, info)


def _renew(held: HeldActor, ttl_s: float, stop: threading.Event) -> None:
    while not stop.wait(ttl_s / 3):
        held.info.expires_at = datetime.now(UTC) + timedelta(seconds=ttl_s)
        try:
            if not held.lease.renew(held.info.model_dump_json().encode()):
                log.error("%s: the lease was taken over by another maker: no new predictions", held.actor_id)
                held.lost.set()
                return
        except StorageUnavailable as exc:  # renewed at the next beat, before the expiry
            log.warning("%s: could not renew the lease: %s", held.actor_id, exc)


def _stale(body: bytes, now: datetime) -> bool:
    holder = _parse(body)
    return holder is None or holder.stale(now)


def _parse(body: bytes) -> LeaseInfo | None:
    try:
        return LeaseInfo.model_validate_json(body)
    except (ValidationError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine is running (a zombie counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True

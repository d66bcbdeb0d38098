"""The storage contract shared by the local-folder and S3 backends."""

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from actor_pipeline.storage.lease import Lease


@dataclass(frozen=True)
class StoredObject:
    """What storage knows about one object."""

    key: str
    size: int
    sha256: str
    content_type: str
    metadata: dict[str, str] = field(default_factory=dict)


class Storage(Protocol):
    """Keyed object storage. Keys are '/'-separated, relative, and built only by
    ``actor_pipeline.storage.layout`` from validated ids."""

    name: str  # "local" or "s3"
    # A local folder for this storage's shot journal and the spool of paid images not yet
    # stored: it must work when the storage itself does not.
    state_dir: Path
    locator: str  # where the storage is (a folder, a bucket and prefix): equal means the same storage

    def check(self) -> None:
        """Fail fast, with a ``ConfigurationError`` naming the fix, when storage is unusable."""
        ...

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str,
        metadata: dict[str, str] | None = None,
    ) -> StoredObject:
        """Write ``data`` atomically (a reader never sees a partial object). Writing bytes
        identical to what is already stored is a no-op."""
        ...

    def get(self, key: str) -> bytes:
        """Read an object; raises ``FileNotFoundError`` if it does not exist."""
        ...

    def head(self, key: str) -> StoredObject | None:
        """Describe an object, or ``None`` if it does not exist."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix``, sorted."""
        ...

    def lease(self, key: str, body: bytes, stale: Callable[[bytes], bool]) -> "Lease | bytes":
        """Create the lease object ``key`` holding ``body`` atomically, or take it over if
        ``stale`` says its holder is gone; else return the holder's body."""
        ...

    def url(self, key: str) -> str:
        """Where a user can find the object: a ``file://`` URL, an https URL, or a presigned
        https URL, depending on the backend and its settings."""
        ...


def atomic_write(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` so that a reader sees the old or the new file, never a
    part. ``durable`` also fsyncs the file and its folder, so the write survives a crash of the
    machine: for journal entries written before money is spent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o644)  # mkstemp makes 0600; these files are meant to be read by other tools
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

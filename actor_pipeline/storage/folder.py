"""Storage in a local folder: the default when no S3 bucket is configured."""

import errno
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from actor_pipeline.errors import ConfigurationError, StorageUnavailable
from actor_pipeline.storage.base import StoredObject, atomic_write

_META_DIR = ".meta"  # sidecars for content type and metadata, outside the visible tree
STATE_DIR = ".state"  # the default state_dir, beside the sets
# The disk, not the request, is at fault: the same write succeeds once it is fixed.
_OUTAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})


class FolderStorage:
    """Objects are files under ``root``; writes are atomic (temp file + rename)."""

    name = "local"

    def __init__(self, root: str | os.PathLike[str], state_dir: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).resolve()
        self.state_dir = Path(state_dir).resolve() if state_dir else self.root / STATE_DIR
        self.locator = str(self.root)

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot create the output folder {self.root}: {exc.strerror}; choose another --out") from None
        if not os.access(self.root, os.W_OK):
            raise ConfigurationError(f"the output folder {self.root} is not writable: choose another --out")

    def _path(self, key: str) -> Path:
        # Keys come from validated ids, but a storage must not trust its callers with the disk. The
        # check is lexical: resolve() would stat every folder above each file, on every access.
        path = Path(os.path.normpath(self.root / key))
        if self.root not in path.parents:
            raise ValueError(f"storage key {key!r} escapes the storage folder")
        return path

    def _meta_path(self, key: str) -> Path:
        return self._path(f"{_META_DIR}/{key}.json")

    def put(
        self, key: str, data: bytes, content_type: str, metadata: dict[str, str] | None = None
    ) -> StoredObject:
        stored = StoredObject(
            key=key,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            content_type=content_type,
            metadata=dict(metadata or {}),
        )
        if self.head(key) == stored:
            return stored
        with self._outages(key):
            # The sidecar first: a process killed between the two writes leaves no object rather
            # than an object without its metadata, from which a paid image's record is rebuilt.
            sidecar = {"sha256": stored.sha256, "content_type": content_type, "metadata": stored.metadata}
            atomic_write(self._meta_path(key), json.dumps(sidecar).encode())
            atomic_write(self._path(key), data)
        return stored

    @contextmanager
    def _outages(self, key: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            if exc.errno not in _OUTAGE_ERRNOS:
                raise
            raise StorageUnavailable(
                f"cannot write {key} under {self.root}: {exc.strerror}; free space there (or fix the disk) "
                "and rerun: paid images wait in the spool meanwhile"
            ) from exc

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def head(self, key: str) -> StoredObject | None:
        path = self._path(key)
        if not path.is_file():
            return None
        data = path.read_bytes()
        sha256 = hashlib.sha256(data).hexdigest()
        try:
            sidecar = json.loads(self._meta_path(key).read_bytes())
        except (OSError, ValueError):
            sidecar = {}
        if sidecar.get("sha256") != sha256:  # the file was replaced by hand: metadata is stale
            sidecar = {}
        return StoredObject(
            key=key,
            size=len(data),
            sha256=sha256,
            content_type=sidecar.get("content_type", "application/octet-stream"),
            metadata=sidecar.get("metadata", {}),
        )

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        folder = base if base.is_dir() else base.parent
        if not folder.is_dir():
            return []
        keys = (p.relative_to(self.root).as_posix() for p in folder.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix) and not k.startswith((f"{_META_DIR}/", f"{STATE_DIR}/")))

    def url(self, key: str) -> str:
        return self._path(key).as_uri()

    def lease(self, key: str, body: bytes, stale: Callable[[bytes], bool]) -> "FileLease | bytes":
        """A lock file: the kernel releases it when its process dies, so it is never stale."""
        path = self._path(key)
        with self._outages(key):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 1 << 16, 0)
            os.close(fd)
            return holder
        lease = FileLease(fd)
        lease.renew(body)
        return lease


class FileLease:
    """A held lock file; its content names the holder."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def renew(self, body: bytes) -> bool:
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, body, 0)
        return True

    def release(self) -> None:
        os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


"""Storage in a local folder: the default when no S3 bucket is configured."""

import hashlib
import json
import os
import tempfile
from pathlib import Path

from actor_pipeline.errors import ConfigurationError
from actor_pipeline.storage.base import StoredObject

_META_DIR = ".meta"  # sidecars for content type and metadata, outside the visible tree


class LocalStorage:
    """Objects are files under ``root``; writes are atomic (temp file + rename)."""

    name = "local"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot create the output folder {self.root}: {exc.strerror}; choose another --out") from None
        if not os.access(self.root, os.W_OK):
            raise ConfigurationError(f"the output folder {self.root} is not writable: choose another --out")

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        # Keys come from validated ids, but a storage must not trust its callers with the disk.
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
        _atomic_write(self._path(key), data)
        sidecar = {"sha256": stored.sha256, "content_type": content_type, "metadata": stored.metadata}
        _atomic_write(self._meta_path(key), json.dumps(sidecar).encode())
        return stored

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
        return sorted(k for k in keys if k.startswith(prefix) and not k.startswith(f"{_META_DIR}/"))

    def url(self, key: str) -> str:
        return self._path(key).as_uri()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o644)  # mkstemp makes 0600; these files are meant to be read by other tools
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""The storage contract shared by the local-folder and S3 backends."""

from dataclasses import dataclass, field
from typing import Protocol


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

    def url(self, key: str) -> str:
        """Where a user can find the object: a ``file://`` URL, an https URL, or a presigned
        https URL, depending on the backend and its settings."""
        ...

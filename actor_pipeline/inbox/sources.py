"""Inbox locations: a local folder or an S3 prefix, both listed in full on every scan.

A full listing is what makes the cursor exact (see ``cursor.py``); S3 has no server-side
"modified since" filter anyway, so ``get_objects`` lists everything too.
"""

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from actor_pipeline.errors import ConfigurationError
from actor_pipeline.inbox.model import InboxEntry

if TYPE_CHECKING:
    from botocore.client import BaseClient


class InboxSource(Protocol):
    location: str  # as the user wrote it, for messages

    def list(self) -> list[InboxEntry]:
        """Every file under the inbox root."""
        ...

    def read(self, key: str, max_bytes: int) -> bytes:
        """A file's first ``max_bytes + 1`` bytes: enough for the caller to tell that it is too
        large without loading all of it. ``FileNotFoundError`` if it is gone."""
        ...

    def uri(self, key: str) -> str:
        """Where the file is, for the registration's ``portrait_source``."""
        ...


class FolderInbox:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.location = str(self.root)

    def list(self) -> list[InboxEntry]:
        # Created on first use so that users see where to drop portraits.
        self.root.mkdir(parents=True, exist_ok=True)
        entries = []
        for folder, subfolders, files in os.walk(self.root):
            subfolders[:] = [name for name in subfolders if not name.startswith(".")]
            for name in files:
                path = Path(folder, name)
                try:
                    stat = path.stat()
                except FileNotFoundError:  # deleted while listing
                    continue
                key = path.relative_to(self.root).as_posix()
                entries.append(InboxEntry(key, stat.st_size, stat.st_mtime, f"{stat.st_size}-{stat.st_mtime_ns}"))
        return entries

    def read(self, key: str, max_bytes: int) -> bytes:
        with (self.root / key).open("rb") as handle:
            return handle.read(max_bytes + 1)

    def uri(self, key: str) -> str:
        return str(self.root / key)


class S3Inbox:
    def __init__(self, client: "BaseClient", bucket: str, prefix: str) -> None:
        self.client, self.bucket = client, bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.location = f"s3://{bucket}/{self.prefix}"

    def list(self) -> list[InboxEntry]:
        entries = []
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        for obj in (obj for page in pages for obj in page.get("Contents", [])):
            key, modified = obj["Key"][len(self.prefix) :], obj["LastModified"].timestamp()
            # The ETag alone would make an identical re-upload look already handled.
            entries.append(InboxEntry(key, obj.get("Size") or 0, modified, f"{obj['ETag']}@{modified}"))
        return entries

    def read(self, key: str, max_bytes: int) -> bytes:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"]
        except self.client.exceptions.NoSuchKey:
            raise FileNotFoundError(self.uri(key)) from None
        with body:
            return body.read(max_bytes + 1)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"


def open_inbox(location: str, s3_client: Callable[[], "BaseClient"]) -> InboxSource:
    """``s3://bucket/prefix`` (read with the client ``s3_client`` makes: the caller's, configured
    as S3 storage is) or a local folder."""
    if not location.startswith("s3://"):
        return FolderInbox(location)
    parts = urlsplit(location)
    if not parts.netloc:
        raise ConfigurationError(f"inbox {location!r} names no bucket: use s3://BUCKET/PREFIX")
    return S3Inbox(s3_client(), parts.netloc, parts.path)

"""The S3 storage backend (on a boto3 client the caller makes) and ``s3://`` portraits."""

import hashlib
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from botocore.client import BaseClient
from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError, PartialCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError

from actor_pipeline.errors import ConfigurationError, InputError, PortraitError, StorageUnavailable
from actor_pipeline.storage.base import StoredObject
from actor_pipeline.storage.s3_settings import (
    ACCESS_KEY_VAR,
    BUCKET_VAR,
    ENDPOINT_VARS,
    REGION_VAR,
    SECRET_KEY_VAR,
    S3Settings,
)

SHA256_METADATA_KEY = "sha256"  # hex digest, stored as x-amz-meta-sha256
LEASE_PROBE_PREFIX = "_leases/.probe-"  # beside the leases, so the same bucket policy covers it

_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
# A conditional write lost the race: the object exists, or changed since it was read.
_CONDITION_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
_CREDENTIAL_CODES = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"})
_PERMISSIONS = {
    "PutObject": "s3:PutObject",
    "GetObject": "s3:GetObject",
    # Without s3:ListBucket, S3 answers HEAD of a missing object with 403 rather than 404.
    "HeadObject": "s3:GetObject and s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
}
_AWS_HOSTS = (".amazonaws.com", ".amazonaws.com.cn")
# S3 is overloaded or down: the same request succeeds later (botocore already retried it).
_OUTAGE_CODES = frozenset({"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "500", "502", "503", "504"})
# A server that does not implement a conditional header may say so instead of ignoring it.
_UNSUPPORTED_CODES = frozenset({"NotImplemented", "501", "InvalidArgument", "InvalidRequest"})
# Servers (endpoint, bucket) that refused a second conditional create in this process: the
# answer does not change while it runs, and every run worker would otherwise probe again.
_honours_conditions: set[tuple[str, str]] = set()
_probe_lock = threading.Lock()
# botocore's own client-side check for bucket names; anything else S3 explains itself.
_S3_URI = re.compile(r"s3://([A-Za-z0-9._-]{1,255})/(.+)", re.DOTALL)


class S3Storage:
    """``Storage`` in an S3 bucket or an S3-compatible store (MinIO, LocalStack, ...).

    Objects are private (no ACL is sent, so the bucket's private default applies). Each carries
    its SHA-256 as user metadata, for ``head``, and as a checksum S3 verifies on upload. A
    ``put`` of an object identical to the stored one (bytes, content type, metadata) sends no
    PUT. Transient failures are retried by ``client`` (``defs.resources.s3_client``: botocore's standard mode).
    """

    name = "s3"

    def __init__(
        self, settings: S3Settings, client: BaseClient, state_dir: str | os.PathLike[str] = Path("output", ".state")
    ) -> None:
        self.settings = settings
        self.state_dir = Path(state_dir).resolve()
        self.locator = f"s3://{settings.bucket}/{settings.prefix.strip('/')}"
        self.client = client  # reusable for read_s3_uri
        prefix = settings.prefix.strip("/")
        self._prefix = f"{prefix}/" if prefix else ""

    def check(self) -> None:
        """Raise ``ConfigurationError`` now if the bucket is missing or unreachable or the
        credentials are refused, rather than after paying for images."""
        with self._errors(""):
            self.client.list_objects_v2(Bucket=self.settings.bucket, Prefix=self._prefix, MaxKeys=1)
        self.require_conditional_writes()

    def require_conditional_writes(self) -> None:
        """Raise ``ConfigurationError`` (one line: the server's limit and the fix) unless the
        server refuses what the lease relies on: a second ``If-None-Match: *`` create of one key,
        and a write whose ``If-Match`` names an ETag the object no longer has. A server that
        ignores these headers would let two makers of one actor both hold its lease and pay for
        its shots twice, silently. Probed once per server and process, on a key of its own."""
        server = (self.client.meta.endpoint_url, self.settings.bucket)
        with _probe_lock:
            if server in _honours_conditions:
                return
            ignored = self._probe_conditions(f"{LEASE_PROBE_PREFIX}{uuid.uuid4().hex}")
            if ignored is None:
                _honours_conditions.add(server)
                return
        raise ConfigurationError(
            f"the S3 server at {server[0]} {ignored} on PutObject, so the one-maker-per-actor lease cannot hold"
            " (two makers could pay for the same shots): use a server that honours conditional writes (AWS S3 does),"
            " or local storage (--storage local) on one machine"
        )

    def _probe_conditions(self, key: str) -> str | None:
        """What the server does wrong with conditional writes, or ``None`` if it honours them."""
        try:
            self._put_if(key, b"{}", IfNoneMatch="*")
            for header, condition in (("If-None-Match: *", {"IfNoneMatch": "*"}), ("If-Match", {"IfMatch": '"0"'})):
                try:
                    self._put_if(key, b"{}", **condition)
                except ClientError as exc:
                    if _code(exc) in _CONDITION_CODES:
                        continue
                    if _code(exc) in _UNSUPPORTED_CODES:
                        return f"does not implement {header} ({_code(exc)})"
                    raise
                return f"ignores {header} (a conditional write that had to be refused was accepted)"
        except ClientError as exc:
            if _code(exc) in _UNSUPPORTED_CODES:
                return f"does not implement If-None-Match: * ({_code(exc)})"
            raise
        finally:
            with self._errors(key):
                self.client.delete_object(Bucket=self.settings.bucket, Key=self._key(key))
        return None

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str,
        metadata: dict[str, str] | None = None,
    ) -> StoredObject:
        """Store ``data`` in one PUT (atomic in S3) unless the identical object is stored."""
        # S3 lowercases metadata names; doing it first keeps the comparison with head() exact.
        user_metadata = {name.lower(): value for name, value in (metadata or {}).items()}
        if SHA256_METADATA_KEY in user_metadata:
            raise ValueError(f"metadata key {SHA256_METADATA_KEY!r} is reserved for the checksum")
        wanted = StoredObject(key, len(data), hashlib.sha256(data).hexdigest(), content_type, user_metadata)
        if self.head(key) == wanted:
            return wanted
        with self._errors(key):
            self.client.put_object(
                Bucket=self.settings.bucket,
                Key=self._key(key),
                Body=data,
                ContentType=content_type,
                Metadata={**user_metadata, SHA256_METADATA_KEY: wanted.sha256},
                ChecksumAlgorithm="SHA256",
            )
        return wanted

    def get(self, key: str) -> bytes:
        """Read an object; ``FileNotFoundError`` if it does not exist."""
        response = self._object_call("get_object", key)
        if response is None:
            raise FileNotFoundError(f"no object {self._uri(key)}")
        with response["Body"] as body:
            return body.read()

    def head(self, key: str) -> StoredObject | None:
        """Describe an object without downloading it, or ``None`` if it does not exist."""
        response = self._object_call("head_object", key)
        if response is None:
            return None
        metadata = dict(response["Metadata"])
        # An object written by another tool has no recorded digest; "" never equals a real one,
        # so put() replaces it rather than trusting it.
        sha256 = metadata.pop(SHA256_METADATA_KEY, "")
        return StoredObject(key, response["ContentLength"], sha256, response.get("ContentType", ""), metadata)

    def url(self, key: str) -> str:
        """A presigned GET URL if ``presign_expiry_s`` is set, else the object's https URL:
        virtual-hosted style on AWS, path style on a custom endpoint."""
        bucket, full_key = self.settings.bucket, self._key(key)
        if self.settings.presign_expiry_s is not None:
            with self._errors(key):
                return self.client.generate_presigned_url(
                    "get_object",
                    Params={"Bucket": bucket, "Key": full_key},
                    ExpiresIn=self.settings.presign_expiry_s,
                )
        endpoint = self.client.meta.endpoint_url.rstrip("/")
        host = urlsplit(endpoint).netloc
        # Dotted bucket names break the TLS wildcard certificate of virtual-hosted URLs.
        if host.endswith(_AWS_HOSTS) and "." not in bucket:
            return f"https://{bucket}.{host}/{quote(full_key)}"
        return f"{endpoint}/{bucket}/{quote(full_key)}"

    def lease(self, key: str, body: bytes, stale: Callable[[bytes], bool]) -> "S3Lease | bytes":
        """A conditional write: created only if absent, taken over only if unchanged since read."""
        self.require_conditional_writes()
        try:
            return S3Lease(self, key, self._put_if(key, body, IfNoneMatch="*"))
        except ClientError as exc:
            if _code(exc) not in _CONDITION_CODES:
                raise
        response = self._object_call("get_object", key)
        if response is None:  # released meanwhile: try once more from the start
            return self.lease(key, body, stale)
        with response["Body"] as stream:
            holder = stream.read()
        if not stale(holder):
            return holder
        try:
            return S3Lease(self, key, self._put_if(key, body, IfMatch=response["ETag"]))
        except ClientError as exc:
            if _code(exc) not in _CONDITION_CODES:
                raise
        taken = self._object_call("get_object", key)
        if taken is None:
            return self.lease(key, body, stale)
        with taken["Body"] as stream:
            return stream.read()

    def _put_if(self, key: str, body: bytes, **condition: str) -> str:
        """PUT with a condition; returns the new ETag. A failed condition raises ``ClientError``."""
        with self._errors(key):
            response = self.client.put_object(
                Bucket=self.settings.bucket, Key=self._key(key), Body=body, ContentType="application/json", **condition
            )
        return str(response["ETag"])

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` (relative to the settings' prefix), sorted."""
        with self._errors(prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.settings.bucket, Prefix=self._key(prefix)
            )
            keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        return sorted(key.removeprefix(self._prefix) for key in keys)

    def _object_call(self, method: str, key: str) -> dict[str, Any] | None:
        with self._errors(key):
            return _object_call(self.client, method, self.settings.bucket, self._key(key))

    def _key(self, key: str) -> str:
        return self._prefix + key

    def _uri(self, key: str) -> str:
        return f"s3://{self.settings.bucket}/{self._key(key)}"

    def _errors(self, key: str) -> AbstractContextManager[None]:
        return _s3_errors(self.client, self._uri(key), ConfigurationError, f"create it or fix {BUCKET_VAR}")


class S3Lease:
    """A held lease object; each renewal is conditional on the ETag of the last write."""

    def __init__(self, storage: S3Storage, key: str, etag: str) -> None:
        self._storage, self._key, self._etag = storage, key, etag

    def renew(self, body: bytes) -> bool:
        try:
            self._etag = self._storage._put_if(self._key, body, IfMatch=self._etag)
        except ClientError as exc:
            if _code(exc) in _CONDITION_CODES or _code(exc) in _NOT_FOUND_CODES:
                return False
            raise
        return True

    def release(self) -> None:
        current = self._storage._object_call("head_object", self._key)
        if current is not None and current["ETag"] == self._etag:
            with self._storage._errors(self._key):
                self._storage.client.delete_object(Bucket=self._storage.settings.bucket, Key=self._storage._key(self._key))


def read_s3_uri(uri: str, client: BaseClient, max_bytes: int) -> bytes:
    """Download the portrait at ``s3://bucket/key``.

    ``client`` is e.g. ``S3Storage.client`` or ``s3_client(connection_from_env())``. Raises
    ``PortraitError`` for a malformed URI, a missing object or bucket, denied access, or an
    object larger than ``max_bytes`` (judged from its size before the body is downloaded).
    """
    match = _S3_URI.fullmatch(uri)
    if match is None:
        raise PortraitError(f"malformed S3 URI {uri!r}: expected s3://bucket/key")
    bucket, key = match.groups()
    with _s3_errors(client, uri, PortraitError, "check the portrait URI"):
        response = _object_call(client, "get_object", bucket, key)
    if response is None:
        raise PortraitError(f"portrait {uri} does not exist")
    with response["Body"] as body:
        if response["ContentLength"] > max_bytes:
            raise PortraitError(f"portrait {uri} is {response['ContentLength']} bytes, over the {max_bytes}-byte limit")
        return body.read()


def _object_call(client: BaseClient, method: str, bucket: str, key: str) -> dict[str, Any] | None:
    """``client.<method>(Bucket=bucket, Key=key)``, or ``None`` if the object does not exist."""
    try:
        return getattr(client, method)(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _code(exc) in _NOT_FOUND_CODES:
            return None
        raise


@contextmanager
def _s3_errors(client: BaseClient, uri: str, error: type[InputError], missing_bucket_fix: str) -> Iterator[None]:
    """Turn configuration-shaped botocore failures into one-line errors naming what to fix.

    Messages quote only the URI, the endpoint and S3's error code, never a credential. An
    unreachable or failing S3 (after botocore's retries) is ``StorageUnavailable``: an outage,
    not bad input.
    """
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise ConfigurationError(
            f"no AWS credentials to access {uri}: set {ACCESS_KEY_VAR} and {SECRET_KEY_VAR},"
            " or configure the standard AWS chain (AWS_ACCESS_KEY_ID and"
            " AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
        ) from exc
    except (BotoConnectionError, HTTPClientError) as exc:
        raise StorageUnavailable(
            f"cannot reach S3 at {client.meta.endpoint_url} ({type(exc).__name__}) to access"
            f" {uri}: check {ENDPOINT_VARS[1]}, {REGION_VAR} and the network, then rerun"
        ) from exc
    except ClientError as exc:
        code = _code(exc)
        if code in _CREDENTIAL_CODES:
            raise ConfigurationError(
                f"S3 refused the credentials ({code}) for {uri}: check {ACCESS_KEY_VAR} and"
                f" {SECRET_KEY_VAR}, or the standard AWS credentials if those are unset"
            ) from exc
        if code in _OUTAGE_CODES:
            raise StorageUnavailable(
                f"S3 at {client.meta.endpoint_url} kept failing ({code}) to access {uri}: rerun once it answers"
            ) from exc
        if code == "NoSuchBucket":
            raise error(
                f"the bucket of {uri} does not exist at {client.meta.endpoint_url}: {missing_bucket_fix}"
            ) from exc
        if code in ("AccessDenied", "403"):
            needed = _PERMISSIONS.get(exc.operation_name, exc.operation_name)
            raise error(
                f"access denied to {uri}: the credentials need {needed}; check"
                f" {ACCESS_KEY_VAR}/{SECRET_KEY_VAR} and the bucket policy"
            ) from exc
        raise


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")

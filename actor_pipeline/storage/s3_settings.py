"""Settings for the S3 backend, read from the seed's environment variables.

The seed's own names (``AWS_ACCESS_KEY``, ``AWS_ACCESS_SECRET``, ``AWS_REGION``,
``AWS_USER_FILES_BUCKET``) are honoured; without the seed's keys nothing is passed to boto3,
so the standard AWS credential chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, SSO, instance roles) applies.
"""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from actor_pipeline.errors import ConfigurationError

BUCKET_VAR = "AWS_USER_FILES_BUCKET"
ACCESS_KEY_VAR = "AWS_ACCESS_KEY"
SECRET_KEY_VAR = "AWS_ACCESS_SECRET"
REGION_VAR = "AWS_REGION"
# Same precedence as boto3: the S3-specific variable wins over the global one.
ENDPOINT_VARS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
MAX_ATTEMPTS_VAR = "AWS_MAX_ATTEMPTS"
PREFIX_VAR = "ACTOR_PIPELINE_S3_PREFIX"
PRESIGN_EXPIRY_VAR = "ACTOR_PIPELINE_PRESIGN_EXPIRY"

DEFAULT_MAX_ATTEMPTS = 6  # what dagster_aws's S3Resource (defs.resources.s3_client) does by default
MAX_PRESIGN_EXPIRY_S = 7 * 24 * 3600  # the SigV4 limit
_BUCKET_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True, kw_only=True)
class S3Connection:
    """How to reach S3: region, endpoint, credentials and retry budget.

    Keys left ``None`` mean "use the standard AWS credential chain". Both keys are kept out of
    ``repr`` so that logging the settings never leaks them.
    """

    region: str | None = None
    endpoint_url: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    max_attempts: int = DEFAULT_MAX_ATTEMPTS  # in total, the first try included

    def __post_init__(self) -> None:
        # botocore rejects a malformed region only when the client is built, without naming
        # the variable.
        if self.region is not None and not _REGION_PATTERN.fullmatch(self.region):
            raise ConfigurationError(f"invalid AWS region {self.region!r}: set {REGION_VAR} to e.g. us-west-1")
        if self.endpoint_url is not None and not re.match(r"https?://[^/]", self.endpoint_url):
            raise ConfigurationError(
                f"invalid S3 endpoint {self.endpoint_url!r}: set {ENDPOINT_VARS[1]} (or"
                f" {ENDPOINT_VARS[0]}) to a URL such as http://localhost:9000"
            )
        if (self.access_key_id is None) != (self.secret_access_key is None):
            missing = SECRET_KEY_VAR if self.secret_access_key is None else ACCESS_KEY_VAR
            raise ConfigurationError(
                f"{missing} is not set: set both {ACCESS_KEY_VAR} and {SECRET_KEY_VAR},"
                " or neither to use the standard AWS credential chain"
            )
        if self.max_attempts < 1:
            raise ConfigurationError(f"{MAX_ATTEMPTS_VAR} must be at least 1")


@dataclass(frozen=True, kw_only=True)
class S3Settings(S3Connection):
    """Where the S3 backend stores objects, and how it links to them."""

    bucket: str
    prefix: str = ""  # prepended to every key, e.g. "training-data/"
    presign_expiry_s: int | None = None  # None: plain https URLs; else presigned GET URLs

    def __post_init__(self) -> None:
        super().__post_init__()
        if not _BUCKET_PATTERN.fullmatch(self.bucket):
            raise ConfigurationError(
                f"invalid S3 bucket name {self.bucket!r}: set {BUCKET_VAR} to a bare bucket"
                " name (3-63 characters from a-z, 0-9, '.', '-'), without s3:// or a path"
            )
        if self.presign_expiry_s is not None and not (1 <= self.presign_expiry_s <= MAX_PRESIGN_EXPIRY_S):
            raise ConfigurationError(
                f"{PRESIGN_EXPIRY_VAR} must be between 1 and {MAX_PRESIGN_EXPIRY_S} seconds,"
                f" got {self.presign_expiry_s}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "S3Settings | None":
        """Settings from the environment, or ``None`` when ``AWS_USER_FILES_BUCKET`` is unset
        (then "auto" storage is local)."""
        bucket = _env(environ, BUCKET_VAR)
        if bucket is None:
            return None
        return cls(
            bucket=bucket,
            prefix=_env(environ, PREFIX_VAR) or "",
            presign_expiry_s=_int_env(environ, PRESIGN_EXPIRY_VAR),
            **_connection_fields(environ),
        )


def connection_from_env(environ: Mapping[str, str] = os.environ) -> S3Connection:
    """The connection part of ``S3Settings.from_env``, available without a bucket (e.g. to read
    an ``s3://`` portrait while storing results locally)."""
    return S3Connection(**_connection_fields(environ))


def _connection_fields(environ: Mapping[str, str]) -> dict[str, Any]:
    max_attempts = _int_env(environ, MAX_ATTEMPTS_VAR)
    return {
        "region": _env(environ, REGION_VAR),
        "endpoint_url": next(filter(None, (_env(environ, v) for v in ENDPOINT_VARS)), None),
        "access_key_id": _env(environ, ACCESS_KEY_VAR),
        "secret_access_key": _env(environ, SECRET_KEY_VAR),
        "max_attempts": DEFAULT_MAX_ATTEMPTS if max_attempts is None else max_attempts,
    }


def _env(environ: Mapping[str, str], name: str) -> str | None:
    """A variable's value; empty counts as unset, as it does for boto3."""
    return environ.get(name, "").strip() or None


def _int_env(environ: Mapping[str, str], name: str) -> int | None:
    value = _env(environ, name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {value!r}") from None

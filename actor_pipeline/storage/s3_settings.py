"""Settings for the S3 backend, read from the seed's environment variables.

The seed's own names (``AWS_ACCESS_KEY``, ``AWS_ACCESS_SECRET``, ``AWS_REGION``,
``AWS_USER_FILES_BUCKET``) are honoured; without the seed's keys nothing is passed to boto3,
so the standard AWS credential chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, SSO, instance roles) applies.
"""

import re
from dataclasses import dataclass, field
from typing import Any

from actor_pipeline.errors import ConfigurationError
from actor_pipeline.settings import EnvSettings, variable

BUCKET_VAR = variable("bucket")
ACCESS_KEY_VAR = variable("access_key")
SECRET_KEY_VAR = variable("access_secret")
REGION_VAR = variable("region")
# Same precedence as boto3: the S3-specific variable wins over the global one.
ENDPOINT_VARS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
MAX_ATTEMPTS_VAR = variable("max_attempts")
PRESIGN_EXPIRY_VAR = variable("presign_expiry")

DEFAULT_MAX_ATTEMPTS = 6  # as dagster_aws's S3Resource by default (defs.resources.s3_client)
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
    def from_env(cls) -> "S3Settings | None":
        """Settings from the environment (``EnvSettings``), or ``None`` when
        ``AWS_USER_FILES_BUCKET`` is unset (then "auto" storage is local)."""
        env = EnvSettings.load()
        if env.bucket is None:
            return None
        return cls(bucket=env.bucket, prefix=env.s3_prefix, presign_expiry_s=env.presign_expiry, **_connection_fields(env))


def connection_from_env() -> S3Connection:
    """The connection part of ``S3Settings.from_env``, available without a bucket (e.g. to read
    an ``s3://`` portrait while storing results locally)."""
    return S3Connection(**_connection_fields(EnvSettings.load()))


def _connection_fields(env: EnvSettings) -> dict[str, Any]:
    return {
        "region": env.region,
        "endpoint_url": env.endpoint_url,
        "access_key_id": env.access_key,
        "secret_access_key": env.access_secret,
        "max_attempts": DEFAULT_MAX_ATTEMPTS if env.max_attempts is None else env.max_attempts,
    }

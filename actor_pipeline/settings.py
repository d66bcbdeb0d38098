"""Everything a user sets in the environment, read and checked in one place.

The project's own variables are ``ACTOR_PIPELINE_<FIELD>``; the others keep the names users
already have: ``REPLICATE_API_TOKEN``, the seed's ``AWS_USER_FILES_BUCKET``, ``AWS_ACCESS_KEY``,
``AWS_ACCESS_SECRET`` and ``AWS_REGION``, and boto3's ``AWS_ENDPOINT_URL_S3`` /
``AWS_ENDPOINT_URL`` and ``AWS_MAX_ATTEMPTS``. An empty variable counts as unset. Values are only
read and typed here; what they mean is checked where they are used (``PortraitLimits``,
``S3Settings``, the resources), with messages that name the variable.
"""

from typing import Any

from pydantic import AliasChoices, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from actor_pipeline.errors import ConfigurationError

PREFIX = "ACTOR_PIPELINE_"


class EnvSettings(BaseSettings):
    """The environment's settings; ``None`` where a variable is unset (the user of the value
    knows its default)."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, env_ignore_empty=True, str_strip_whitespace=True, extra="ignore", frozen=True
    )

    output_dir: str | None = None
    debug_dir: str | None = None
    state_dir: str | None = None
    inbox: str | None = None
    catalog: str | None = None
    max_concurrency: int | None = Field(None, ge=1, description="use a whole number of shots, e.g. 17")
    shot_timeout_s: float | None = Field(None, gt=0, description="use a number of seconds greater than 0")
    storage_outage_s: float | None = Field(None, gt=0, description="use a number of seconds greater than 0")
    outage_wait_s: float | None = Field(None, gt=0, description="use a number of seconds greater than 0")
    create_settle_s: float | None = Field(None, ge=0, description="use a number of seconds, 0 or more")
    training_poll_s: float | None = Field(None, gt=0, description="use a number of seconds greater than 0")
    qc_identity: bool = Field(True, description="use 1 or 0")
    portrait_max_side: int | None = Field(None, description="use a whole number of pixels, e.g. 2048")
    allow_private_urls: bool = Field(False, description="use 1 or 0")
    s3_prefix: str = ""
    presign_expiry: int | None = Field(None, description="use a whole number of seconds")

    replicate_api_token: str | None = Field(None, validation_alias="REPLICATE_API_TOKEN", repr=False)
    bucket: str | None = Field(None, validation_alias="AWS_USER_FILES_BUCKET")
    access_key: str | None = Field(None, validation_alias="AWS_ACCESS_KEY", repr=False)
    access_secret: str | None = Field(None, validation_alias="AWS_ACCESS_SECRET", repr=False)
    region: str | None = Field(None, validation_alias="AWS_REGION")
    # The S3-specific variable wins, as it does for boto3.
    endpoint_url: str | None = Field(None, validation_alias=AliasChoices("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"))
    max_attempts: int | None = Field(None, validation_alias="AWS_MAX_ATTEMPTS", description="use a whole number")

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, data: Any) -> Any:
        """A variable set to spaces counts as unset, as an empty one does (and as for boto3)."""
        if not isinstance(data, dict):
            return data
        return {key: value for key, value in data.items() if not (isinstance(value, str) and not value.strip())}

    @classmethod
    def load(cls, **overrides: Any) -> "EnvSettings":
        """The settings from the environment (``overrides`` win); a bad value is a
        ``ConfigurationError`` naming its variable and the fix."""
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise ConfigurationError("; ".join(_describe(error) for error in exc.errors())) from None


def variable(field: str) -> str:
    """The environment variable that sets ``field``."""
    alias = EnvSettings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[-1])
    return alias if isinstance(alias, str) else PREFIX + field.upper()


def _describe(error: Any) -> str:
    """``VARIABLE is 'value': fix`` for one pydantic error (located by field or by alias)."""
    loc = str(error["loc"][0])
    field = next((f for f in EnvSettings.model_fields if loc in (f, variable(f))), loc)
    info = EnvSettings.model_fields.get(field)
    fix = info.description if info and info.description else error["msg"]
    name = loc if loc.isupper() else variable(field)
    return f"{name} is {error.get('input')!r}: {fix}"

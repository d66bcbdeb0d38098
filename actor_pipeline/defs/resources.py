"""Resources: where images come from (generator), where they go (storage), who trains the LoRA
(trainer), debug output."""

import os
from functools import cache
from typing import TYPE_CHECKING, Literal

import dagster as dg
from pydantic import Field

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.catalog.model import Catalog
from actor_pipeline.errors import ConfigurationError
from actor_pipeline.generation.budget import DEFAULT_REGEN_BUDGET_PCT, DEFAULT_SYSTEMIC_PCT, Spending
from actor_pipeline.generation.debug import DebugWriter
from actor_pipeline.generation.preview_backend import PreviewBackend
from actor_pipeline.generation.replicate import ReplicateBackend, ReplicateSettings
from actor_pipeline.generation.runner import (
    DEFAULT_QC_ATTEMPTS,
    DEFAULT_SHOT_TIMEOUT_S,
    DEFAULT_STORAGE_OUTAGE_S,
    RunLimits,
)
from actor_pipeline.generation.types import ImageBackend
from actor_pipeline.portrait.limits import DEFAULT_LIMITS
from actor_pipeline.settings import EnvSettings, variable
from actor_pipeline.stages import QualityOptions
from actor_pipeline.storage.base import Storage
from actor_pipeline.storage.folder import STATE_DIR, FolderStorage
from actor_pipeline.storage.s3_settings import BUCKET_VAR, S3Connection, S3Settings, connection_from_env
from actor_pipeline.training import PreviewTrainer, ReplicateTrainer, Trainer, TrainingSettings

if TYPE_CHECKING:
    import botocore.session
    from botocore.client import BaseClient
    from botocore.loaders import Loader

TOKEN_VAR = variable("replicate_api_token")


class ReplicateConfig(dg.Config, ReplicateSettings):
    """``ReplicateSettings`` as Dagster config: the generator's ``replicate`` field, shown with
    each setting's description in the Launchpad. Dagster's config schema checks only the types;
    the constraints and their messages are ``ReplicateSettings``' own, and a value they refuse
    fails the run when the resource is built, naming the field."""


class TrainingConfig(dg.Config, TrainingSettings):
    """``TrainingSettings`` as Dagster config: the trainer's ``training`` field (as ``ReplicateConfig``)."""


class _ReplicateAccess(dg.ConfigurableResource):
    """Which backend a resource uses and the token it uses it with: ``auto`` is Replicate when
    there is a token, otherwise the offline preview."""

    backend: Literal["auto", "preview", "replicate"] = Field(
        "auto", description="auto: Replicate when there is a token, else the offline preview ($0)"
    )
    replicate_api_token: str | None = Field(
        None,
        description="the Replicate API token, as dg.EnvVar('REPLICATE_API_TOKEN'): Dagster then records and "
        "shows the variable's name, never its value. Unset: $REPLICATE_API_TOKEN where the run runs",
    )

    def api_token(self) -> str | None:
        """The configured token, else the environment's: run config that sets some of this
        resource's fields resets the others to their defaults (Dagster 1.13), so a Launchpad user
        changing ``max_concurrency`` must not silently lose the token and get preview images."""
        token = self.replicate_api_token
        if isinstance(token, dg.EnvVar):  # configured outside a run: Dagster resolves it only in one
            token = token.get_value()
        return token or EnvSettings.load().replicate_api_token

    def resolved_backend(self) -> str:
        if self.backend != "auto":
            return self.backend
        return "replicate" if self.api_token() else "preview"

    def required_token(self) -> str:
        if not (token := self.api_token()):
            raise ConfigurationError(f"the replicate backend needs {TOKEN_VAR}: export it, or use --backend preview")
        return token


class ImageGeneratorResource(_ReplicateAccess):
    """Makes the images. ``auto`` uses Replicate when it has a token, otherwise the offline
    preview renderer."""
    max_concurrency: int | None = Field(
        None, ge=1, description="shots of one actor in flight at once; unset: all of them (Replicate's rate limits bound the total)"
    )
    shot_timeout_s: float = Field(
        DEFAULT_SHOT_TIMEOUT_S, gt=0, description="one deadline per shot for create, polling, download and store"
    )
    storage_outage_s: float = Field(
        DEFAULT_STORAGE_OUTAGE_S, gt=0, description="how long new predictions wait for storage that stopped answering"
    )
    replicate: ReplicateConfig = Field(
        ReplicateConfig(), description="how the replicate backend calls the model (ReplicateSettings)"
    )

    qc_attempts: int = Field(
        DEFAULT_QC_ATTEMPTS, ge=0, description="regenerations of a shot whose image fails a blocking quality check"
    )
    quality_checks: bool = Field(True, description="check every image (size, blank, sharpness, colour, duplicates)")
    identity_check: bool = Field(
        True, description="also faces and identity to the portrait, where the 'faces' extra is installed"
    )
    regen_budget_pct: float = Field(
        DEFAULT_REGEN_BUDGET_PCT,
        ge=0,
        le=100,
        description="quality regenerations a set may pay for over all runs, in % of its shots (its first-pass "
        "predictions), rounded down but at least 1: 25 gives 4 for 17 shots; 0 regenerates nothing. Failed "
        "images past it are kept with qc failed, reason 'budget'",
    )
    systemic_pct: float = Field(
        DEFAULT_SYSTEMIC_PCT,
        gt=0,
        le=100,
        description="a blocking check failing on this % of the set's shots at a run's first check is systemic "
        "(model, portrait or catalog): nothing is regenerated for it, and one line says what to look at",
    )
    max_cost_usd: float | None = Field(
        None,
        ge=0,
        description="the most one run may spend: no prediction is created once the run's predictions (each at "
        "the price per image; the preview costs 0) would pass it, and the shots not made stay pending for a "
        "rerun with a higher cap. Unset: no cap",
    )

    lease_wait_s: float = Field(
        600.0, ge=0, description="how long a run waits for another run making the same actor before failing"
    )

    def limits(self) -> RunLimits:
        return RunLimits(
            self.max_concurrency,
            self.shot_timeout_s,
            self.storage_outage_s,
            self.qc_attempts,
            self.regen_budget_pct,
            self.systemic_pct,
        )

    def price_per_image_usd(self) -> float:
        return 0.0 if self.resolved_backend() == "preview" else self.replicate.price_per_image_usd

    def spending(self) -> Spending:
        """A new run's spending, against ``max_cost_usd``."""
        return Spending(self.max_cost_usd, self.price_per_image_usd())

    def quality(self) -> QualityOptions | None:
        """How images are checked, or ``None`` when they are not."""
        return QualityOptions(identity=self.identity_check) if self.quality_checks else None

    def create_backend(self, catalog: Catalog) -> ImageBackend:
        if self.resolved_backend() == "preview":
            return PreviewBackend(catalog)
        return ReplicateBackend(self.replicate, self.required_token())


class TrainerResource(_ReplicateAccess):
    """Trains the actor's LoRA and measures its likeness: on Replicate with a token, else with the
    preview's $0 stand-in (which learns nothing). Nothing trains unless asked (``actor-pipeline
    train``, ``generate --train``, an inbox sidecar's ``"train": true``, the Launchpad)."""

    training: TrainingConfig = Field(TrainingConfig(), description="the trainer, its inputs, prices and deadline (TrainingSettings)")
    outage_wait_s: float | None = Field(
        None, gt=0, description="seconds to wait out Replicate not answering; unset: the generator's default"
    )
    create_settle_s: float | None = Field(
        None, ge=0, description="seconds a create that got no answer is looked for; unset: the generator's default"
    )
    identity_check: bool = Field(True, description="measure the validation images' identity to the portrait (faces extra)")
    lease_wait_s: float = Field(
        600.0, ge=0, description="how long a run waits for another maker of the same actor before failing"
    )

    def create_trainer(self, actor: ActorContext) -> Trainer:
        if self.resolved_backend() == "preview":
            return PreviewTrainer(self.training, actor.storage.get(actor.layout.portrait))
        waits = {"outage_wait_s": self.outage_wait_s, "create_settle_s": self.create_settle_s}
        replicate = ReplicateSettings(**{name: value for name, value in waits.items() if value is not None})
        return ReplicateTrainer(self.training, replicate, self.required_token())


class StorageResource(dg.ConfigurableResource):
    """Keeps the training sets. ``auto`` is S3 when a bucket is configured
    (``AWS_USER_FILES_BUCKET``), else the local folder ``local_dir``. S3 settings and credentials
    are read from the environment at run time, never stored in Dagster config."""

    backend: Literal["auto", "local", "s3"] = Field(
        "auto", description="auto: S3 when AWS_USER_FILES_BUCKET is set, else the local folder"
    )
    local_dir: str = Field("output", description="the local storage folder (ACTOR_PIPELINE_OUTPUT_DIR, --out)")
    state_dir: str | None = Field(
        None, description="local folder for the shot journal and paid images not yet stored (default: local_dir/.state)"
    )

    @property
    def resolved_state_dir(self) -> str:
        """The shot journal, the spool and (without ``DAGSTER_HOME``) the CLI's Dagster instance."""
        return self.state_dir or os.path.join(self.local_dir, STATE_DIR)

    def create_storage(self) -> Storage:
        settings = S3Settings.from_env() if self.backend != "local" else None
        state_dir = self.resolved_state_dir
        if settings is not None:
            from actor_pipeline.storage.s3 import S3Storage  # botocore loads only for S3 users

            return S3Storage(settings, s3_client(settings), state_dir)
        if self.backend == "s3":
            raise ConfigurationError(f"S3 storage was asked for but {BUCKET_VAR} is not set: set it to the bucket name")
        return FolderStorage(self.local_dir, state_dir)

    @staticmethod
    def read_s3_portrait(uri: str) -> bytes:
        """Reads an ``s3://`` portrait source with the configured S3 connection (or the
        environment's AWS settings when storage is local)."""
        from actor_pipeline.storage.s3 import read_s3_uri

        connection = S3Settings.from_env() or connection_from_env()
        return read_s3_uri(uri, s3_client(connection), DEFAULT_LIMITS.max_bytes)


def s3_client(connection: S3Connection) -> "BaseClient":
    """A boto3 S3 client that retries transient failures (5xx, SlowDown, throttling, dropped
    connections) in botocore's "standard" mode, configured as ``dagster_aws``'s ``S3Resource``
    configures its own. Each client gets a session of its own (so the credential chain is read
    anew), sharing one parsed copy of botocore's service models."""
    # boto3 and dagster-aws take ~0.6 s to import: only code that talks to S3 pays for it.
    import boto3
    from dagster_aws.utils import construct_boto_client_retry_config

    client = boto3.session.Session(botocore_session=_botocore_session()).client(
        "s3",
        region_name=connection.region,
        endpoint_url=connection.endpoint_url,
        aws_access_key_id=connection.access_key_id,
        aws_secret_access_key=connection.secret_access_key,
        # As S3Resource does: the legacy "max_attempts" key counts retries only.
        config=construct_boto_client_retry_config(connection.max_attempts - 1),
    )
    # botocore presigns with SigV2 unless a signature version is configured; buckets created
    # since June 2020 refuse SigV2.
    client.meta.events.register("choose-signer.s3.GetObject", _presign_with_sigv4)
    return client


def _botocore_session() -> "botocore.session.Session":
    """A new botocore session with the process's one service-model loader: a session of its
    own parses S3's models again, about 0.15 CPU-s a client."""
    import botocore.session

    session = botocore.session.Session()
    session.register_component("data_loader", _service_models(session.get_config_variable("data_path")))
    return session


@cache
def _service_models(data_path: str | None) -> "Loader":
    from botocore.loaders import create_loader

    return create_loader(data_path)


def _presign_with_sigv4(signature_version: str, **_: object) -> str | None:
    return "s3v4-query" if signature_version.endswith("-query") else None


class DebugResource(dg.ConfigurableResource):
    """With a directory, also writes the seed's debug files (images, payloads, grid) there."""

    directory: str | None = Field(None, description="also write the seed's debug files (images, payloads, grid) here")

    def writer(self) -> DebugWriter | None:
        return DebugWriter(self.directory) if self.directory else None

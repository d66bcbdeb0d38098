"""The settings of the CLI and the Python API: the resources' own config (one model per fact) with
the environment's values under what the caller gives, plus the Dagster instance the CLI uses."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import dagster as dg
from pydantic import ValidationError

from actor_pipeline.defs.assets.bundle import LoraBundleConfig
from actor_pipeline.defs.resources import (
    TOKEN_VAR,
    DebugResource,
    ImageGeneratorResource,
    ReplicateConfig,
    StorageResource,
    TrainerResource,
    TrainingConfig,
)
from actor_pipeline.errors import InputError
from actor_pipeline.generation.replicate.settings import SettingsRefused
from actor_pipeline.settings import EnvSettings

T = TypeVar("T")

# What a value out of range should be, by field, where the schema's own words are not a user's.
_EXPECTED = {
    "regen_budget_pct": "a percentage from 0 to 100",
    "systemic_pct": "a percentage above 0 and at most 100",
    "max_cost_usd": "0 or more dollars",
    "min_images": "at least 1",
    "max_concurrency": "at least 1",
    "shot_timeout_s": "greater than 0",
}


@dataclass(frozen=True)
class PipelineSettings:
    """The run's resources and the LoRA bundle's config, as one CLI command or API call sets them
    (``configure``), and the Dagster instance it runs on."""

    generator: ImageGeneratorResource = field(default_factory=ImageGeneratorResource)
    trainer: TrainerResource = field(default_factory=TrainerResource)
    storage: StorageResource = field(default_factory=StorageResource)
    debug: DebugResource = field(default_factory=DebugResource)
    bundle: LoraBundleConfig = field(default_factory=LoraBundleConfig)
    instance_dir: str | None = None  # None: $DAGSTER_HOME, else <state folder>/dagster

    @classmethod
    def configure(
        cls,
        *,
        generator: Mapping[str, Any] | None = None,
        trainer: Mapping[str, Any] | None = None,
        training: Mapping[str, Any] | None = None,
        storage: Mapping[str, Any] | None = None,
        debug: Mapping[str, Any] | None = None,
        bundle: Mapping[str, Any] | None = None,
        instance_dir: str | None = None,
        names: Mapping[str, str] | None = None,
    ) -> "PipelineSettings":
        """Each resource's config: the environment's values (``EnvSettings``) under the values
        given (``None`` means not given). A value out of range is an ``InputError`` naming it as
        ``names`` calls it (the CLI's flags, by field or by ``section.field``; default: the field's name). A token in ``generator``
        is one given in code; else ``$REPLICATE_API_TOKEN`` goes in as ``dg.EnvVar``, so Dagster
        records the variable's name, never its value. The trainer uses the generator's backend and
        token unless ``trainer`` says otherwise; ``training`` is its ``TrainingSettings``."""
        env = EnvSettings.load()
        generated = _given(
            {
                "max_concurrency": env.max_concurrency,
                "shot_timeout_s": env.shot_timeout_s,
                "storage_outage_s": env.storage_outage_s,
                "identity_check": env.qc_identity,
                "replicate_api_token": dg.EnvVar(TOKEN_VAR) if env.replicate_api_token else None,
            },
            generator,
        )
        waits = _given({}, {"outage_wait_s": env.outage_wait_s, "create_settle_s": env.create_settle_s})
        if waits:
            given_replicate = generated.get("replicate")
            set_fields = given_replicate.model_dump(exclude_unset=True) if given_replicate else {}
            generated["replicate"] = ReplicateConfig(**{**waits, **set_fields})
        shared = {name: generated.get(name) for name in ("backend", "replicate_api_token", "identity_check")}
        trains = _given({**shared, **waits}, trainer)
        trains["training"] = _build("training", TrainingConfig, _given({"poll_interval_s": env.training_poll_s}, training), names)
        stored = _given({"local_dir": env.output_dir, "state_dir": env.state_dir}, storage)
        return cls(
            generator=_build("generator", ImageGeneratorResource, generated, names),
            trainer=_build("trainer", TrainerResource, trains, names),
            storage=_build("storage", StorageResource, stored, names),
            debug=_build("debug", DebugResource, _given({"directory": env.debug_dir}, debug), names),
            bundle=_build("bundle", LoraBundleConfig, _given({}, bundle), names),
            instance_dir=instance_dir,
        )

    @property
    def resolved_instance_dir(self) -> str:
        """The Dagster instance folder of the CLI and the API: the one ``make ui`` serves."""
        return self.instance_dir or os.environ.get("DAGSTER_HOME") or os.path.join(self.storage.resolved_state_dir, "dagster")

    def resources(self) -> dict[str, Any]:
        """The resources of a run. A token given in code has no variable to name: the generator
        then goes in as a plain object, whose values Dagster does not record (a configured
        resource's are kept in the run's job snapshot)."""
        return {
            "generator": _unrecorded(self.generator),
            "trainer": _unrecorded(self.trainer),
            "storage": self.storage,
            "debug": self.debug,
        }

    def bundle_config(self) -> dict[str, Any]:
        """The LoRA bundle's config as run config (``LoraBundleConfig``)."""
        return self.bundle.model_dump(mode="json")


def _unrecorded(resource: ImageGeneratorResource | TrainerResource) -> Any:
    """``resource`` as a plain object when its token was given in code, else as configured."""
    token = resource.replicate_api_token
    in_code = bool(token) and not isinstance(token, dg.EnvVar)
    return dg.ResourceDefinition.hardcoded_resource(resource) if in_code else resource


def _given(defaults: Mapping[str, Any], given: Mapping[str, Any] | None) -> dict[str, Any]:
    values = {**defaults, **{name: value for name, value in (given or {}).items() if value is not None}}
    return {name: value for name, value in values.items() if value is not None}


def _build(section: str, kind: type[T], values: Mapping[str, Any], names: Mapping[str, str] | None) -> T:
    try:
        return kind(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
    except SettingsRefused as exc:
        error = exc.errors[0]
        if error["type"] == "value_error":
            raise  # a validator's own message names the field and the fix
    name = str(error["loc"][0])
    expected = _EXPECTED.get(name, str(error["msg"]).lower().removeprefix("input should be "))
    value = error["input"]
    shown = f"{value:g}" if isinstance(value, int | float) and not isinstance(value, bool) else repr(value)
    names = names or {}
    raise InputError(f"{names.get(f'{section}.{name}', names.get(name, name))} must be {expected}, got {shown}")

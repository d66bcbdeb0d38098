"""Actor registrations: who an actor belongs to, what it is, and where its portrait came from.

A registration is stored in the pipeline's storage (not in Dagster), indexed by actor id, so every
asset can read it from its partition key, and it survives a new Dagster instance. Registering
first stages the source portrait bytes; only a portrait that normalizes cleanly is registered, so a
bad file never replaces what an earlier registration made.
"""

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from actor_pipeline.catalog.descriptors import (
    ACTOR_SEXES,
    ACTOR_TYPES,
    get_actor_descriptor,
    normalize_actor_sex,
    normalize_actor_type,
)
from actor_pipeline.errors import InputError, StateError
from actor_pipeline.identifiers import validate_id
from actor_pipeline.portrait.fetch import redact_source
from actor_pipeline.portrait.limits import PortraitLimits
from actor_pipeline.portrait.normalize import NormalizedPortrait, normalize_portrait
from actor_pipeline.storage.base import Storage
from actor_pipeline.storage.layout import ActorLayout, registration_key


class ActorKind(BaseModel):
    """What an actor is: the fields an inbox sidecar, the Launchpad's form, the CLI's flags and the
    API name alike, each normalized (``human``, ``Female `` -> ``female``)."""

    model_config = ConfigDict(frozen=True)

    actor_type: str = Field("human", description=f"what the actor is: one of {', '.join(ACTOR_TYPES)}")
    actor_sex: str | None = Field(None, description=f"humans only: {' or '.join(ACTOR_SEXES)}; unset means 'person'")

    _check_type = field_validator("actor_type")(normalize_actor_type)
    _check_sex = field_validator("actor_sex")(normalize_actor_sex)

    @property
    def descriptor(self) -> str:
        return get_actor_descriptor(self.actor_type, self.actor_sex)

    def fields_of(self, shape: type[BaseModel]) -> dict[str, Any]:
        """The fields ``shape`` has (``ActorKind``, ``ActorFields``...), to make that shape of the
        same actor from."""
        return self.model_dump(include=set(shape.model_fields))


class ActorFields(ActorKind):
    """An actor's identity and kind: the fields its registration and its manifest share."""

    actor_id: str = Field(description="1-64 characters from A-Z a-z 0-9 _ -")
    user_id: str = Field("default", description="the owner: the first folder of the set's storage keys")

    _check_actor_id = field_validator("actor_id", mode="before")(lambda v: validate_id(v, "actor id"))
    _check_user_id = field_validator("user_id", mode="before")(lambda v: validate_id(v, "user id"))

    @property
    def layout(self) -> ActorLayout:
        return ActorLayout(self.user_id, self.actor_id)


class NewActor(ActorFields):
    """What starts an actor's set, however it is started: the UI's form, the inbox, the CLI or
    the Python API. Validated once, here: a bad field raises its own ``InputError``."""

    portrait: str = Field("", description="the portrait: a file path on the machine that makes the set, an http(s) URL or an s3:// URI")
    reseed: bool = Field(False, description="new seeds for every shot: new variants of the images")

    def __init__(self, **fields: Any) -> None:
        try:
            super().__init__(**fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            if isinstance(cause := first.get("ctx", {}).get("error"), InputError):
                raise cause from None
            where = ".".join(map(str, first["loc"]))
            raise InputError(f"{where}: {first['msg']}") from None


class Registration(ActorFields):
    portrait_source: str = Field(description="where the portrait came from, secrets redacted")
    seed_variant: int = 0
    registered_at: datetime  # the last registration (every generate registers again)
    first_registered_at: datetime | None = None  # None: registered once, at registered_at

    @property
    def known_since(self) -> datetime:
        """No prediction for the actor can be older than its first registration."""
        return self.first_registered_at or self.registered_at


def load_registration(storage: Storage, actor_id: str) -> Registration:
    try:
        raw = storage.get(registration_key(actor_id))
    except FileNotFoundError:
        raise InputError(
            f"actor {actor_id!r} is not registered: run `actor-pipeline generate PORTRAIT --actor-id {actor_id}`"
            " or drop its portrait in the inbox"
        ) from None
    try:
        return Registration.model_validate_json(raw)
    except (ValidationError, ValueError) as exc:
        problem = str(exc).strip().splitlines()[0]
        raise StateError(
            f"the registration {storage.url(registration_key(actor_id))} of actor {actor_id!r} is unreadable ({problem}): "
            f"register the actor again with `actor-pipeline generate PORTRAIT --actor-id {actor_id} --user-id USER`"
            " (its images and records are kept)"
        ) from None


def register_actor(storage: Storage, new: NewActor, portrait_bytes: bytes) -> tuple[Registration, NormalizedPortrait]:
    """Validate the portrait and the owner, then stage the portrait and write the registration.

    Raises ``InputError`` (nothing written) for a bad portrait, or when the actor already belongs
    to another user.
    """
    registration, normalized = plan_registration(storage, new, portrait_bytes)
    storage.put(registration.layout.source_portrait, portrait_bytes, "application/octet-stream")
    storage.put(registration_key(new.actor_id), registration.model_dump_json(indent=2).encode(), "application/json")
    return registration, normalized


def plan_registration(
    storage: Storage, new: NewActor, portrait_bytes: bytes
) -> tuple[Registration, NormalizedPortrait]:
    """The registration ``register_actor`` would write for ``new``, and its portrait normalized,
    checked as it checks them (``InputError``), writing nothing."""
    actor_id, user_id, reseed = new.actor_id, new.user_id, new.reseed
    normalized = normalize_portrait(portrait_bytes, PortraitLimits.from_env())
    previous = _existing(storage, actor_id)
    if previous and previous.user_id != user_id:
        raise InputError(
            f"actor id {actor_id!r} already belongs to user {previous.user_id!r}: choose another actor id"
        )
    variant = (previous.seed_variant if previous else 0) + (1 if reseed and previous else 0)
    now = datetime.now(UTC)
    registration = Registration(
        **new.fields_of(ActorFields),
        portrait_source=redact_source(new.portrait),
        seed_variant=variant,
        registered_at=now,
        first_registered_at=previous.known_since if previous else now,
    )
    return registration, normalized


def actor_registered(storage: Storage, actor_id: str) -> bool:
    return storage.head(registration_key(actor_id)) is not None


def _existing(storage: Storage, actor_id: str) -> Registration | None:
    """The registration, if there is a readable one: registering again repairs an unreadable one."""
    try:
        return load_registration(storage, actor_id)
    except (InputError, StateError):
        return None

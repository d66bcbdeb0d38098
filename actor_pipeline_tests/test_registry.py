"""An actor's fields have one shape (``registry.NewActor``), validated once when made; the CLI's
flags, the Launchpad's form, the inbox sidecar and the manifest are derived from it."""

import argparse

import pytest

from actor_pipeline.cli import _parser
from actor_pipeline.defs.assets.portrait import NewActorConfig, new_actor_config
from actor_pipeline.errors import InputError
from actor_pipeline.inbox.model import Sidecar, parse_sidecar
from actor_pipeline.registry import ActorKind, NewActor


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"actor_id": "a b"}, "invalid actor id 'a b'"),
        ({"actor_id": "a", "user_id": "../x"}, "invalid user id '../x'"),
        ({"actor_id": "a", "actor_type": "dog"}, "unknown actor type 'dog'"),
        ({"actor_id": "a", "actor_sex": "x"}, "unknown actor sex 'x'"),
        ({"actor_id": "a", "reseed": "maybe"}, "reseed: Input should be a valid boolean"),
        ({}, "actor_id: Field required"),
    ],
)
def test_a_bad_field_is_its_own_input_error(fields: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        NewActor(**fields)


def test_fields_are_normalized_once_when_made() -> None:
    new = NewActor(actor_id="a", actor_type=" Human ", actor_sex="FEMALE")
    assert (new.actor_type, new.actor_sex, new.descriptor) == ("human", "female", "woman")
    assert NewActor(actor_id="a", actor_sex=" ").actor_sex is None


def _flags(command: str) -> dict[str, argparse.Action]:
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return {action.dest: action for action in sub._actions}


def test_the_cli_flags_are_the_actors_fields() -> None:
    flags = _flags("generate")
    for name in ("actor_id", "user_id", "actor_type", "actor_sex", "reseed"):
        assert flags[name].help.startswith(NewActor.model_fields[name].description), name
        assert name == "actor_id" or flags[name].default == NewActor.model_fields[name].default
    assert {"actor_type", "actor_sex"} <= set(_flags("prompts"))


def test_the_launchpad_form_and_the_sidecar_are_the_actors_fields() -> None:
    for name, field in NewActorConfig.model_fields.items():
        assert field.description == NewActor.model_fields[name].description, name
    assert set(ActorKind.model_fields) < set(Sidecar.model_fields)

    sidecar = parse_sidecar(b'{"actor_type": "Creature", "train": true}')
    new = NewActor(actor_id="a", portrait="p.jpg", **sidecar.fields_of(ActorKind))
    assert new.actor_type == "creature"
    # The inbox's run config fills the form: the form gives back the same actor.
    assert NewActorConfig(**new_actor_config(new)).new_actor("a") == new

"""How an actor is named in prompts: "man", "woman", "person", "creature", ..."""

from actor_pipeline.errors import InputError

ACTOR_TYPES: dict[str, str | None] = {
    "human": None,  # chosen by sex below
    "creature": "creature",
    "robotic": "robotic character",
    "anthropomorphic": "anthropomorphic character",
    "mythical": "mythical character",
}
HUMAN_BY_SEX: dict[str | None, str] = {"male": "man", "female": "woman", None: "person"}
ACTOR_SEXES = ("male", "female")


def normalize_actor_type(actor_type: object) -> str:
    value = actor_type.strip().lower() if isinstance(actor_type, str) else actor_type
    if value not in ACTOR_TYPES:
        raise InputError(f"unknown actor type {actor_type!r}: use one of {', '.join(ACTOR_TYPES)}")
    return str(value)


def normalize_actor_sex(actor_sex: object) -> str | None:
    """``None``/empty means unspecified; otherwise one of ``ACTOR_SEXES``."""
    if actor_sex is None or (isinstance(actor_sex, str) and not actor_sex.strip()):
        return None
    value = actor_sex.strip().lower() if isinstance(actor_sex, str) else actor_sex
    if value not in ACTOR_SEXES:
        raise InputError(
            f"unknown actor sex {actor_sex!r}: use one of {', '.join(ACTOR_SEXES)}, or leave it unset"
        )
    return str(value)


def get_actor_descriptor(actor_type: str, actor_sex: str | None = None) -> str:
    """The noun used for the actor in every prompt (seed API).

    Humans are "man", "woman" or, with no sex given, "person"; other types have a fixed noun and
    ignore ``actor_sex`` (which is still validated).
    """
    kind = normalize_actor_type(actor_type)
    sex = normalize_actor_sex(actor_sex)
    return ACTOR_TYPES[kind] or HUMAN_BY_SEX[sex]

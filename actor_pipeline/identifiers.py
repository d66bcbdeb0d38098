"""Validation of actor and user ids, which become partition keys and storage path segments."""

import re
from typing import TypeGuard

from actor_pipeline.errors import InputError

_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_safe_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _ID_PATTERN.fullmatch(value) is not None


def validate_id(value: object, what: str = "actor id") -> str:
    """Return ``value`` if it is a safe id, else raise ``InputError``.

    Ids end up in Dagster partition keys (where ``|`` silently breaks multi-partitions) and in
    storage keys (where ``/`` or ``..`` would escape the actor's folder), so only
    ``[A-Za-z0-9_-]``, 1 to 64 characters, is accepted.
    """
    if not is_safe_id(value):
        raise InputError(
            f"invalid {what} {value!r}: use 1-64 characters from A-Z, a-z, 0-9, '_' and '-'"
        )
    return value

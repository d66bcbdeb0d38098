"""Which actor each paid prediction was made for, account-wide: one small object per prediction
(``_predictions/ID.json``). Replicate removes a prediction's input an hour after it ends, and with
it every other way to tell whose it was; the ledger reads this index then."""

import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from actor_pipeline.identifiers import is_safe_id
from actor_pipeline.storage.base import Storage
from actor_pipeline.storage.layout import PREDICTION_PREFIX, ActorLayout


@dataclass(frozen=True)
class Owner:
    user_id: str
    actor_id: str
    made_for: str  # a shot id, or validation_of(training id)

    def of(self, layout: ActorLayout) -> bool:
        return (self.user_id, self.actor_id) == (layout.user_id, layout.actor_id)

    @property
    def validated_training(self) -> str | None:
        return self.made_for.removeprefix(_VALIDATION) if self.made_for.startswith(_VALIDATION) else None


_VALIDATION = "validation:"


def validation_of(training_id: str) -> str:
    """What a validation image of the training was made for."""
    return f"{_VALIDATION}{training_id}"


def _key(prediction_id: str) -> str:
    return f"{PREDICTION_PREFIX}{prediction_id}.json"


def index_predictions(storage: Storage, layout: ActorLayout, made_for: str, prediction_ids: Iterable[str]) -> None:
    """Note that the predictions were made for the actor's ``made_for``."""
    body = json.dumps(asdict(Owner(layout.user_id, layout.actor_id, made_for))).encode()
    for prediction_id in filter(is_safe_id, prediction_ids):  # provider ids; anything else has no key
        storage.put(_key(prediction_id), body, "application/json")


def prediction_owners(storage: Storage, prediction_ids: Iterable[str]) -> dict[str, Owner]:
    """The indexed owner of each prediction that has one: one read each, several at a time."""

    def owner(prediction_id: str) -> Owner | None:
        try:
            raw = storage.get(_key(prediction_id))
        except FileNotFoundError:
            return None
        try:
            found = Owner(**json.loads(raw))
        except (ValueError, TypeError):  # garbled: tells nothing
            return None
        return found if all(isinstance(value, str) for value in asdict(found).values()) else None

    ids = list(filter(is_safe_id, prediction_ids))
    with ThreadPoolExecutor(max_workers=8) as pool:
        return {p: found for p, found in zip(ids, pool.map(owner, ids), strict=True) if found}

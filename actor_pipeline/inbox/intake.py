"""Take portraits in from an inbox: start each new one once, report each bad one once.

Only listing and the tiny sidecars are read here, so a scan stays cheap with hundreds of files
waiting: fetching, decoding and normalizing a portrait happen once, in the run that starts the
actor (``start_actor``), which also reports a bad portrait. No Dagster here: the sensor turns an
``Intake`` into partitions, run requests and observations.
"""

import logging
from dataclasses import dataclass

from actor_pipeline.errors import InputError
from actor_pipeline.inbox.cursor import InboxCursor
from actor_pipeline.inbox.model import MAX_SIDECAR_BYTES, InboxItem, Sidecar, group_entries, parse_sidecar
from actor_pipeline.inbox.sources import InboxSource
from actor_pipeline.registry import ActorKind, NewActor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Arrived:
    """A new portrait, the actor it starts, and whether its sidecar asks for the LoRA."""

    item: InboxItem
    new: NewActor
    train: bool

    @property
    def run_key(self) -> str:
        """Unique per version of the item, so Dagster never starts its chain twice."""
        return f"inbox:{self.item.key}@{self.item.version}"


@dataclass(frozen=True)
class Intake:
    arrived: list[Arrived]  # oldest drop first
    problems: list[str]  # bad files found in this scan, each reported only now
    errors: list[str]  # failures not caused by the file (storage, network): retried next scan
    waiting: int  # new items left for the next scan by the per-scan limit
    cursor: InboxCursor


def take_in(source: InboxSource, cursor: InboxCursor, *, now: float, settle_s: float, limit: int) -> Intake:
    """Scan ``source`` and take up to ``limit`` new items, oldest first.

    A problem is reported only once the file has been unchanged for ``settle_s``, since a file
    still being written looks broken; until then the item is simply looked at again next scan.
    """
    items, rejected = group_entries(source.list())
    handled = dict(cursor.only([i.key for i in items] + [r.key for r in rejected]).handled)
    problems: list[str] = []
    errors: list[str] = []

    def report(key: str, version: str, modified: float, problem: str) -> None:
        if now - modified >= settle_s:
            handled[key] = version
            problems.append(f"{source.uri(key)}: {problem}")

    for bad in rejected:
        if handled.get(bad.key) != bad.version:
            report(bad.key, bad.version, bad.modified, bad.problem)

    new = sorted((i for i in items if handled.get(i.key) != i.version), key=lambda i: (i.modified, i.key))
    arrived: list[Arrived] = []
    for item in new[:limit]:
        try:
            sidecar = parse_sidecar(source.read(item.sidecar.key, MAX_SIDECAR_BYTES)) if item.sidecar else Sidecar()
        except FileNotFoundError:  # removed since the listing: nothing to do
            continue
        except InputError as exc:
            report(item.key, item.version, item.modified, str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - one unreadable item must not hold up the others
            errors.append(f"{source.uri(item.key)}: {type(exc).__name__}: {exc} (trying again next scan)")
            continue
        handled[item.key] = item.version
        new_actor = NewActor(
            actor_id=item.actor_id, portrait=source.uri(item.key), user_id=item.user_id, **sidecar.fields_of(ActorKind)
        )
        arrived.append(Arrived(item, new_actor, sidecar.train))
        log.info("inbox: %s for user %s from %s", item.actor_id, item.user_id, new_actor.portrait)
    return Intake(arrived, problems, errors, max(0, len(new) - limit), InboxCursor(handled))

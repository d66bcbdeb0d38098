"""What an inbox holds: portraits at ``{user_id}/{actor_id}.{jpg,jpeg,png,webp}``, each with an
optional sidecar ``{user_id}/{actor_id}.json`` describing the actor.

Grouping a listing into items is pure: it never reads a file, so it is cheap to run on every
sensor tick over the whole inbox.
"""

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from pydantic import ConfigDict, Field, ValidationError

from actor_pipeline.errors import InputError
from actor_pipeline.identifiers import validate_id
from actor_pipeline.registry import ActorKind

PORTRAIT_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
SIDECAR_SUFFIX = ".json"
MAX_SIDECAR_BYTES = 64_000
LAYOUT_HINT = "{user_id}/{actor_id}.jpg (or .jpeg, .png, .webp), with an optional {user_id}/{actor_id}.json"


@dataclass(frozen=True)
class InboxEntry:
    """One listed file or object. ``version`` changes whenever its content may have changed."""

    key: str  # '/'-separated, relative to the inbox root, e.g. "u1/alice.jpg"
    size: int
    modified: float  # POSIX seconds
    version: str  # local: size and mtime in ns; S3: ETag and LastModified


@dataclass(frozen=True)
class InboxItem:
    """A portrait to register, with its sidecar if there is one."""

    user_id: str
    actor_id: str
    portrait: InboxEntry
    sidecar: InboxEntry | None

    @property
    def key(self) -> str:
        return self.portrait.key

    @property
    def version(self) -> str:
        """Changes when the portrait or the sidecar changes (or the sidecar appears or goes)."""
        return self.portrait.version + (f"+{self.sidecar.version}" if self.sidecar else "")

    @property
    def modified(self) -> float:
        return max(self.portrait.modified, self.sidecar.modified if self.sidecar else 0.0)


@dataclass(frozen=True)
class Rejected:
    """Something in the inbox that cannot be an item as it stands, and why."""

    key: str  # the file, or "{user_id}/{actor_id}.*" when several portraits claim one actor
    version: str
    modified: float
    problem: str


class Sidecar(ActorKind):
    """The optional ``{actor_id}.json`` next to a portrait: the actor's kind (checked here, so that
    the report names the sidecar as the culprit) and whether to train."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    train: bool = Field(False, description="also train the actor's LoRA once its set is complete")


def parse_sidecar(data: bytes) -> Sidecar:
    """Raises ``InputError`` naming the problem and the fix."""
    fields = ", ".join(Sidecar.model_fields)
    if len(data) > MAX_SIDECAR_BYTES:
        raise InputError(f"the sidecar is larger than {MAX_SIDECAR_BYTES} bytes: it should only hold {fields}")
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(
            f"the sidecar is not valid JSON ({exc}): write an object such as "
            '{"actor_type": "human", "actor_sex": "female"}'
        ) from None
    try:
        return Sidecar.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'sidecar'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise InputError(f"the sidecar is invalid ({problems}): use a JSON object with only {fields}") from None


def group_entries(entries: Iterable[InboxEntry]) -> tuple[list[InboxItem], list[Rejected]]:
    """Pair portraits with sidecars. Hidden files and folders (names starting with '.', as
    uploaders and editors use for partial files) are ignored; a sidecar without a portrait waits
    for it silently."""
    portraits: dict[tuple[str, str], list[InboxEntry]] = defaultdict(list)
    sidecars: dict[tuple[str, str], InboxEntry] = {}
    rejected: list[Rejected] = []
    for entry in entries:
        path = PurePosixPath(entry.key)
        if any(part.startswith(".") for part in path.parts) or entry.key.endswith("/"):
            continue
        problem = _layout_problem(path)
        if problem:
            rejected.append(Rejected(entry.key, entry.version, entry.modified, problem))
        elif path.suffix.lower() == SIDECAR_SUFFIX:
            sidecars[(path.parent.name, path.stem)] = entry
        else:
            portraits[(path.parent.name, path.stem)].append(entry)

    items: list[InboxItem] = []
    for (user_id, actor_id), found in portraits.items():
        if len(found) == 1:
            items.append(InboxItem(user_id, actor_id, found[0], sidecars.get((user_id, actor_id))))
            continue
        names = sorted(PurePosixPath(e.key).name for e in found)
        rejected.append(
            Rejected(
                f"{user_id}/{actor_id}.*",
                "+".join(sorted(e.version for e in found)),
                max(e.modified for e in found),
                f"{len(found)} portraits for one actor ({', '.join(names)}): keep only one of them",
            )
        )
    return items, rejected


def _layout_problem(path: PurePosixPath) -> str | None:
    if len(path.parts) != 2:
        return f"not where the inbox looks: put portraits at {LAYOUT_HINT}"
    if path.suffix.lower() not in (*PORTRAIT_SUFFIXES, SIDECAR_SUFFIX):
        kinds = "/".join(PORTRAIT_SUFFIXES)
        return f"unsupported file type {path.suffix or '(none)'!r}: portraits must be {kinds}, sidecars .json"
    try:
        validate_id(path.parent.name, "user id (folder name)")
        validate_id(path.stem, "actor id (file name)")
    except InputError as exc:
        return f"{exc}; rename it"
    return None

"""The inbox cursor: which version of each inbox item has been handled (registered or reported).

A modification-time watermark misses files that arrive with an older mtime (``mv`` and
``cp -p`` keep it; an S3 multipart upload gets the LastModified of its start) and needs tie
rules for equal mtimes. Recording the handled version of every item still in the inbox has
neither problem: an item is new exactly when its (key, version) is not recorded. Entries of
files that left the inbox are dropped, so the cursor stays as large as the inbox (about 60
bytes per portrait); dropping a removed file again registers it again, as a new arrival.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from actor_pipeline.errors import ConfigurationError

_FORMAT = 1


@dataclass(frozen=True)
class InboxCursor:
    handled: dict[str, str] = field(default_factory=dict)  # key -> version

    def is_handled(self, key: str, version: str) -> bool:
        return self.handled.get(key) == version

    def only(self, keys: Iterable[str]) -> "InboxCursor":
        """Forget every key not in ``keys`` (the files that are still in the inbox)."""
        present = set(keys)
        return InboxCursor({k: v for k, v in self.handled.items() if k in present})

    def serialize(self) -> str:
        return json.dumps({"format": _FORMAT, "handled": self.handled}, sort_keys=True, separators=(",", ":"))

    @classmethod
    def parse(cls, raw: str | None) -> "InboxCursor":
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            if data.get("format") != _FORMAT or not isinstance(data.get("handled"), dict):
                raise ValueError("unknown layout")
        except (ValueError, AttributeError) as exc:
            raise ConfigurationError(
                f"the inbox sensor's cursor is unreadable ({exc}): reset it in the UI (sensor page, "
                "'Edit cursor', empty) to rescan the inbox; already registered portraits are then "
                "registered again, and their unchanged images reused"
            ) from None
        return cls({str(k): str(v) for k, v in data["handled"].items()})

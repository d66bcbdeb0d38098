"""The seed's debug files: ``training_data_output_N.jpg``, ``request_payload_N.json`` and
``training_data_grid.jpg`` in a folder of the user's choosing."""

import json
from collections.abc import Mapping
from pathlib import Path

_REDACTED_PREFIXES = ("data:",)  # inline images would bloat the payload files


class DebugWriter:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def write_image(self, index: int, data: bytes) -> None:
        (self.directory / f"training_data_output_{index}.jpg").write_bytes(data)

    def write_request(self, index: int, payload: Mapping[str, object]) -> None:
        if payload:
            text = json.dumps(_scrub(payload), indent=2, sort_keys=True, default=str)
            (self.directory / f"request_payload_{index}.json").write_text(text + "\n")

    def write_grid(self, data: bytes) -> None:
        (self.directory / "training_data_grid.jpg").write_bytes(data)


def _scrub(value: object) -> object:
    """Backends already leave image data and tokens out; this is the belt to their braces."""
    if isinstance(value, Mapping):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    if isinstance(value, str) and value.startswith(_REDACTED_PREFIXES):
        return f"<{value.split(',', 1)[0]}, {len(value)} characters omitted>"
    return value

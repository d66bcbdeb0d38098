"""The layering in pyproject's ``[tool.importlinter]`` holds: each layer imports only from the
layers below it, and the plain domain code never imports Dagster."""

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


@pytest.fixture(autouse=True)
def _loggers_kept() -> Iterator[None]:
    """``lint_imports`` configures logging with ``dictConfig``, which disables every logger that
    exists by then: the package's, in a worker that ran a CLI test before (whose progress lines
    a later test then misses)."""
    loggers = [found for found in logging.root.manager.loggerDict.values() if isinstance(found, logging.Logger)]
    disabled = {found: found.disabled for found in loggers}
    yield
    for found, was in disabled.items():
        found.disabled = was


def test_the_import_contracts_are_kept() -> None:
    assert lint_imports(config_filename=str(PYPROJECT), no_cache=True) == 0


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    # The check is not vacuous: the same contracts with the layers reversed are broken.
    text = PYPROJECT.read_text()
    start, end = text.index("layers = ["), text.index("]", text.index("layers = ["))
    layers = text[start + len("layers = [") : end].strip().splitlines()
    reversed_config = text[:start] + "layers = [\n" + "\n".join(reversed(layers)) + "\n" + text[end:]
    config = tmp_path / "pyproject.toml"
    config.write_text(reversed_config)
    assert lint_imports(config_filename=str(config), no_cache=True) == 1

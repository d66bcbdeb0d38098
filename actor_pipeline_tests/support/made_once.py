"""``made_once``: folders made once per test run and shared by every xdist worker, in ``run_folder``.

A pytest plugin (the root conftest registers it); tests import only ``MadeOnce``, the fixture's type.
"""

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

MadeOnce = Callable[[str, Callable[[Path], None]], Path]


@pytest.fixture(scope="session")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder every xdist worker of this test run shares (each worker's own base folder is
    in it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def made_once(run_folder: Path) -> MadeOnce:
    """``made_once(name, make)``: a folder that ``make`` fills once for the whole run, whichever
    xdist worker asks first (the others wait for it, then share it; xdist's documented pattern).
    For expensive fixtures that tests only read: a module- or session-scoped fixture alone is made
    again on every worker that runs one of its tests."""

    def made(name: str, make: Callable[[Path], None]) -> Path:
        folder, done = run_folder / name, run_folder / f"{name}.done"
        with FileLock(run_folder / f"{name}.lock"):
            if not done.exists():
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
                make(folder)
                done.touch()
        return folder

    return made

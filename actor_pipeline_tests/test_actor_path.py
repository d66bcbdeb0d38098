"""One actor's way through the code passes each module at most once per direction: followed from
the inbox sensor and from ``generate`` to the manifest, no call stack holds one of the package's
modules twice with another module between (A calls B calls back into A). A module the way
returns to is one a reader has to keep open twice; callbacks such as the CLI's progress lines
live in modules of their own.

Stacks are followed within each thread (the shots' worker threads start their own).
"""

import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import dagster as dg
import pytest

import actor_pipeline
from actor_pipeline import cli
from actor_pipeline.storage.layout import ActorLayout
from actor_pipeline_tests.defs.pipeline import build_pipeline
from actor_pipeline_tests.defs.test_sensors import inbox_tick
from actor_pipeline_tests.support.backends import FlakyBackend, generator_for

PACKAGE = str(Path(actor_pipeline.__file__).parent) + "/"


class Revisits:
    """Each call stack (innermost first, as package modules) that holds a module twice, counted."""

    def __init__(self) -> None:
        self.stacks: Counter[str] = Counter()
        self.calls = 0

    def __call__(self, frame: FrameType, event: str, _arg: Any) -> None:
        if event != "call" or not frame.f_code.co_filename.startswith(PACKAGE):
            return
        self.calls += 1
        modules: list[str] = []
        caller: FrameType | None = frame
        while caller is not None:
            filename = caller.f_code.co_filename
            if filename.startswith(PACKAGE) and (not modules or modules[-1] != filename[len(PACKAGE) :]):
                modules.append(filename[len(PACKAGE) :])
            caller = caller.f_back
        if len(modules) != len(set(modules)):
            self.stacks[" <- ".join(modules)] += 1

    def report(self) -> str:
        return "\n".join(f"{count} x {stack}" for stack, count in self.stacks.most_common())


@contextmanager
def revisits() -> Iterator[Revisits]:
    found = Revisits()
    threading.setprofile(found)
    sys.setprofile(found)
    try:
        yield found
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]  # None unsets it, as for sys.setprofile


def test_from_the_inbox_sensor_to_the_manifest(
    tmp_path: Path, instance: dg.DagsterInstance, flaky: FlakyBackend, portrait_bytes: bytes
) -> None:
    pipeline = build_pipeline(tmp_path, instance, generator_for(flaky), flaky)
    (pipeline.inbox / "u1").mkdir(parents=True)
    (pipeline.inbox / "u1/alice.jpg").write_bytes(portrait_bytes)
    with revisits() as found:
        [request] = inbox_tick(pipeline).run_requests or []
        assert pipeline.execute(request).success
    assert pipeline.storage.head(ActorLayout("u1", "alice").manifest) is not None
    assert found.calls > 1000  # the run was followed, not just its start
    assert not found.stacks, found.report()


def test_from_generate_to_the_manifest(
    tmp_path: Path, portrait_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with revisits() as found:
        code = cli.main(["generate", str(portrait_file), "--actor-id", "bob", "--out", str(tmp_path / "out")])
    assert code == cli.EXIT_OK, capsys.readouterr().err
    assert (tmp_path / "out/default/custom-actors/bob/training_data/manifest.json").is_file()
    assert found.calls > 1000
    assert not found.stacks, found.report()


def in_module(module: str, source: str) -> dict[str, Any]:
    """The functions ``source`` defines, as if written in the package's ``module``."""
    names: dict[str, Any] = {}
    exec(compile(source, PACKAGE + module, "exec"), names)
    return names


def test_a_callback_into_a_module_already_left_is_found() -> None:
    # The check is not vacuous: cli calls stages, which calls back into cli.
    stages = in_module("stages.py", "def run(callback):\n    return callback()\n")
    outer = in_module("cli.py", "def main(run):\n    return run(report)\ndef report():\n    return 1\n")
    with revisits() as found:
        outer["main"](stages["run"])
    assert list(found.stacks) == ["cli.py <- stages.py <- cli.py"], found.report()

"""One error tree: every exception class the package defines derives from ``PipelineError``,
and the CLI gives each branch its own exit code."""

import ast
from pathlib import Path

import pytest

import actor_pipeline
from actor_pipeline import cli
from actor_pipeline.errors import ActorBusy, InputError, NotMadeYet, PipelineError, StateError

PACKAGE = Path(actor_pipeline.__file__).parent
# Bases that name no error but are one: the package's own classes in the tree.
_ERROR_BASES = {"CreatesClosed", "Unavailable"}


def _exception_classes() -> list[tuple[str, str]]:
    """(module path, class name) of every class in the package whose name says it is an error,
    or that derives from an exception."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(base, ast.Name) and (base.id.endswith(("Error", "Exception")) or base.id in _ERROR_BASES)
                for base in node.bases
            ):
                found.append((path.relative_to(PACKAGE.parent).with_suffix("").as_posix().replace("/", "."), node.name))
    return found


def test_every_exception_class_of_the_package_is_in_the_error_tree() -> None:
    classes = _exception_classes()
    assert len(classes) >= 15, classes  # the scan found them
    outside = []
    for module_name, name in classes:
        module = __import__(module_name, fromlist=[name])
        if not issubclass(getattr(module, name), PipelineError):
            outside.append(f"{module_name}.{name}")
    assert outside == [], f"exception classes outside PipelineError: {outside}"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InputError("bad id: use letters"), 2),
        (StateError("the registration x.json is unreadable: register again"), 3),
        (ActorBusy("held by pid 1"), 75),
        (NotMadeYet("no prompt set yet"), 1),
    ],
    ids=["input-2", "state-3", "busy-75", "not-made-yet-1"],
)
def test_each_branch_has_its_exit_code_and_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: Exception, code: int
) -> None:
    def fail(_: object) -> int:
        raise error

    monkeypatch.setitem(cli._COMMANDS, "prompts", fail)
    assert cli.main(["prompts"]) == code
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and str(error) in lines[0], lines

"""The code has no unused imports or variables, no undefined names, and sorted imports: ruff's
pyflakes and isort rules, as ``[tool.ruff.lint]`` in pyproject selects them."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    checked = subprocess.run(
        [str(ruff), "check", "--no-cache", "actor_pipeline", "actor_pipeline_tests", "benchmarks"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr

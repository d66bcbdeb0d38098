"""What ``generate`` may spend, from the command line (issue 19): a bad value exits 2 with one
line naming the flag, and ``--help`` states the defaults the code has."""

from pathlib import Path

import pytest

from actor_pipeline.cli import main
from actor_pipeline.generation.budget import DEFAULT_REGEN_BUDGET_PCT, DEFAULT_SYSTEMIC_PCT, regen_budget
from actor_pipeline.outputs.bundle import COMMON_MINIMUM
from actor_pipeline_tests.test_cli import run


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--regen-budget", "120"], "--regen-budget must be a percentage from 0 to 100, got 120"),
        (["--systemic-pct", "0"], "--systemic-pct must be a percentage above 0 and at most 100, got 0"),
        (["--max-cost-usd", "-1"], "--max-cost-usd must be 0 or more dollars, got -1"),
        (["--min-images", "0"], "--min-images must be at least 1, got 0"),
    ],
)
def test_a_bad_spending_value_exits_2_with_one_line_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, portrait_file: Path, argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, "generate", str(portrait_file), "--actor-id", "ok", "--out", str(tmp_path / "o"), *argv)
    assert (code, out, err) == (2, "", f"actor-pipeline: error: {message}\n")
    assert not (tmp_path / "o").exists()


def test_help_states_the_defaults_the_code_has(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default: {DEFAULT_REGEN_BUDGET_PCT:g}, {regen_budget(17, DEFAULT_REGEN_BUDGET_PCT)} of 17)" in text
    assert f"(default: {DEFAULT_SYSTEMIC_PCT:g})" in text and f"(default: {COMMON_MINIMUM}," in text

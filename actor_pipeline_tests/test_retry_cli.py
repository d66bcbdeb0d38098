"""``actor-pipeline retry-failed``: only failed shots are generated again."""

import json
from pathlib import Path

import pytest

from actor_pipeline.cli import main
from actor_pipeline.defs.resources import ImageGeneratorResource
from actor_pipeline.samples import SAMPLE_PORTRAIT
from actor_pipeline_tests.replicate_emulator import ReplicateEmulator
from actor_pipeline_tests.support.backends import FlakyBackend


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> FlakyBackend:
    flaky = FlakyBackend()
    monkeypatch.setattr(ImageGeneratorResource, "create_backend", lambda self, catalog: flaky)
    return flaky


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out else None, captured.err


def test_a_rerun_of_two_failed_shots_creates_exactly_two_predictions(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, emulator: ReplicateEmulator
) -> None:
    out = str(tmp_path / "out")
    emulator.behaviour.failing = ("woodcut print", "gouache painting")  # words of those two prompts
    code, made, _ = cli(capsys, "generate", str(SAMPLE_PORTRAIT), "--actor-id", "alice", "--out", out)
    assert code == 1 and sorted(f["shot_id"] for f in made["failed"]) == ["gouache", "woodcut"]  # type: ignore[index]
    emulator.behaviour.failing = ()
    before = emulator.account.counters()

    code, result, err = cli(capsys, "retry-failed", "--actor-id", "alice", "--out", out)
    assert code == 0, err
    after = emulator.account.counters()
    assert after.predictions_created - before.predictions_created == 2
    assert after.paid - before.paid == 2
    assert result == [
        {
            "actor_id": "alice",
            "retried": ["woodcut", "gouache"],
            "exhausted": [],
            "still_failed": [],
            "total_training_images": 17,
            "manifest_url": result[0]["manifest_url"],  # type: ignore[index]
        }
    ]
    assert result[0]["manifest_url"].endswith("/custom-actors/alice/training_data/manifest.json")  # type: ignore[index]

    assert cli(capsys, "retry-failed", "--out", out)[:2] == (0, [])  # nothing left to retry, all actors
    assert emulator.account.counters().predictions_created == after.predictions_created


def test_shots_that_still_fail_exit_1_and_stop_at_max_attempts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, backend: FlakyBackend
) -> None:
    out = str(tmp_path / "out")
    backend.fail = {"charcoal"}
    cli(capsys, "generate", str(SAMPLE_PORTRAIT), "--actor-id", "bob", "--out", out)
    code, result, _ = cli(capsys, "retry-failed", "--out", out, "--max-attempts", "2")
    assert code == 1
    assert result[0]["retried"] == result[0]["still_failed"] == ["charcoal"]  # type: ignore[index]

    backend.calls.clear()
    code, result, err = cli(capsys, "retry-failed", "--out", out, "--max-attempts", "2")
    assert code == 1 and backend.calls == [] and "charcoal reached 2 attempt(s); not retried" in err
    assert result[0]["retried"] == [] and result[0]["exhausted"][0]["attempts"] == 2  # type: ignore[index]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--actor-id", "nobody"], "actor 'nobody' is not registered"),
        (["--max-attempts", "0"], "--max-attempts must be at least 1, got 0"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    code, out, err = cli(capsys, "retry-failed", "--out", str(tmp_path / "o"), *argv)
    assert code == 2 and out is None
    assert err.strip().splitlines()[-1].startswith("actor-pipeline: error: ") and message in err

"""The seed's Python API."""

import os
from pathlib import Path

import dagster as dg
import pytest

from actor_pipeline import ActorTrainingDataGenerator, InputError, PortraitError, TrainingClient
from actor_pipeline_tests.replicate_emulator import ReplicateEmulator


def test_generate_training_data_returns_the_seed_keys(tmp_path: Path, portrait_bytes: bytes) -> None:
    source = tmp_path / "p.jpg"
    source.write_bytes(portrait_bytes)
    generator = ActorTrainingDataGenerator(debug_dir=str(tmp_path / "debug"), batch_size=3, output_dir=str(tmp_path / "o"))
    result = generator.generate_training_data(str(source), "user_123", "actor_456", actor_type="creature")
    assert result["total_training_images"] == result["target_training_images"] == 17
    assert len(result["training_image_urls"]) == 17 and result["failed"] == []
    assert all("/user_123/custom-actors/actor_456/training_data/actor_actor_456_td_" in u for u in result["training_image_urls"])
    assert (tmp_path / "debug/training_data_grid.jpg").is_file()
    usable = {"qc_passed": 17, "qc_failed": [], "bundle_images": 17, "cost_usd": 0.0, "cost_per_usable_image_usd": 0.0}
    assert result.items() >= usable.items()

    again = generator.generate_training_data(str(source), "user_123", "actor_456", actor_type="creature", dry_run=True)
    assert again.items() >= {"reused": 17, "first_pass": 0, "predictions_at_most": 0}.items()


def test_portrait_buffer_is_preferred_and_the_url_is_the_fallback(tmp_path: Path, portrait_bytes: bytes) -> None:
    source = tmp_path / "p.jpg"
    source.write_bytes(portrait_bytes)
    generator = ActorTrainingDataGenerator(output_dir=str(tmp_path / "o"))
    used_buffer = generator.generate_training_data(str(tmp_path / "absent.jpg"), "u", "a1", portrait_buffer=portrait_bytes)
    assert used_buffer["total_training_images"] == 17
    fell_back = generator.generate_training_data(str(source), "u", "a2", portrait_buffer=b"<html>not an image</html>")
    assert fell_back["total_training_images"] == 17
    with pytest.raises(PortraitError):
        generator.generate_training_data("", "u", "a3", portrait_buffer=b"<html>not an image</html>")


def test_bad_input_raises_a_value_error(tmp_path: Path, portrait_bytes: bytes) -> None:
    generator = ActorTrainingDataGenerator(output_dir=str(tmp_path))
    with pytest.raises(InputError, match="invalid actor id") as info:
        generator.generate_training_data("", "u", "bad id", portrait_buffer=portrait_bytes)
    assert isinstance(info.value, ValueError)
    with pytest.raises(ValueError, match="batch_size"):
        ActorTrainingDataGenerator(batch_size=0)


def test_a_token_given_in_code_reaches_replicate_and_nothing_else(
    tmp_path: Path, portrait_bytes: bytes, emulator: ReplicateEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REPLICATE_API_TOKEN")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    source = tmp_path / "p.jpg"
    source.write_bytes(portrait_bytes)
    generator = ActorTrainingDataGenerator(replicate_token=emulator.token, output_dir=str(tmp_path / "o"))
    result = generator.generate_training_data(str(source), "u", "a")
    assert result["total_training_images"] == 17 and result["backend"] == "replicate"
    assert emulator.account.counters().predictions_created == 17
    assert "REPLICATE_API_TOKEN" not in os.environ  # passed to the client, not through the environment
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        stored = "".join(
            repr(run) + repr(instance.get_job_snapshot(run.job_snapshot_id)) + repr(instance.all_logs(run.run_id))
            for run in runs
        )
    assert len(runs) == 1 and emulator.token not in stored


def test_a_dry_run_creates_nothing_and_says_what_a_new_actor_would_cost(tmp_path: Path, portrait_bytes: bytes) -> None:
    generator = ActorTrainingDataGenerator(output_dir=str(tmp_path / "o"), max_cost_usd=0.5)
    estimate = generator.generate_training_data("", "u", "new", portrait_buffer=portrait_bytes, dry_run=True)
    figures = {"dry_run": True, "backend": "preview", "first_pass": 17, "regenerations": 4, "cost_at_most_usd": 0.0}
    assert estimate.items() >= {**figures, "predictions_at_most": 21, "max_cost_usd": 0.5}.items()
    assert not (tmp_path / "o").exists()
    with pytest.raises(InputError, match="regen_budget_pct must be a percentage from 0 to 100, got -5"):
        ActorTrainingDataGenerator(output_dir=str(tmp_path), regen_budget_pct=-5)


def test_train_actor_trains_the_set_once_through_replicate(
    tmp_path: Path, portrait_bytes: bytes, emulator: ReplicateEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTOR_PIPELINE_TRAINING_POLL_S", "0.05")
    emulator.behaviour.training_s = 0.3
    source = tmp_path / "p.jpg"
    source.write_bytes(portrait_bytes)
    out = str(tmp_path / "o")
    made = ActorTrainingDataGenerator(output_dir=out).generate_training_data(str(source), "u", "a1")
    client = TrainingClient(output_dir=out)
    with pytest.raises(InputError, match="not images of 'a1'"):
        client.train_actor(actor_id="a1", training_image_urls=["https://elsewhere.example/x.jpg"])
    lora = client.train_actor(actor_id="a1", training_image_urls=made["training_image_urls"])
    assert lora["status"] == "succeeded" and lora["weights_url"] and lora["likeness"]["predictions"] == 4
    assert client.train_actor(actor_id="a1")["reused"] is True
    assert emulator.account.counters().trainings_created == 1

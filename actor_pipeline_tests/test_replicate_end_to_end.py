"""The whole pipeline through the real ``replicate`` client against the emulator."""

import json
from pathlib import Path

import pytest

from actor_pipeline.cli import main
from actor_pipeline_tests.replicate_emulator import ReplicateEmulator, flux

# Substrings of two default prompts (pen_ink, woodcut), for the emulator to flag as sensitive.
PEN_INK, WOODCUT = "kicking open a warehouse door", "vaulting over a chain-link fence"


def generate(capsys: pytest.CaptureFixture[str], tmp_path: Path, portrait: Path, *extra: str) -> tuple[int, dict]:
    code = main(["generate", str(portrait), "--actor-id", "alice", "--out", str(tmp_path / "out"), *extra])
    return code, json.loads(capsys.readouterr().out)


def test_a_token_makes_the_full_set_through_replicate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, portrait_file: Path, emulator: ReplicateEmulator
) -> None:
    code, result = generate(capsys, tmp_path, portrait_file)
    assert code == 0 and result["backend"] == "replicate" and result["total_training_images"] == 17
    assert result["cost_usd"] == pytest.approx(17 * 0.04)
    counters = emulator.account.counters()
    assert counters.predictions_created == counters.succeeded == 17
    assert set(counters.predictions_per_shot.values()) == {1}

    manifest = json.loads((tmp_path / "out/default/custom-actors/alice/training_data/manifest.json").read_text())
    assert manifest["model"] == "black-forest-labs/flux-kontext-pro"
    assert manifest["ledger"] == {"predictions_created": 17, "predictions_succeeded": 17, "predictions_failed": 0,
                                  "predictions_canceled": 0, "cost_usd": pytest.approx(0.68), "predictions_recovered": 0}
    assert all(image["prediction_id"] and image["width"] == 1392 for image in manifest["images"])
    sent_seeds = {seed for (_, seed) in counters.predictions_per_shot}
    assert sent_seeds == {image["seed"] for image in manifest["images"]}

    code, _ = generate(capsys, tmp_path, portrait_file)  # an unchanged rerun pays for nothing
    assert code == 0 and emulator.account.counters().predictions_created == 17


def test_rerunning_two_flagged_shots_pays_for_exactly_two(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, portrait_file: Path, emulator: ReplicateEmulator
) -> None:
    emulator.account.behaviour.flagged = (PEN_INK, WOODCUT)
    code, result = generate(capsys, tmp_path, portrait_file)
    assert code == 1 and sorted(f["shot_id"] for f in result["failed"]) == ["pen_ink", "woodcut"]
    assert {f["status"] for f in result["failed"]} == {"content_flagged"}
    assert all("E005" in f["error"] or "sensitive" in f["error"] for f in result["failed"])
    assert emulator.account.counters().predictions_created == 17
    assert result["cost_usd"] == result["cost_this_run_usd"] == pytest.approx(15 * 0.04)  # flagged: not billed

    emulator.account.behaviour.flagged = ()
    code, result = generate(capsys, tmp_path, portrait_file)
    assert code == 0 and result["total_training_images"] == 17
    assert emulator.account.counters().predictions_created == 19
    assert result["cost_this_run_usd"] == pytest.approx(2 * 0.04) and result["cost_usd"] == pytest.approx(17 * 0.04)
    code, result = generate(capsys, tmp_path, portrait_file)
    assert code == 0 and result["cost_this_run_usd"] == 0 and result["cost_usd"] == pytest.approx(17 * 0.04)
    manifest = json.loads((tmp_path / "out/default/custom-actors/alice/training_data/manifest.json").read_text())
    assert manifest["ledger"]["predictions_created"] == 19 and manifest["ledger"]["predictions_failed"] == 2
    assert manifest["ledger"]["cost_usd"] == pytest.approx(17 * 0.04)  # billed per output image


def test_replicate_without_a_token_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, portrait_file: Path
) -> None:
    assert main(["generate", str(portrait_file), "--actor-id", "a", "--backend", "replicate", "--out", str(tmp_path)]) == 2
    assert "needs REPLICATE_API_TOKEN" in capsys.readouterr().err


def test_a_forced_colour_leak_and_near_duplicate_are_caught_and_regenerated_within_the_bound(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, portrait_file: Path, emulator: ReplicateEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The emulator's first image of two shots goes wrong: the woodcut (black and white) comes in
    # colour, and the gouache repeats the watercolor's picture. Their next attempts are fine.
    original = flux.render
    ruined: dict[str, int] = {}

    def render(size: tuple[int, int], seed: object, prompt: str, output_format: str, **_look: bool) -> bytes:
        if "woodcut" in prompt and not ruined.get("woodcut"):
            ruined["woodcut"] = 1
            return original(size, seed, prompt.replace("woodcut", "poster"), output_format)  # no "black and white"
        if "gouache" in prompt and not ruined.get("gouache"):
            ruined["gouache"] = 1
            watercolor = next(p for p in emulator.account.predictions() if "watercolor" in str(p["input"]["prompt"]))
            return original(size, watercolor["input"]["seed"], str(watercolor["input"]["prompt"]), output_format)
        return original(size, seed, prompt, output_format)

    monkeypatch.setattr(flux, "render", render)
    code, result = generate(capsys, tmp_path, portrait_file, "--max-concurrency", "1")  # watercolor before gouache
    assert code == 0 and result["total_training_images"] == 17
    manifest = json.loads((tmp_path / "out/default/custom-actors/alice/training_data/manifest.json").read_text())
    images = {image["shot_id"]: image for image in manifest["images"]}
    for shot_id, check in (("woodcut", "monochrome"), ("gouache", "near_duplicate")):
        assert images[shot_id]["qc"] == "regenerated" and images[shot_id]["regenerations"] == 1
        assert images[shot_id]["attempts"] == 2 and images[shot_id]["cost_usd"] == pytest.approx(0.08)
        assert [c for c in images[shot_id]["quality"] if c["check"] == check][0]["outcome"] == "passed"
    assert {image["qc"] for shot_id, image in images.items() if shot_id not in ("woodcut", "gouache")} == {"passed"}
    counters = emulator.account.counters()
    assert counters.paid == 19 and manifest["ledger"]["cost_usd"] == pytest.approx(19 * 0.04)  # the bill, both extras in
    assert len(manifest["bundle"]["report"]["images"]) == 17


def three_hours_later(emulator: ReplicateEmulator, out: Path, actor: str) -> None:
    """Every prediction made three hours ago (Replicate has removed their inputs), and ``actor``
    registered long before, so that the ledger's list window holds them."""
    emulator.account.age(3 * 3600)
    registration = out / f"_registry/actors/{actor}.json"
    registered = json.loads(registration.read_text())
    registered["registered_at"] = registered["first_registered_at"] = "2000-01-01T00:00:00Z"
    registration.write_text(json.dumps(registered))


def test_hours_later_an_actors_ledger_leaves_out_another_actors_predictions_by_their_index(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, portrait_file: Path, emulator: ReplicateEmulator
) -> None:
    out = tmp_path / "out"
    for actor in ("alice", "bob"):
        assert main(["generate", str(portrait_file), "--actor-id", actor, "--out", str(out)]) == 0
    three_hours_later(emulator, out, "alice")  # both sets' predictions are listed without their inputs now
    capsys.readouterr()

    assert main(["ledger", "--actor-id", "alice", "--out", str(out), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["equal"] and found["provider"]["predictions_created"] == 17, found  # tied by id, not by input
    assert found["untied_predictions"] == {"predictions": [], "cost_usd": 0.0, "other_actors": 17}


def test_a_prediction_whose_record_and_image_were_lost_is_tied_by_the_index_hours_later_and_reconciled(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, portrait_file: Path, emulator: ReplicateEmulator
) -> None:
    out = tmp_path / "out"
    assert main(["generate", str(portrait_file), "--actor-id", "alice", "--out", str(out)]) == 0
    actor = out / "default/custom-actors/alice"
    (actor / "pipeline/shots/woodcut.json").unlink()
    (actor / "training_data/actor_alice_td_11.jpg").unlink()  # woodcut's image
    three_hours_later(emulator, out, "alice")
    capsys.readouterr()

    assert main(["ledger", "--actor-id", "alice", "--out", str(out), "--json"]) == 1
    assert [d["shot_id"] for d in json.loads(capsys.readouterr().out)["differences"]] == ["woodcut"]
    assert main(["ledger", "--actor-id", "alice", "--out", str(out), "--reconcile"]) == 0
    assert main(["ledger", "--actor-id", "alice", "--out", str(out), "--json"]) == 0


def test_a_garbled_prompt_set_is_planned_again_and_the_rerun_pays_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, portrait_file: Path, emulator: ReplicateEmulator
) -> None:
    code, _ = generate(capsys, tmp_path, portrait_file)
    assert code == 0
    (tmp_path / "out/default/custom-actors/alice/pipeline/prompt_set.json").write_text("{garbled")
    code, result = generate(capsys, tmp_path, portrait_file)
    assert code == 0 and result["cost_this_run_usd"] == 0 and emulator.account.counters().predictions_created == 17

"""Issue 19 end to end: the real CLI against the emulator, counting what the emulator billed. A
model whose outputs are near-identical, two shots failing a check, a spending cap reached mid-run,
and ``--dry-run`` before and after."""

from collections.abc import Iterator

import pytest

from actor_pipeline.generation.budget import DEFAULT_REGEN_BUDGET_PCT, regen_budget
from actor_pipeline_tests.durability.harness import PRICE_USD, SHOTS, Harness
from actor_pipeline_tests.replicate_emulator import Behaviour, ReplicateEmulator

BUDGET = regen_budget(SHOTS, DEFAULT_REGEN_BUDGET_PCT)  # 4


@pytest.fixture
def emulator() -> Iterator[ReplicateEmulator]:
    """Quick predictions: these tests wait for whole sets, never catch one in flight."""
    with ReplicateEmulator(behaviour=Behaviour(latency_s=0.2)) as running:
        yield running


def test_a_near_identical_model_pays_no_regeneration_says_why_once_and_exits_1(harness: Harness) -> None:
    harness.emulator.behaviour.near_identical = True
    finished = harness.generate().wait()
    finished.assert_ended_cleanly(1)
    paid = harness.settled().paid
    assert paid == SHOTS <= SHOTS + BUDGET, harness.summary()  # systemic: nothing is regenerated
    said = [line for line in finished.stderr.splitlines() if "near_duplicate failed on 16 of 17 shots" in line]
    assert len(said) == 1 and "check the model" in said[0], finished.describe()
    assert "LoRA bundle holds 1 image(s), below its minimum of 10" in finished.message

    result = finished.json()
    assert result["qc_passed"] == result["bundle_images"] == 1 and len(result["qc_failed"]) == 16
    assert {f["not_regenerated"] for f in result["qc_failed"]} == {"systemic"}
    assert result["cost_usd"] == result["cost_per_usable_image_usd"] == pytest.approx(SHOTS * PRICE_USD)
    assert [said[0].endswith(message) for message in result["systemic"]] == [True]
    manifest = harness.manifest()
    assert manifest and [s["check"] for s in manifest["quality"]["systemic"]] == ["near_duplicate"]


def test_two_shots_failing_a_check_are_regenerated_within_the_budget_and_exit_0(harness: Harness) -> None:
    # Words of the two shots' first prompts only: their rewordings come back black and white.
    harness.emulator.behaviour.colour_leaks = ("kicking open a warehouse door", "vaulting over a chain-link fence")
    finished = harness.generate().wait()
    finished.assert_ended_cleanly(0, with_message=False)
    assert harness.settled().paid == SHOTS + 2, harness.summary()
    result = finished.json()
    assert result["qc_passed"] == result["bundle_images"] == SHOTS and result["qc_failed"] == []
    assert result["cost_per_usable_image_usd"] == pytest.approx((SHOTS + 2) * PRICE_USD / SHOTS, abs=1e-4)
    manifest = harness.manifest()
    assert manifest and {i["shot_id"] for i in manifest["images"] if i["qc"] == "regenerated"} == {"pen_ink", "woodcut"}


def test_a_cap_reached_mid_run_then_a_higher_cap_pays_only_for_the_rest_and_dry_runs_create_nothing(
    harness: Harness,
) -> None:
    fresh = harness.generate("--dry-run").wait()
    fresh.assert_ended_cleanly(0)
    figures = {"reused": 0, "first_pass": SHOTS, "regenerations": BUDGET, "predictions_at_most": SHOTS + BUDGET}
    assert fresh.json().items() >= {**figures, "cost_at_most_usd": (SHOTS + BUDGET) * PRICE_USD}.items()
    assert harness.emulator.account.counters().create_requests == 0 and not harness.registration_path.exists()
    assert not (harness.state_dir / "dagster").exists()  # no Dagster run either

    capped = harness.generate("--max-cost-usd", "0.30").wait()
    capped.assert_ended_cleanly(1)
    assert harness.settled().predictions_created == 7, harness.summary()  # $0.28: an eighth would pass $0.30
    pending = [f for f in capped.json()["failed"] if f["status"] == "pending"]
    assert len(pending) == SHOTS - 7 and all("spending cap of $0.30" in f["error"] for f in pending)

    rerun = harness.generate("--max-cost-usd", "1").wait()
    rerun.assert_ended_cleanly(0, with_message=False)
    harness.assert_paid_once_and_stored()

    done = harness.generate("--dry-run").wait()
    done.assert_ended_cleanly(0)
    finished = {"reused": SHOTS, "first_pass": 0, "regenerations": 0, "predictions_at_most": 0, "cost_at_most_usd": 0}
    assert done.json().items() >= finished.items()
    assert harness.emulator.account.counters().create_requests == SHOTS

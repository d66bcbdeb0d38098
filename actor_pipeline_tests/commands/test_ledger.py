"""The ledger's text: images, trainings and validation images, one line each, and what to do."""

from datetime import UTC, datetime

from actor_pipeline.commands.ledger import LedgerReport, ShotLedger, format_ledger
from actor_pipeline.generation.types import Faded, Usage
from actor_pipeline.training.ledger import BillPart

SINCE = datetime(2026, 12, 7, 16, 58, tzinfo=UTC)
PAID = Usage(predictions_created=1, predictions_succeeded=1, cost_usd=0.04)


def test_a_ledger_that_lacks_a_prediction_and_a_running_training_says_what_and_how_to_add_them() -> None:
    report = LedgerReport(
        "alice",
        SINCE,
        [ShotLedger("woodcut", PAID, PAID + PAID, ["p2"]), ShotLedger("gouache", PAID, PAID)],
        reconciled=False,
        lora=[
            BillPart("trainings", 1, 0.003056, 2, 1.503056, ["t2"], ["t2"]),
            BillPart("validation images", 4, 0.128, 4, 0.128),
        ],
    )
    assert format_ledger(report, "actor-pipeline ledger --actor-id alice --out /srv/sets --reconcile").splitlines() == [
        "actor alice: Replicate's lists since 2026-12-07 16:58 UTC",
        "  images: ledger 2 ($0.08), Replicate 3 ($0.12)",
        "    woodcut: not in the ledger: p2",
        "  trainings: ledger 1 ($0.0031), Replicate 2 ($1.50); not in the ledger: t2"
        " (t2 still running: `actor-pipeline train` adopts it, reconcile does not)",
        "  validation images: ledger 4 ($0.13), Replicate 4 ($0.13)",
        "  in all: ledger $0.21, Replicate $1.75",
        "run `actor-pipeline ledger --actor-id alice --out /srv/sets --reconcile` to add them to the ledger",
    ]
    found = report.as_dict()
    assert found["trainings"]["running"] == ["t2"] and not found["equal"]
    assert found["total_usd"] == {"ledger": 0.211056, "provider": 1.751056}


def test_an_equal_ledger_of_an_actor_never_trained_has_no_lora_lines() -> None:
    report = LedgerReport("bob", SINCE, [ShotLedger("woodcut", PAID, PAID)], reconciled=False)
    assert format_ledger(report, "actor-pipeline ledger --actor-id bob --reconcile").splitlines()[1:] == [
        "  images: ledger 1 ($0.04), Replicate 1 ($0.04)",
        "the ledger holds everything Replicate lists for the actor",
    ]
    assert "trainings" not in report.as_dict() and report.as_dict()["equal"]
    assert report.as_dict()["total_usd"] == {"ledger": 0.04, "provider": 0.04}


def test_predictions_listed_without_their_inputs_and_named_by_no_record_are_told_apart() -> None:
    untied = [Faded("old1", SINCE, PAID), Faded("old2", SINCE, PAID)]
    report = LedgerReport(
        "carol",
        SINCE,
        [ShotLedger("woodcut", PAID, PAID)],
        reconciled=False,
        untied=untied,
        lora=[BillPart("validation images", 4, 0.128, 4, 0.128, untied=["v9"])],
    )
    lines = format_ledger(report, "actor-pipeline ledger --actor-id carol --reconcile").splitlines()
    assert lines[2].startswith("    untied: 2 prediction(s) of the model ($0.08) listed without their inputs")  # no model given, lines
    assert lines[3].endswith("; untied: 1 listed without their inputs, named by no record"), lines
    assert lines[-1] == "the ledger holds everything Replicate can still tie to the actor"
    found = report.as_dict()
    assert found["equal"] and found["untied_predictions"] == {"predictions": ["old1", "old2"], "cost_usd": 0.08, "other_actors": 0}
    assert found["validation_images"]["untied"] == ["v9"]

"""Issue 22: the actor's LoRA through the real CLI and the emulator. One command trains and
validates; whatever interrupts a training (kill -9, SIGTERM, a lost create answer, a lost state
folder, a second maker), one training is paid in all and the rerun finishes it; asking again pays nothing; a
failed training is recorded with its cost and the next ask trains again; a refused bundle or
destination costs nothing and says so in one line."""

import io
import json
import shutil
import signal
import zipfile
from pathlib import Path

import pytest

from actor_pipeline_tests.durability.harness import ACTOR, SHOTS, USER, CliProcess, Harness
from actor_pipeline_tests.replicate_emulator import Fault
from actor_pipeline_tests.replicate_emulator.trainings import LORA_MODEL, TRAINER, TRAINER_VERSION

PRICE_PER_SECOND_USD = 0.001528  # TrainingSettings' default: the trainer's H100
VALIDATION_IMAGES = 4
HISTORY = f"{USER}/custom-actors/{ACTOR}/pipeline/trainings.json"


@pytest.fixture
def trained(harness: Harness, made_set: Path) -> Harness:
    """A complete set (the run's ``made_set``), trainings that take 1 s, and the CLI polling them often."""
    harness.emulator.behaviour.latency_s = 0.05
    harness.emulator.behaviour.training_s = 1.0
    harness.env["ACTOR_PIPELINE_TRAINING_POLL_S"] = "0.1"
    harness.start_from(made_set)
    manifest = harness.manifest()
    assert manifest is not None and manifest["totals"]["generated"] == SHOTS, manifest
    return harness


def train(harness: Harness, *extra: str) -> CliProcess:
    return harness.start("train", "--actor-id", ACTOR, "--out", str(harness.out), *extra)


def training_running(harness: Harness) -> bool:
    return any(t["status"] == "processing" for t in harness.emulator.account.trainings())


def history(harness: Harness) -> list[dict[str, object]]:
    raw = harness.store.read(HISTORY)
    return json.loads(raw)["trainings"] if raw else []


def assert_one_training_paid_and_recorded(harness: Harness) -> None:
    """Exactly one training created and billed, succeeded, and the manifest's lora section and
    ledger equal to what the emulator billed."""
    counters = harness.emulator.account.counters()
    assert counters.trainings_created == counters.trainings_billed == 1, counters
    manifest = harness.manifest()
    assert manifest is not None and manifest["lora"] is not None, manifest
    lora = manifest["lora"]
    assert lora["status"] == "succeeded" and lora["trainings"] == 1, lora
    assert lora["weights_url"] and lora["model_version"].startswith(f"emulated-user/actor-{ACTOR}-lora:")
    assert lora["trainings_cost_usd"] == pytest.approx(counters.training_seconds_billed * PRICE_PER_SECOND_USD)


def test_one_command_trains_and_validates_and_asking_again_pays_nothing(harness: Harness) -> None:
    harness.emulator.behaviour.latency_s = 0.05
    harness.emulator.behaviour.training_s = 1.0
    harness.env["ACTOR_PIPELINE_TRAINING_POLL_S"] = "0.1"
    made = harness.generate("--train").wait()  # from a fresh set: one command
    made.assert_ended_cleanly(0, with_message=False)
    assert_one_training_paid_and_recorded(harness)
    lora = made.json()["lora"]
    assert lora["reused"] is False and lora["likeness"]["predictions"] == VALIDATION_IMAGES
    assert "step 1000/1000" in made.stderr, made.describe()  # the trainer's progress, on stderr
    manifest = harness.manifest()
    assert manifest is not None
    assert manifest["lora"]["likeness"]["images"] == VALIDATION_IMAGES
    assert manifest["lora"]["likeness"]["cost_usd"] == pytest.approx(VALIDATION_IMAGES * 0.032)
    assert manifest["lora"]["validation_images"] == VALIDATION_IMAGES
    assert manifest["lora"]["validation_cost_usd"] == pytest.approx(VALIDATION_IMAGES * 0.032)
    spent = manifest["ledger"]["cost_usd"] + manifest["lora"]["trainings_cost_usd"] + VALIDATION_IMAGES * 0.032
    assert manifest["total_cost_usd"] == pytest.approx(spent) and manifest["lora"]["trainings_cost_usd"] > 0
    assert lora["cost_this_run_usd"] == pytest.approx(spent - manifest["ledger"]["cost_usd"])  # training + validation
    before = harness.emulator.account.counters()
    assert before.predictions_created == SHOTS + VALIDATION_IMAGES

    again = train(harness).wait()
    again.assert_ended_cleanly(0)
    assert again.json()["reused"] is True and again.json()["cost_usd"] == again.json()["cost_this_run_usd"] == 0.0
    assert "reused, nothing paid" in again.stderr, again.describe()
    after = harness.emulator.account.counters()
    assert (after.trainings_created, after.predictions_created) == (1, before.predictions_created), "asking again paid"


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "SIGTERM"])
def test_a_training_interrupted_while_running_is_adopted_by_the_rerun(trained: Harness, signum: signal.Signals) -> None:
    trained.emulator.behaviour.training_s = 6.0
    first = train(trained)
    trained.wait_until(lambda: training_running(trained), "a training in progress", watch=first)
    if signum == signal.SIGKILL:
        first.kill_group(signal.SIGKILL)
        assert first.wait(10).code == -signal.SIGKILL
    else:
        first.send(signal.SIGTERM)
        stopped = first.wait(30)
        stopped.assert_ended_cleanly(143)
        assert trained.emulator.account.counters().training_cancel_requests == 0, "a stop must not cancel a paid training"

    rerun = train(trained).wait()
    rerun.assert_ended_cleanly(0)
    assert "adopting training" in rerun.stderr, rerun.describe()
    assert_one_training_paid_and_recorded(trained)


def test_a_training_whose_state_folder_was_lost_is_adopted_from_the_trainings_list(trained: Harness) -> None:
    """kill -9 while training, then the state folder gone (a replaced machine): the intent and the
    training's id are lost, and Replicate's list, matched by the bundle's checksum and the config,
    still says what was paid for."""
    trained.emulator.behaviour.training_s = 6.0
    first = train(trained)
    trained.wait_until(lambda: training_running(trained), "a training in progress", watch=first)
    first.kill_group(signal.SIGKILL)
    assert first.wait(10).code == -signal.SIGKILL
    shutil.rmtree(trained.state_dir)
    checked = ledger(trained, "--json").wait()  # the ledger sees it, running: train adopts it
    (running,) = trained.emulator.account.trainings()
    assert checked.code == 1 and checked.json()["trainings"]["running"] == [running["id"]], checked.describe()

    rerun = train(trained).wait()
    rerun.assert_ended_cleanly(0)
    assert "found in Replicate's list" in rerun.stderr, rerun.describe()
    assert_one_training_paid_and_recorded(trained)
    assert [t["recovered"] for t in history(trained)] == [True]


def test_a_listed_training_whose_upload_is_gone_is_not_adopted_and_does_not_stop_the_next(trained: Harness) -> None:
    """Our history lost and the earlier training's upload gone from the Files API (404): nothing
    proves the listed training was of this bundle, so a new one is trained, without an error."""
    train(trained, "--no-validate").wait().assert_ended_cleanly(0)
    (trained.out / HISTORY).unlink()
    for upload in trained.emulator.account.files():
        trained.emulator.account.delete_file(str(upload["id"]))

    again = train(trained, "--no-validate").wait()
    again.assert_ended_cleanly(0)
    counters = trained.emulator.account.counters()
    assert counters.trainings_created == counters.trainings_billed == 2, counters
    assert [t["recovered"] for t in history(trained)] == [False]


def test_a_lost_create_answer_is_found_in_the_trainings_list(trained: Harness) -> None:
    trained.emulator.account.inject("train", Fault(None, after_create=True))  # created, then the connection drops
    done = train(trained).wait()
    done.assert_ended_cleanly(0)
    assert_one_training_paid_and_recorded(trained)
    assert [t["recovered"] for t in history(trained)] == [True]
    assert trained.emulator.account.counters().training_lists >= 1


def test_a_create_taken_after_the_connection_dropped_is_found_and_paid_once(trained: Harness) -> None:
    # The connection drops at once and the API takes the training 3 s later: a look in the
    # trainings list right away finds nothing, and the training would be paid with none recorded.
    trained.emulator.account.inject("train", Fault(None, taken_after_s=3.0))
    done = train(trained).wait()
    done.assert_ended_cleanly(0)
    assert_one_training_paid_and_recorded(trained)
    assert [t["recovered"] for t in history(trained)] == [True]


def test_two_makers_at_once_pay_for_one_training(trained: Harness) -> None:
    trained.emulator.behaviour.training_s = 3.0
    runs = [train(trained), train(trained)]
    finished = [run.wait() for run in runs]
    report = "\n\n".join(f.describe() for f in finished)
    assert sorted(f.code for f in finished) in ([0, 0], [0, 75]), report  # the second waits and reuses, or leaves
    assert_one_training_paid_and_recorded(trained)


def test_a_failed_training_is_recorded_with_its_cost_and_the_next_ask_trains_again(trained: Harness) -> None:
    trained.emulator.behaviour.failing_trainings = 1
    failed = train(trained).wait()
    failed.assert_ended_cleanly(1)
    assert "training failed" in failed.message and "CUDA out of memory" in failed.message, failed.describe()
    assert "cost $" in failed.message and "asking again starts a new training" in failed.message
    manifest = trained.manifest()
    assert manifest is not None and manifest["lora"]["status"] == "failed", manifest["lora"] if manifest else None
    billed = trained.emulator.account.counters().training_seconds_billed
    assert manifest["lora"]["trainings_cost_usd"] == pytest.approx(billed * PRICE_PER_SECOND_USD) and billed > 0

    again = train(trained).wait()
    again.assert_ended_cleanly(0)
    counters = trained.emulator.account.counters()
    assert counters.trainings_created == 2 and counters.training_statuses == {"failed": 1, "succeeded": 1}
    lora = trained.manifest()["lora"]  # type: ignore[index]
    assert lora["status"] == "succeeded" and lora["trainings"] == 2
    assert lora["trainings_cost_usd"] == pytest.approx(counters.training_seconds_billed * PRICE_PER_SECOND_USD)


def test_the_ledger_finds_the_trainings_and_validation_images_a_lost_history_forgot(trained: Harness) -> None:
    """A failed training, then a trained and validated LoRA; the training history then lost. The
    ledger finds both trainings in Replicate's list by their bundle's checksum (not another
    actor's training into the same destination model) and the four validation images by their
    LoRA; reconciled, the manifest counts what was billed, and asking again pays nothing."""
    trained.emulator.behaviour.failing_trainings = 1
    train(trained).wait().assert_ended_cleanly(1)
    train(trained).wait().assert_ended_cleanly(0)
    (ours, theirs) = trained.emulator.account.trainings(), _another_actors_training(trained)
    whole = ledger(trained, "--json").wait()
    whole.assert_ended_cleanly(0, with_message=False)
    assert whole.json()["trainings"]["ledger"] == whole.json()["trainings"]["provider"], whole.json()
    assert whole.json()["validation_images"]["ledger"]["count"] == VALIDATION_IMAGES, whole.json()
    # Validated at another price (a UI user's setting): both sides at the record's, as the manifest.
    kept = json.loads((trained.out / HISTORY).read_text())
    kept["trainings"][-1]["validation_price_usd"] = 0.05
    (trained.out / HISTORY).write_text(json.dumps(kept))
    priced = ledger(trained, "--json").wait().json()["validation_images"]
    assert priced["ledger"] == priced["provider"] == {"count": VALIDATION_IMAGES, "cost_usd": 0.2}, priced

    (trained.out / HISTORY).unlink()
    told = ledger(trained).wait()  # the hint repeats --out: pasted, it reconciles this folder's actor
    assert told.code == 1 and f"--out {trained.out} --reconcile`" in told.stdout, told.describe()
    lost = ledger(trained, "--json").wait()
    assert lost.code == 1, lost.describe()
    billed = sum(t["metrics"]["predict_time"] for t in ours) * PRICE_PER_SECOND_USD  # type: ignore[index]
    trainings, validation = lost.json()["trainings"], lost.json()["validation_images"]
    assert sorted(trainings["unrecorded"]) == sorted(t["id"] for t in ours), (trainings, theirs)
    assert trainings["ledger"]["count"] == 0 and trainings["provider"]["cost_usd"] == pytest.approx(billed)
    assert sorted(validation["unrecorded"]) == sorted(p["id"] for p in validation_predictions(trained))
    assert validation["provider"]["cost_usd"] == pytest.approx(VALIDATION_IMAGES * 0.032)

    ledger(trained, "--reconcile").wait().assert_ended_cleanly(0, with_message=False)
    equal = ledger(trained, "--json").wait()
    equal.assert_ended_cleanly(0, with_message=False)
    # One figure to hold against the bill: the ledger's, Replicate's and the manifest's agree.
    total = equal.json()["total_usd"]
    assert total["ledger"] == total["provider"] == trained.manifest()["total_cost_usd"], (total, trained.manifest())  # type: ignore[index]
    lora = trained.manifest()["lora"]  # type: ignore[index]
    assert lora["trainings"] == 2 and lora["trainings_cost_usd"] == pytest.approx(billed), lora
    ended = {t["training_id"]: t["ended_at"][:19] for t in history(trained)}  # as Replicate says, not the reconcile's time
    assert ended == {t["id"]: str(t["completed_at"])[:19] for t in ours}, (ended, ours)
    asked = train(trained).wait()  # the LoRA and its images are reused, not paid again
    asked.assert_ended_cleanly(0)
    assert "nothing paid" in asked.stderr and theirs not in asked.stdout, asked.describe()
    counters = trained.emulator.account.counters()
    assert counters.trainings_created == 3 and len(validation_predictions(trained)) == VALIDATION_IMAGES, counters


def test_hours_later_the_prediction_index_ties_the_validation_images_a_lost_history_forgot(trained: Harness) -> None:
    """Three hours after a trained and validated LoRA, with the training history lost: Replicate
    lists the validation images without their inputs (so without their LoRA), and the prediction
    index says whose they were and which training they validated; reconciled, the manifest counts
    them again."""
    train(trained).wait().assert_ended_cleanly(0)
    (trained.out / HISTORY).unlink()
    trained.emulator.account.age(3 * 3600)
    registration = json.loads(trained.registration_path.read_text())
    registration["registered_at"] = registration["first_registered_at"] = "2000-01-01T00:00:00Z"
    trained.registration_path.write_text(json.dumps(registration))

    lost = ledger(trained, "--json").wait()
    assert lost.code == 1, lost.describe()
    validation = lost.json()["validation_images"]
    assert sorted(validation["unrecorded"]) == sorted(p["id"] for p in validation_predictions(trained)), validation
    assert validation["untied"] == [] and lost.json()["untied_predictions"]["predictions"] == [], lost.json()
    ledger(trained, "--reconcile").wait().assert_ended_cleanly(0, with_message=False)
    lora = trained.manifest()["lora"]  # type: ignore[index]
    assert lora["validation_images"] == VALIDATION_IMAGES and lora["trainings"] == 1, lora


def _another_actors_training(harness: Harness) -> str:
    """A training of another bundle into this actor's destination model (another user's actor of
    the same id, or another deployment on the token); returns its id."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("01.jpg", harness.portrait.read_bytes())
        bundle.writestr("01.txt", "TOK another person")
    upload = harness.emulator.account.upload("other.zip", "application/zip", buffer.getvalue(), {})
    account = harness.emulator.account
    sent = {"input_images": upload["urls"]["get"], "trigger_word": "TOK"}  # type: ignore[index]
    created = account.create_training(*TRAINER.split("/"), TRAINER_VERSION,
                                      {"destination": f"emulated-user/actor-{ACTOR}-lora", "input": sent})  # fmt: skip
    ended = lambda: any(t["id"] == created["id"] and t["status"] == "succeeded" for t in account.trainings())  # noqa: E731
    harness.wait_until(ended, "the other training to end")
    return str(created["id"])


def ledger(harness: Harness, *extra: str) -> CliProcess:
    return harness.start("ledger", "--actor-id", ACTOR, "--out", str(harness.out), *extra)


def test_the_deadline_cancels_the_training_and_records_it(trained: Harness) -> None:
    trained.emulator.behaviour.training_s = 60.0
    late = train(trained, "--train-deadline", "1").wait()
    late.assert_ended_cleanly(1)
    assert "past the deadline" in late.message, late.describe()
    counters = trained.emulator.account.counters()
    assert counters.training_statuses == {"canceled": 1} and counters.training_cancel_requests == 1
    assert [t["status"] for t in history(trained)] == ["timed_out"]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (("--min-train-images", "50"), "fewer than the trainer's minimum of 50"),
        (("--lora-owner", "someone-else"), "may not write to it"),
    ],
    ids=["bundle-below-minimum", "bad-destination"],
)
def test_a_refused_bundle_or_destination_costs_nothing_and_says_so_in_one_line(
    trained: Harness, extra: tuple[str, ...], words: str
) -> None:
    refused = train(trained, *extra).wait()
    refused.assert_ended_cleanly(2)
    assert words in refused.message and "nothing was paid" in refused.message, refused.describe()
    counters = trained.emulator.account.counters()
    assert counters.trainings_created == 0 and counters.predictions_created == SHOTS
    assert history(trained) == []


def validation_predictions(harness: Harness) -> list[dict[str, object]]:
    return [p for p in harness.emulator.account.predictions() if p["model"] == LORA_MODEL]


def assert_validated_once(harness: Harness) -> None:
    """Each held-out image paid for once, and the likeness says what the emulator billed."""
    paid = validation_predictions(harness)
    assert len(paid) == VALIDATION_IMAGES, [(p["id"], p["status"]) for p in paid]
    manifest = harness.manifest()
    assert manifest is not None
    likeness = manifest["lora"]["likeness"]
    assert likeness["images"] == VALIDATION_IMAGES, likeness
    assert likeness["cost_usd"] == pytest.approx(VALIDATION_IMAGES * 0.032), likeness


@pytest.mark.parametrize("status", [None, 502], ids=["dropped", "502"])
def test_a_validation_image_whose_create_answer_was_lost_is_found_and_paid_once(
    trained: Harness, status: int | None
) -> None:
    train(trained, "--no-validate").wait().assert_ended_cleanly(0)
    trained.emulator.account.inject("create", Fault(status, after_create=True))  # the first validation image's
    done = train(trained).wait()
    done.assert_ended_cleanly(0)
    assert "found in Replicate's list" in done.stderr, done.describe()
    assert_validated_once(trained)


@pytest.mark.parametrize("later_s", [0, 3660], ids=["at-once", "61-min-later"])
def test_validation_killed_between_a_create_and_its_image_is_stored_pays_each_image_once(
    trained: Harness, later_s: int
) -> None:
    """kill -9 while validation images are being made, then the state folder gone: the rerun
    takes what Replicate's list holds for this LoRA's prompts and seeds, and pays for the rest;
    past its hour the unstored image's output is deleted, and it is made (and paid) again."""
    train(trained, "--no-validate").wait().assert_ended_cleanly(0)
    trained.emulator.behaviour.latency_s = 3.0
    first = train(trained)
    trained.wait_until(lambda: len(validation_predictions(trained)) >= 2, "two validation images paid", watch=first)
    first.kill_group(signal.SIGKILL)
    assert first.wait(10).code == -signal.SIGKILL
    shutil.rmtree(trained.state_dir)
    trained.emulator.account.age(later_s)

    trained.emulator.behaviour.latency_s = 0.05
    rerun = train(trained).wait()
    rerun.assert_ended_cleanly(0)
    if not later_s:
        assert_validated_once(trained)
        return
    paid = validation_predictions(trained)
    assert len(paid) == VALIDATION_IMAGES + 1, [(p["id"], p["status"]) for p in paid]  # the expired one again
    likeness = trained.manifest()["lora"]["likeness"]  # type: ignore[index]
    assert likeness["images"] == VALIDATION_IMAGES and likeness["measured"] == 0, likeness


def test_a_cap_below_the_trainings_worst_case_refuses_it_before_anything_is_paid(trained: Harness) -> None:
    # The worst case: the 3600 s deadline at $0.001528/s ($5.50) and 4 validation images ($0.128).
    uploads = trained.emulator.account.counters().uploads
    refused = train(trained, "--max-cost-usd", "5").wait()
    refused.assert_ended_cleanly(2)
    assert "may cost up to $5.63" in refused.message and "raise the cap by $0.63" in refused.message, refused.describe()
    assert "--train-deadline" in refused.message and "nothing was paid" in refused.message
    counters = trained.emulator.account.counters()
    assert (counters.trainings_created, counters.predictions_created, counters.uploads) == (0, SHOTS, uploads)

    # A deadline that fits the cap bounds the training: it trains and validates within it.
    done = train(trained, "--max-cost-usd", "1", "--train-deadline", "500").wait()
    done.assert_ended_cleanly(0)
    assert_one_training_paid_and_recorded(trained)
    assert len(validation_predictions(trained)) == VALIDATION_IMAGES


def test_generate_train_leaves_the_lora_what_the_images_did_not_spend(harness: Harness) -> None:
    harness.emulator.behaviour.latency_s = 0.05
    harness.emulator.behaviour.training_s = 1.0
    harness.env["ACTOR_PIPELINE_TRAINING_POLL_S"] = "0.1"
    # $0.68 for the 17 images leaves $0.32 of $1: not enough for 4 validation images and 200 s of training.
    made = harness.generate("--train", "--max-cost-usd", "1", "--train-deadline", "200").wait()
    made.assert_ended_cleanly(2)
    assert "more than the $0.32 the cap leaves" in made.message, made.describe()
    counters = harness.emulator.account.counters()
    assert counters.trainings_created == 0 and counters.predictions_created == SHOTS
    assert made.json()["total_training_images"] == SHOTS  # the set's result stands
    manifest = harness.manifest()
    assert manifest is not None and manifest["totals"]["generated"] == SHOTS

"""Issue 18: the provider's record is the second source of truth. Whatever our own state lost
(the state folder, garbled entries, a machine that never saw the shots), a rerun pays each shot
once while outputs live, the ledger equals what the emulator billed, outages and a refused token
cost no tries, and the CLI ends in one line."""

import json
import shutil
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from actor_pipeline_tests.durability.harness import SHOTS, BucketStore, Harness

if TYPE_CHECKING:
    from actor_pipeline_tests.durability.harness import SmallDisk
    from actor_pipeline_tests.support.s3 import S3Env

OUTAGE = {"ACTOR_PIPELINE_OUTAGE_WAIT_S": "3"}


def kill_at_9_paid(harness: Harness) -> int:
    """Every shot in flight, 9 of them paid, then kill -9; returns how many images were stored."""
    harness.stagger(9, slow_s=8.0)
    first = harness.generate()
    harness.wait_until(lambda: harness.emulator.account.counters().paid >= 9, "9 paid predictions", watch=first)
    first.kill_group(signal.SIGKILL)
    first.wait(10)
    return len(harness.images())


def test_kill_9_at_9_paid_and_the_state_folder_lost_then_the_same_command_pays_each_shot_once(
    harness: Harness,
) -> None:
    stored = kill_at_9_paid(harness)
    shutil.rmtree(harness.state_dir)  # a replaced machine: journal, spool and Dagster instance gone
    # The killed run's reads are left out: on a loaded machine its creates' answers may come late,
    # and each is then looked for in the list (a CI run counted 6 reads in all).
    lists = harness.emulator.account.counters().lists

    rerun = harness.generate().wait()
    rerun.assert_ended_cleanly(0, with_message=False)
    harness.assert_paid_once_and_stored()
    ledger = harness.manifest()["ledger"]  # type: ignore[index]
    # Every shot not stored before the kill was known only to Replicate's list.
    assert ledger["predictions_recovered"] == SHOTS - stored, ledger
    assert harness.emulator.account.counters().lists - lists == 1, "the list is read once per run, not once per shot"


def test_creates_taken_after_the_cli_gave_up_on_their_answers_are_found_and_paid_once(harness: Harness) -> None:
    # Every create is taken 4 s after it arrives, as under load; the client waits 1.5 s for an
    # answer (create_wait_s + 0.5) and about 1 s more (the retry delay) before it first looks in
    # the list, which then finds nothing.
    harness.emulator.behaviour.create_delay_s = 4.0
    made = harness.generate().wait()
    made.assert_ended_cleanly(0, with_message=False)
    time.sleep(harness.emulator.behaviour.create_delay_s + 0.5)  # any create still held is taken
    harness.assert_paid_once_and_stored()
    assert "but made prediction" in made.stderr, made.describe()  # the answers were lost indeed


def test_garbled_journal_entries_after_a_kill_cost_nothing_and_status_changes_nothing(harness: Harness) -> None:
    kill_at_9_paid(harness)
    journal = harness.state_dir / "default" / harness.actor
    entries = sorted(journal.glob("*.json"))
    assert len(entries) >= 2, entries
    for entry in entries[:2]:
        entry.write_text('{"shot_id": "garbled", "sta')
    before = {path: path.read_bytes() for path in journal.rglob("*") if path.is_file()}

    status = harness.status().wait()
    assert status.code == 1 and "Traceback" not in status.stderr, status.describe()
    after = {path: path.read_bytes() for path in journal.rglob("*") if path.is_file()}
    assert after == before, "status (a read command) changed the shot journal"
    rows = {row["shot_id"]: row for row in status.json()}
    assert all("unreadable" in (rows[entry.stem]["error"] or "") for entry in entries[:2]), rows

    rerun = harness.generate().wait()
    rerun.assert_ended_cleanly(0, with_message=False)
    assert "moved aside" in rerun.stderr, rerun.describe()  # the repair is made, and said, by the maker
    harness.assert_paid_once_and_stored()


def test_a_garbled_record_whose_image_metadata_is_gone_is_adopted_from_the_list(harness: Harness, made_set: Path) -> None:
    harness.emulator.behaviour.latency_s = 0.5
    harness.start_from(made_set)
    shot = harness.manifest()["images"][4]  # type: ignore[index]
    harness.shot_record_path(shot["shot_id"]).write_text('{"shot_id": "x", "status": "succ')
    for sidecar in (harness.out / ".meta").rglob(Path(shot["key"]).name + "*"):
        sidecar.unlink()  # the image's metadata, which would rebuild the record, is gone too

    rerun = harness.generate().wait()
    rerun.assert_ended_cleanly(0, with_message=False)
    harness.assert_paid_once_and_stored()  # adopted within the output's hour: downloaded, not paid again
    again = next(i for i in harness.manifest()["images"] if i["shot_id"] == shot["shot_id"])  # type: ignore[index]
    assert (again["prediction_id"], again["sha256"]) == (shot["prediction_id"], shot["sha256"])


def test_an_output_older_than_its_hour_is_paid_again_and_the_ledger_names_what_it_cannot_tie(
    harness: Harness,
) -> None:
    stored = kill_at_9_paid(harness)
    shutil.rmtree(harness.state_dir)
    harness.settled()
    # Three hours later: outputs and inputs are removed; the list still shows the predictions,
    # billed, but not what they were made for (the registration, made by the first run, is as old).
    harness.emulator.account.age(3 * 3600)
    registration = json.loads(harness.registration_path.read_text())
    registration["registered_at"] = registration["first_registered_at"] = "2000-01-01T00:00:00Z"
    harness.registration_path.write_text(json.dumps(registration))

    rerun = harness.generate().wait()
    rerun.assert_ended_cleanly(0, with_message=False)
    counters = harness.settled()
    assert counters.paid == 2 * SHOTS - stored, harness.summary(counters)
    warned = f"Replicate lists {SHOTS - stored} prediction(s) (${0.04 * (SHOTS - stored):.2f}) made over an hour ago"
    assert warned in rerun.stderr, rerun.describe()  # paid then, and again now: told
    # The stored images name their predictions; the lost ones can no longer be tied to a shot.
    ledger = harness.manifest()["ledger"]  # type: ignore[index]
    assert ledger["predictions_created"] == SHOTS and ledger["cost_usd"] == round(0.04 * SHOTS, 6), ledger
    checked = harness.start("ledger", "--actor-id", harness.actor, "--out", str(harness.out), "--json").wait()
    assert checked.code == 0 and checked.json()["equal"], checked.describe()
    untied = checked.json()["untied_predictions"]
    assert len(untied["predictions"]) == SHOTS - stored and untied["cost_usd"] == round(0.04 * (SHOTS - stored), 6)
    text = harness.start("ledger", "--actor-id", harness.actor, "--out", str(harness.out)).wait()
    assert f"untied: {SHOTS - stored} prediction(s) of black-forest-labs/flux-kontext-pro" in text.stdout, text.describe()
    assert "everything Replicate can still tie to the actor" in text.stdout


def test_a_second_machine_after_the_lease_expired_pays_nothing_again_and_the_first_back_changes_nothing(
    s3_harness: Harness, s3_env: "S3Env", tmp_path: Path
) -> None:
    first = s3_harness
    kill_at_9_paid(first)
    bucket = BucketStore(s3_env)
    lease_key = next(k for k in _all_keys(bucket) if k.endswith(f"_leases/{first.actor}.json"))
    lease = json.loads(bucket.read(lease_key) or b"{}")
    # As the dead maker was on another machine: its pid cannot be checked from here, only its expiry.
    lease["host"] = "machine-a"
    bucket.client.put_object(Bucket=s3_env.bucket, Key=lease_key, Body=json.dumps(lease).encode())
    second = Harness(first.emulator, first.processes, _mkdir(tmp_path / "machine-b"), first.portrait,
                     first.out, first.store, {k: v for k, v in first.env.items() if k.startswith("AWS_")})  # fmt: skip

    busy = second.generate().wait()
    busy.assert_ended_cleanly(75)
    assert "machine-a" in busy.message, busy.describe()
    lease["expires_at"] = "2000-01-01T00:00:00Z"
    bucket.client.put_object(Bucket=s3_env.bucket, Key=lease_key, Body=json.dumps(lease).encode())
    took_over = second.generate().wait()
    took_over.assert_ended_cleanly(0, with_message=False)
    counters = second.assert_paid_once_and_stored()
    images = {key: bucket.read(key) for key in second.images()}

    back = first.generate().wait()  # the first machine, with its old journal entries
    back.assert_ended_cleanly(0, with_message=False)
    assert first.emulator.account.counters().download_requests == counters.download_requests, "downloaded again"
    assert {key: bucket.read(key) for key in first.images()} == images, "the first machine replaced images"
    first.assert_paid_once_and_stored()


def test_an_outage_over_three_runs_costs_no_tries_and_retry_failed_then_finishes(harness: Harness) -> None:
    harness.env.update(OUTAGE)
    harness.emulator.behaviour.latency_s = 0.5
    harness.emulator.behaviour.down = True
    for _ in range(3):
        during = harness.generate().wait()
        during.assert_ended_cleanly(1)
        assert "did not answer for 3 s" in during.message and "nothing was paid" in during.message, during.describe()
        per_shot = [line for line in during.stderr.splitlines() if "did not answer" in line]
        assert len(per_shot) <= 3, f"one line per shot, not one summary:\n{during.describe()}"
        result = during.json()
        assert len(result["failed"]) == SHOTS and result["cost_usd"] == 0, result
    assert harness.emulator.account.counters().predictions_created == 0

    harness.emulator.behaviour.down = False
    retried = harness.retry_failed().wait()
    retried.assert_ended_cleanly(0, with_message=False)
    assert retried.json()[0]["exhausted"] == [], "outages counted as tries"
    harness.assert_paid_once_and_stored()


def test_a_refused_token_stops_at_the_first_401_with_exit_2_and_one_line(harness: Harness) -> None:
    harness.env["REPLICATE_API_TOKEN"] = "r8_not_the_accounts_token"
    refused = harness.generate().wait()

    refused.assert_ended_cleanly(2)
    assert "REPLICATE_API_TOKEN" in refused.message and "401" in refused.message, refused.describe()
    assert sum("401" in line for line in refused.stderr.splitlines()) == 1, refused.describe()
    assert "r8_not_the_accounts_token" not in refused.stderr
    assert harness.emulator.account.counters().create_requests == 0


def test_the_ledger_command_shows_what_our_state_lost_and_reconcile_adds_it(harness: Harness, made_set: Path) -> None:
    harness.emulator.behaviour.latency_s = 0.5
    harness.start_from(made_set)
    record = harness.shot_record_path(harness.manifest()["images"][0]["shot_id"])  # type: ignore[index]
    # A prediction the ledger never heard of: a create whose answer was lost, then paid again.
    lost = json.loads(record.read_text())
    harness.emulator.account.create(lost["model"] if "/" in lost["model"] else "black-forest-labs/flux-kontext-pro",
                                    {"input": _input_of(harness, lost["prediction_id"])}, None)  # fmt: skip
    harness.settled()

    checked = harness.start("ledger", "--actor-id", harness.actor, "--out", str(harness.out), "--json").wait()
    assert checked.code == 1 and not checked.json()["equal"], checked.describe()
    assert len(checked.json()["differences"]) == 1
    reconciled = harness.start("ledger", "--actor-id", harness.actor, "--out", str(harness.out), "--reconcile").wait()
    assert reconciled.code == 0, reconciled.describe()
    counters = harness.settled()
    ledger = harness.manifest()["ledger"]  # type: ignore[index]
    assert ledger["predictions_created"] == counters.predictions_created == SHOTS + 1, ledger
    assert ledger["cost_usd"] == round(0.04 * counters.paid, 6), ledger
    again = harness.start("ledger", "--actor-id", harness.actor, "--out", str(harness.out), "--json").wait()
    assert again.code == 0 and again.json()["equal"], again.describe()


def _input_of(harness: Harness, prediction_id: str) -> dict[str, object]:
    return next(p["input"] for p in harness.emulator.account.predictions() if p["id"] == prediction_id)


def _all_keys(bucket: BucketStore) -> set[str]:
    pages = bucket.client.get_paginator("list_objects_v2").paginate(Bucket=bucket.s3.bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def test_a_full_state_disk_ends_in_one_line_with_json_in_every_command(
    harness: Harness, small_disk: "SmallDisk"
) -> None:
    harness.emulator.behaviour.latency_s = 0.5
    harness.state_dir = small_disk.path / "state"
    harness.env["ACTOR_PIPELINE_STATE_DIR"] = str(harness.state_dir)
    made = harness.generate().wait()  # the instance and journal exist, as on a machine in use
    assert made.code == 0, made.describe()
    harness.shot_record_path(harness.manifest()["images"][3]["shot_id"]).unlink()  # type: ignore[index]
    filler = small_disk.fill()

    for command in (harness.generate, harness.retry_failed, harness.status):
        finished = command().wait()
        finished.assert_ended_cleanly(1)
        assert str(harness.state_dir) in finished.message and "space" in finished.message, finished.describe()
        result = finished.json()
        assert "failed" in result and "cost_usd" in result, finished.describe()

    filler.unlink()
    rerun = harness.generate().wait()
    rerun.assert_ended_cleanly(0, with_message=False)
    harness.assert_paid_once_and_stored()

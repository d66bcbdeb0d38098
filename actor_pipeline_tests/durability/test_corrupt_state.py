"""Issue 9, row 9: a truncated registration or a garbled shot record. The error names the file
and the fix; a record is rebuilt from the stored image's metadata without paying again."""

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actor_pipeline_tests.durability.harness import Harness


def test_a_truncated_registration_is_exit_3_naming_the_file_and_the_fix(harness: "Harness", made_set: Path) -> None:
    harness.start_from(made_set)
    raw = harness.registration_path.read_bytes()
    harness.registration_path.write_bytes(raw[: len(raw) // 2])  # a write cut short

    for command in (harness.status, harness.retry_failed):
        finished = command().wait()
        finished.assert_ended_cleanly(3)  # our state, not the user's input
        assert f"_registry/actors/{harness.actor}.json" in finished.message, finished.describe()
        assert re.search(r"(?i)generate|delete|remove|restore|re-?register", finished.message), finished.describe()
    assert harness.emulator.account.counters().predictions_created == harness.shots


def test_a_garbled_shot_record_is_rebuilt_from_the_stored_image_at_no_cost(harness: "Harness", made_set: Path) -> None:
    harness.emulator.behaviour.latency_s = 0.5
    harness.start_from(made_set)
    before = harness.manifest()
    assert before is not None
    shot = before["images"][4]
    record = harness.shot_record_path(shot["shot_id"])
    assert record.is_file(), f"no shot record at {record}"
    record.write_text('{"shot_id": "' + shot["shot_id"] + '", "status": "succ')  # garbled

    rerun = harness.generate().wait()
    rerun.assert_ended_cleanly(0, with_message=False)
    harness.assert_paid_once_and_stored()
    after = harness.manifest()
    assert after is not None
    rebuilt = next(image for image in after["images"] if image["shot_id"] == shot["shot_id"])
    assert (rebuilt["prediction_id"], rebuilt["sha256"]) == (shot["prediction_id"], shot["sha256"])
    assert [i["sha256"] for i in after["images"]] == [i["sha256"] for i in before["images"]]

"""Issue 9, rows 4-6: storage that stops answering mid-run (S3 down for good or for 5 s, a full
disk under --out). Paid images wait in the spool; a rerun stores them without paying again."""

import re
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actor_pipeline_tests.durability.harness import Harness, SmallDisk
    from actor_pipeline_tests.support.s3 import FaultProxy

# Every shot in flight at once (whatever the default), so all 17 are paid for before storage fails.
ALL = ("--max-concurrency", "17")
# Storage down for good: give up on it after 5 s (botocore retrying once), not the default 30 s.
FAST_GIVE_UP = {"ACTOR_PIPELINE_STORAGE_OUTAGE_S": "5", "AWS_MAX_ATTEMPTS": "2"}


def test_s3_down_from_mid_run_exits_1_and_the_rerun_stores_what_was_paid_for(
    s3_harness: "Harness", fault_proxy: "FaultProxy"
) -> None:
    # Eight images stored at ~3 s, the other nine end at ~15 s: on a loaded machine, storing the eight
    # can take several seconds, and the nine must still be in flight when S3 goes down.
    s3_harness.stagger(first=8, slow_s=15.0)
    s3_harness.env.update(FAST_GIVE_UP)
    first = s3_harness.generate(*ALL)
    s3_harness.wait_images(8, first)
    fault_proxy.down = True
    assert len(s3_harness.images()) < s3_harness.shots, "S3 went down after the set was stored: nothing to test"

    failed = first.wait()
    failed.assert_ended_cleanly(1)  # an outage is not bad input (2)
    assert isinstance(failed.json(), dict)
    assert re.search(r"(?i)\bre-?run", failed.message), f"the message does not say to rerun\n{failed.describe()}"
    paid_before_rerun = s3_harness.settled().paid

    fault_proxy.down = False
    rerun = s3_harness.generate(*ALL).wait()
    rerun.assert_ended_cleanly(0, with_message=False)
    counters = s3_harness.assert_paid_once_and_stored()
    assert counters.paid == paid_before_rerun, "the rerun paid again for images the first run had paid for"


def test_s3_down_for_5_s_mid_run_loses_no_paid_image(s3_harness: "Harness", fault_proxy: "FaultProxy") -> None:
    s3_harness.stagger(first=8, slow_s=5.0)  # the other nine end, and want storing, during the outage
    first = s3_harness.generate(*ALL)
    s3_harness.wait_images(8, first)
    with fault_proxy.outage():
        assert len(s3_harness.images()) < s3_harness.shots, "S3 went down after the set was stored: nothing to test"
        time.sleep(5)  # the outage itself, not a wait for a condition

    finished = first.wait()
    if finished.code != 0:  # the run may bridge the gap, or end incomplete and leave it to a rerun
        finished.assert_ended_cleanly(1)
        assert isinstance(finished.json(), dict)
        rerun = s3_harness.generate(*ALL).wait()
        rerun.assert_ended_cleanly(0, with_message=False)
    else:
        finished.assert_ended_cleanly(0, with_message=False)
    s3_harness.assert_paid_once_and_stored()


def test_a_full_disk_under_out_exits_1_with_json_and_the_rerun_completes(
    disk_harness: "Harness", small_disk: "SmallDisk"
) -> None:
    disk_harness.stagger(first=8, slow_s=6.0)  # the other nine end after the disk is full
    disk_harness.env.update(FAST_GIVE_UP)
    first = disk_harness.generate(*ALL)
    disk_harness.wait_images(8, first)
    filler = small_disk.fill()
    assert len(disk_harness.images()) < disk_harness.shots, "the disk filled after the set was stored: nothing to test"

    failed = first.wait()
    failed.assert_ended_cleanly(1, with_message=False)
    assert isinstance(failed.json(), dict)  # exit 1 promises the JSON result on stdout

    filler.unlink()
    rerun = disk_harness.generate(*ALL).wait()
    rerun.assert_ended_cleanly(0, with_message=False)
    disk_harness.assert_paid_once_and_stored()

"""Issue 9, row 7: outputs whose download answers 503 forever. One deadline per shot covers
create, polling, download and store, and retries do not multiply across layers."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actor_pipeline_tests.durability.harness import Harness

SHOT_TIMEOUT_S = 12  # a prediction takes 3 s: ample for one shot, short for a test
# Download attempts one shot may make within its deadline: a handful, not the client's 10 inside our 4.
MAX_DOWNLOADS_PER_SHOT = 8
ARGS = ("--shot-timeout", str(SHOT_TIMEOUT_S), "--max-concurrency", "17")  # all at once: one deadline in all


def test_outputs_that_never_download_end_in_bounded_time_and_are_fetched_later_without_paying_again(
    harness: "Harness",
) -> None:
    harness.fail_downloads_forever()
    # The deadline plus start-up and finishing; the run took 439 s before.
    failed = harness.generate(*ARGS).wait(SHOT_TIMEOUT_S + 45)
    failed.assert_ended_cleanly(1, with_message=False)
    assert isinstance(failed.json(), dict)
    counters = harness.settled()
    assert counters.paid == harness.shots and counters.predictions_created == harness.shots, harness.summary(counters)
    assert counters.download_requests <= MAX_DOWNLOADS_PER_SHOT * harness.shots, (
        f"{counters.download_requests} download requests for {harness.shots} outputs"
    )

    harness.clear_download_faults()
    rerun = harness.generate(*ARGS).wait()  # the outputs are within their hour: downloaded, not regenerated
    rerun.assert_ended_cleanly(0, with_message=False)
    harness.assert_paid_once_and_stored()

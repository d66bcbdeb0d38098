"""Issue 9, rows 1-3 and 8: the CLI killed, stopped by a signal, or run twice at once; then rerun.
In every case each shot is paid once, every paid image is stored, and the ledger equals the bill."""

import re
import signal
import socket
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from actor_pipeline_tests.durability.harness import Harness

# Eight at once, so that "8 predictions in flight" is a moment the test can catch and the
# remaining nine are not created yet.
EIGHT = ("--max-concurrency", "8")


def test_kill_9_with_8_in_flight_then_the_same_command_pays_each_shot_once(harness: "Harness") -> None:
    first = harness.generate(*EIGHT)
    harness.wait_in_flight(8, first)
    first.kill_group(signal.SIGKILL)
    assert first.wait(10).code == -signal.SIGKILL

    rerun = harness.generate(*EIGHT).wait()  # the eight orphans are adopted, not paid again
    rerun.assert_ended_cleanly(0, with_message=False)
    assert rerun.json()["total_training_images"] == harness.shots
    harness.assert_paid_once_and_stored()


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM-143", "SIGINT-130"]
)
def test_a_stop_signal_with_8_in_flight_exits_cleanly_and_the_rerun_adopts_them(
    harness: "Harness", signum: signal.Signals, code: int
) -> None:
    first = harness.generate(*EIGHT)
    harness.wait_in_flight(8, first)
    at_signal = harness.emulator.account.counters()
    if signum == signal.SIGINT:
        first.kill_group(signal.SIGINT)  # Ctrl-C: the terminal signals the whole foreground group
    else:
        first.send(signal.SIGTERM)  # kill, systemd, docker stop: the process itself
    stopped = first.wait(30)  # bounded: stopping must not wait for the set to finish
    stopped.assert_ended_cleanly(code)
    assert re.search(r"(?i)sig(term|int)|interrupt|stop|rerun|resume", stopped.message), stopped.describe()
    after = harness.emulator.account.counters()
    assert after.predictions_created == at_signal.predictions_created, "a prediction was created after the signal"
    assert after.cancel_requests == 0, "created predictions are left for the rerun to adopt, not canceled"

    rerun = harness.generate(*EIGHT).wait()
    rerun.assert_ended_cleanly(0, with_message=False)
    harness.assert_paid_once_and_stored()


def test_two_generates_for_one_actor_started_together_make_it_once(harness: "Harness") -> None:
    runs = [harness.generate(), harness.generate()]
    finished = [run.wait() for run in runs]
    report = "\n\n".join(f.describe() for f in finished)
    assert sorted(f.code for f in finished) in ([0, 0], [0, 75]), report  # the second waits, or leaves
    for run, result, other in zip(runs, finished, reversed(runs), strict=True):
        if result.code == 75:
            result.assert_ended_cleanly(75)
            # One line naming who holds the actor: the other CLI, on this machine.
            assert str(other.pid) in result.message and socket.gethostname() in result.message, report
        else:
            result.assert_ended_cleanly(0, with_message=False)
    harness.assert_paid_once_and_stored()


def test_kill_9_after_8_images_were_stored_then_retry_failed_completes_the_set(harness: "Harness") -> None:
    first = harness.generate(*EIGHT)
    harness.wait_images(8, first)
    first.kill_group(signal.SIGKILL)
    first.wait(10)
    assert len(harness.images()) < harness.shots, "the set was complete before the kill: nothing to test"

    retried = harness.retry_failed().wait()  # the shot "in progress" with nobody making it is resumable
    retried.assert_ended_cleanly(0, with_message=False)
    harness.assert_paid_once_and_stored()
    status = harness.status().wait()
    assert status.code == 0, status.describe()  # status exits 1 only while the set is incomplete

"""Stop requests: a SIGINT or SIGTERM asks every running generation in the process to stop.

A stop closes the gate for new predictions at once. Predictions already created are left
running at Replicate, not canceled: their ids are in the shot journal, so the next run adopts
them and pays nothing more, while canceling a nearly finished image would throw away what is
already being paid for. Then the work ends with the journal consistent and the caller raises
``Interrupted``.

The CLI installs the handlers in its main thread and does the work in another thread (so that
Dagster's own interrupt handling never swallows the signal); code running in the main thread
itself (the Python API, a Dagster run worker) installs them around generation with
``handle_signals``.
"""

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_lock = threading.Lock()
_requested: list[int] = []
_listeners: list[Callable[[], None]] = []


def request(signum: int) -> None:
    """Ask every generation of this process to stop (safe to call from a signal handler)."""
    with _lock:
        _requested.append(signum)
        listeners = list(_listeners)
    for listener in listeners:
        listener()


def requested() -> int | None:
    """The first stop signal received, if any."""
    with _lock:
        return _requested[0] if _requested else None


def times_requested() -> int:
    with _lock:
        return len(_requested)


def reset() -> None:
    """Forget earlier stop requests (a new command in a long-lived process starts afresh)."""
    with _lock:
        _requested.clear()


@contextmanager
def listening(callback: Callable[[], None]) -> Iterator[None]:
    """Call ``callback`` (from whatever thread handles the signal) when a stop is requested;
    at once if one already was."""
    with _lock:
        _listeners.append(callback)
        already = bool(_requested)
    try:
        if already:
            callback()
        yield
    finally:
        with _lock:
            _listeners.remove(callback)


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    request(signum)


@contextmanager
def handle_signals() -> Iterator[None]:
    """In the main thread, turn SIGINT and SIGTERM into stop requests for the duration, then put
    the previous handlers back. Elsewhere (signals are delivered to the main thread only) this
    does nothing: whoever owns the main thread decides."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, _on_signal)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

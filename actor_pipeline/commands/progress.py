"""The CLI's progress lines: the package's INFO log records, timed, on stderr.

A module of its own because the runner's log calls reach this handler from deep in a run: kept
out of ``cli``, a run's way passes the CLI's module once, on the way in and out.
"""

import logging
import sys


class _ProgressHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


def log_progress_to_stderr() -> None:
    """Send the package's INFO records to stderr, once per process however often it is called."""
    package_logger = logging.getLogger("actor_pipeline")
    if not any(isinstance(h, _ProgressHandler) for h in package_logger.handlers):
        handler = _ProgressHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
        package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)

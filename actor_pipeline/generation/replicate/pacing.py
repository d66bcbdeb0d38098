"""Pacing of prediction creates under Replicate's per-account rate limit."""

import asyncio
import threading
import time


class CreatePacer:
    """Lets ``burst`` creates go at once (Replicate tolerates short bursts, and an actor's whole
    set then starts together), spaces the rest at ``per_minute``, and holds them all back after
    a 429. A generic cell rate algorithm: ``_due`` is when the next create would be due at the
    steady rate; a create may go up to ``burst - 1`` intervals before it is due.

    One pacer serves every actor of a backend, whatever event loop each runs in, so its state is
    guarded by a thread lock (held only for arithmetic, never across an ``await``). No library
    fits that: aiolimiter's limiter must not be shared across event loops, and neither it nor
    pyrate-limiter nor limits can hold every waiting caller back for the delay a 429 names.
    """

    def __init__(self, per_minute: float, burst: int = 1) -> None:
        self._interval_s = 60.0 / per_minute
        self._early_s = (burst - 1) * self._interval_s
        self._lock = threading.Lock()
        self._due = 0.0
        self._resume_at = 0.0

    async def acquire(self) -> None:
        """Wait for this caller's turn to send a create."""
        while True:
            with self._lock:
                now = time.monotonic()
                slot = max(now, self._due - self._early_s, self._resume_at)
                self._due = max(self._due, slot) + self._interval_s
            await asyncio.sleep(slot - now)
            # A 429 seen by another shot while this one slept pushes it behind the pause.
            with self._lock:
                if time.monotonic() >= self._resume_at:
                    return

    def pause(self, seconds: float) -> None:
        """Hold every create back for ``seconds``: a 429 means the account's budget is spent."""
        with self._lock:
            self._resume_at = max(self._resume_at, time.monotonic() + seconds)

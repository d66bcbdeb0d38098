"""Pacing of prediction creates and polls under Replicate's per-account rate limits."""

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


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


class ReadPace:
    """Spaces the polls of the predictions in flight so that the account's reads (Replicate:
    3,000 a minute, shared by every process polling with the token) are not used up. Each answer
    to a read says how many are left in the window (``ratelimit-remaining``), whoever spent them;
    the polls then spread what is left, less a tenth of the limit kept for lists, cancels and
    uploads, over the next ``spread_s``: ``interval = in flight x spread_s / spare``, never
    shorter than the configured poll interval nor longer than ``max_interval_s``.

    With one actor polling (17 in flight, 1 s apart, about 1,000 reads a minute) nothing changes;
    with many processes polling at once the intervals grow as the window fills, and the account
    settles below its limit instead of being answered 429 (which holds every poll back for as
    long as the answer names). Shared by a backend's sessions, guarded like ``CreatePacer``.
    """

    def __init__(self, per_minute: int, spread_s: float = 30.0, max_interval_s: float = 10.0) -> None:
        self._reserve = per_minute // 10
        self._spread_s, self._max_interval_s = spread_s, max_interval_s
        self._lock = threading.Lock()
        self._in_flight = 0
        self._remaining: tuple[int, float] | None = None  # (reads left, when Replicate said so)

    def observe(self, remaining: int) -> None:
        """Note what an answer to a read said was left of the window."""
        with self._lock:
            self._remaining = (remaining, time.monotonic())

    @contextmanager
    def polling(self) -> Iterator[None]:
        """Count one prediction in flight while the block polls it."""
        with self._lock:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def interval(self, base_s: float) -> float:
        """Seconds until the next poll of one prediction in flight."""
        with self._lock:
            # A minute-old figure says nothing of the window now: those reads have left it.
            if self._remaining is None or time.monotonic() - self._remaining[1] > 60:
                return base_s
            spare = self._remaining[0] - self._reserve
            if spare <= 0:
                return self._max_interval_s
            return min(self._max_interval_s, max(base_s, self._in_flight * self._spread_s / spare))

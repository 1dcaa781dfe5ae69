"""How many migrations a host runs at once, out and in (Vdsm's semaphores, made cancellable).

Outgoing: a migration waits for a free slot (and gives up when cancelled). Incoming: the
destination never waits -- a full host answers `migrateLimit` and the source retries later.
The limit of one acquisition may be lowered by the caller (VM.migrate's outgoingLimit /
incomingLimit): a slot is granted only while fewer than min(host limit, caller limit) are taken.
"""
from __future__ import annotations

import os
import threading

DEFAULT_MAX_OUTGOING = 2
DEFAULT_MAX_INCOMING = 2


def default_outgoing_limit(cores: int | None = None, maximum: int = DEFAULT_MAX_OUTGOING) -> int:
    """min(max, cores), at least 1 (Vdsm: max_outgoing_migrations bounded by the CPU count)."""
    cores = cores if cores is not None else (os.cpu_count() or 1)
    return max(1, min(maximum, cores))


class MigrationSlots:
    """A counting limit whose acquisitions can carry their own, lower limit."""

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.limit = limit
        self._taken = 0
        self._cond = threading.Condition()

    @property
    def taken(self) -> int:
        with self._cond:
            return self._taken

    def _effective(self, limit: int | None) -> int:
        return min(self.limit, limit) if limit else self.limit

    def try_acquire(self, limit: int | None = None) -> bool:
        """Take a slot if one is free now; never waits."""
        with self._cond:
            if self._taken >= self._effective(limit):
                return False
            self._taken += 1
            return True

    def acquire(self, cancelled: threading.Event, limit: int | None = None, poll: float = 0.2) -> bool:
        """Wait for a slot; False if `cancelled` is set first."""
        with self._cond:
            while self._taken >= self._effective(limit):
                if cancelled.is_set():
                    return False
                self._cond.wait(poll)
            if cancelled.is_set():
                return False
            self._taken += 1
            return True

    def release(self) -> None:
        with self._cond:
            if self._taken <= 0:
                raise RuntimeError("released a migration slot that was not taken")
            self._taken -= 1
            self._cond.notify_all()

"""Wake REST long polls when the orchestrator has written a migration's record.

The orchestrator bumps a migration's counter after each committed write of its record; a
request waiting for a change (GET /api/migrations/{id}/wait) takes the counter before reading
the record and, when the record holds nothing new, sleeps until the counter moves or its
timeout passes. Taking the counter before the read means no write can slip between the read
and the sleep unnoticed.
"""
from __future__ import annotations

import threading

from ferry.common.change_counter import ChangeCounter


class MigrationChanges:
    """One ChangeCounter per migration, so a write wakes only that migration's waiters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, ChangeCounter] = {}

    def _counter(self, migration_id: str) -> ChangeCounter:
        with self._lock:
            return self._counters.setdefault(migration_id, ChangeCounter())

    def count(self, migration_id: str) -> int:
        with self._lock:
            counter = self._counters.get(migration_id)
        return counter.value if counter else 0

    def bump(self, migration_id: str) -> None:
        self._counter(migration_id).bump()

    def wait_past(self, migration_id: str, seen: int, timeout: float) -> bool:
        """True once the counter moved past `seen`, False after `timeout` s without a write."""
        return self._counter(migration_id).wait_past(seen, timeout) != seen

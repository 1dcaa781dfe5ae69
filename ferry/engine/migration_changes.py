"""Wake REST long polls when the orchestrator has written a migration's record.

The orchestrator bumps a migration's counter after each committed write of its record; a
request waiting for a change (GET /api/migrations/{id}/wait) takes the counter before reading
the record and, when the record holds nothing new, sleeps until the counter moves or its
timeout passes. Taking the counter before the read means no write can slip between the read
and the sleep unnoticed.
"""
from __future__ import annotations

import threading


class MigrationChanges:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._counts: dict[str, int] = {}

    def count(self, migration_id: str) -> int:
        with self._cond:
            return self._counts.get(migration_id, 0)

    def bump(self, migration_id: str) -> None:
        with self._cond:
            self._counts[migration_id] = self._counts.get(migration_id, 0) + 1
            self._cond.notify_all()

    def wait_past(self, migration_id: str, seen: int, timeout: float) -> bool:
        """True once the counter moved past `seen`, False after `timeout` s without a write."""
        with self._cond:
            return self._cond.wait_for(lambda: self._counts.get(migration_id, 0) != seen, timeout)

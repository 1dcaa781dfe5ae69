"""Wake REST long polls when the orchestrator has written a migration's record.

The orchestrator bumps a migration's counter after each committed write of its record; a
request waiting for a change (GET /api/migrations/{id}/wait) takes the counter before reading
the record and, when the record holds nothing new, sleeps until the counter moves or its
timeout passes. Taking the counter before the read means no write can slip between the read
and the sleep unnoticed. A waiter that must not hold a thread (the REST long poll, an asyncio
task) registers a listener instead (`listen`), called after every bump.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

from ferry.common.change_counter import ChangeCounter


class MigrationChanges:
    """One ChangeCounter per migration, so a write wakes only that migration's waiters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, ChangeCounter] = {}
        self._listeners: dict[str, list[Callable[[], None]]] = {}

    def _counter(self, migration_id: str) -> ChangeCounter:
        with self._lock:
            return self._counters.setdefault(migration_id, ChangeCounter())

    def count(self, migration_id: str) -> int:
        with self._lock:
            counter = self._counters.get(migration_id)
        return counter.value if counter else 0

    def bump(self, migration_id: str) -> None:
        self._counter(migration_id).bump()
        with self._lock:
            listeners = list(self._listeners.get(migration_id, ()))
        for listener in listeners:
            listener()

    def listen(self, migration_id: str, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` (from the writer's thread, so it must be quick) after each bump of the
        migration's counter; returns the function that stops it."""
        with self._lock:
            self._listeners.setdefault(migration_id, []).append(listener)

        def stop() -> None:
            with self._lock:
                found = self._listeners.get(migration_id, [])
                if listener in found:
                    found.remove(listener)
                if not found:
                    self._listeners.pop(migration_id, None)
        return stop

    def wait_past(self, migration_id: str, seen: int, timeout: float) -> bool:
        """True once the counter moved past `seen`, False after `timeout` s without a write."""
        return self._counter(migration_id).wait_past(seen, timeout) != seen

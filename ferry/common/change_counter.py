"""A counter bumped on every change, that long polls block on until it moves.

The agent's VM.getMigrationStatus (`waitForChange`) and the engine's
GET /api/migrations/{id}/wait both answer "as soon as something changed": the writer bumps
after each change, a waiter takes the value before reading and then sleeps until it differs.
"""
from __future__ import annotations

import threading


class ChangeCounter:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._value = 0

    @property
    def value(self) -> int:
        with self._cond:
            return self._value

    def bump(self) -> None:
        with self._cond:
            self._value += 1
            self._cond.notify_all()

    def wait_past(self, seen: int, timeout: float) -> int:
        """Block until the value differs from `seen` or `timeout` s pass; the value then."""
        with self._cond:
            self._cond.wait_for(lambda: self._value != seen, timeout)
            return self._value

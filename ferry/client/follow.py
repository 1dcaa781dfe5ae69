"""Following a migration through the engine until it ends (the CLI's --wait, the benchmarks).

One loop, no output of its own: the caller sees every new record through `on_update`.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from ferry.common.errors import InvalidInput, NotFound, OperationFailed

FINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "ABORTED")
POLL_S = 0.5          # between plain GETs, with an engine that has no long poll
LONG_POLL_S = 5.0     # the longest one GET /api/migrations/{id}/wait is held


def wait_for(client, migration: dict, *, on_update: Callable[[dict], None] | None = None,
             timeout: float | None = None, poll_s: float = POLL_S) -> dict:
    """Follow the migration until it ends (or `timeout` s); returns its last record.

    Long-polls GET /api/migrations/{id}/wait, which answers as soon as the record changes, so
    the end is seen at once; an engine without that route is polled every `poll_s` instead."""
    deadline = None if timeout is None else time.monotonic() + timeout
    long_poll = True
    while migration["state"] not in FINAL:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        if long_poll:
            try:
                migration = client.get(f"/api/migrations/{migration['id']}/wait",
                                       params={"since": migration.get("updated_at"),
                                               "timeout": min(LONG_POLL_S, left) if left is not None
                                               else LONG_POLL_S})
            except (NotFound, InvalidInput, OperationFailed):
                long_poll = False      # an older engine: plain polling (a real error shows below)
                continue
        else:
            time.sleep(poll_s if left is None else min(poll_s, left))
            migration = client.get(f"/api/migrations/{migration['id']}")
        if on_update:
            on_update(migration)
    return migration

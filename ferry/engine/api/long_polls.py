"""REST long polls that hold no request thread, and how many one token may hold open.

GET /api/migrations/{id}/wait used to sleep in a worker thread: 60 readonly long polls took all
40 of them and GET /api/health then took 8.7 s (issue 11). Now the route is async: it waits on
an asyncio future that the orchestrator's write wakes from its own thread
(`MigrationChanges.listen` -> `loop.call_soon_threadsafe`), so an open long poll costs a
coroutine, not a thread; only the record's short database read runs in the thread pool, and
`SharedReads` makes that one read per change for all the polls of a migration: a write wakes
every poll waiting on it, and 200 reads of the same record queued in the 40-thread pool (and
behind the GIL) would delay every other request of the engine.

Each token may hold `per_token` long polls open at once (default DEFAULT_PER_TOKEN); the next
one is answered 429 at once, in the API's error shape, naming the limit, with Retry-After.
"""
from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool

from ferry.engine.api.errors import error_body
from ferry.engine.migration_changes import MigrationChanges

DEFAULT_PER_TOKEN = 64


class LongPollLimit:
    """Open long polls per token name."""

    def __init__(self, per_token: int = DEFAULT_PER_TOKEN):
        if per_token < 1:
            raise ValueError("per_token must be at least 1")
        self.per_token = per_token
        self._lock = threading.Lock()
        self._open: Counter[str] = Counter()

    def open(self, token: str) -> int:
        with self._lock:
            return self._open[token]

    @contextmanager
    def slot(self, token: str) -> Iterator[None]:
        """Hold one of the token's long-poll slots for the block; 429 when none is free."""
        with self._lock:
            if self._open[token] >= self.per_token:
                raise too_many(token, self.per_token)
            self._open[token] += 1
        try:
            yield
        finally:
            with self._lock:
                self._open[token] -= 1
                if self._open[token] <= 0:
                    del self._open[token]


class SharedReads:
    """One database read per (migration, change counter) in flight, awaited by every long poll
    that saw that counter. A read started after the counter was seen reflects every write
    counted up to it (writers commit, then bump), so sharing it loses no change. Used from the
    event loop only."""

    def __init__(self) -> None:
        self._inflight: dict[tuple[str, int], asyncio.Future] = {}

    def in_flight(self) -> int:
        return len(self._inflight)

    async def read(self, migration_id: str, seen: int, fn: Callable[[], dict]) -> dict:
        key = (migration_id, seen)
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(run_in_threadpool(fn))
            self._inflight[key] = future
            future.add_done_callback(lambda _f: self._inflight.pop(key, None))
        return await asyncio.shield(future)   # one poll going away does not cancel the others' read


def too_many(token: str, limit: int) -> HTTPException:
    message = (f"token {token!r} already holds {limit} open long polls (GET /api/migrations/{{id}}/wait), "
               "the most one token may; wait for one to answer, or poll GET /api/migrations/{id}")
    return HTTPException(status_code=429, detail=error_body(message, "token", f"more than {limit} open long polls")
                         ["detail"], headers={"Retry-After": "1"})


async def wait_past(changes: MigrationChanges, migration_id: str, seen: int, timeout: float) -> bool:
    """True once the migration's counter moved past `seen`, False after `timeout` s; no thread waits."""
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()
    stop = changes.listen(migration_id, lambda: loop.call_soon_threadsafe(woken.set))
    try:
        if changes.count(migration_id) != seen:      # a write between the caller's read and listen()
            return True
        try:
            await asyncio.wait_for(woken.wait(), timeout)
        except TimeoutError:
            return False
        return True
    finally:
        stop()

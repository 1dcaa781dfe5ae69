"""Cancels asked of an engine that does not follow the migration (several engines, issue 18).

With several engines on one PostgreSQL a client may send POST /api/migrations/{id}/cancel to
any of them, and a drain's runner may abort a migration another engine follows. The engine that
gets the cancel but does not follow the migration writes the request on the migration's record
(`cancel_requested_by/at`); every REQUEST_POLL_S the engine that follows it reads the requests
of its own migrations (one indexed query) and cancels as if asked itself, clearing the request
in the same fenced write that marks the record CANCELLING. If the owner is dead, the engine that
takes the migration over finds the request as soon as it follows it. The asking engine waits
(at most FORWARD_WAIT_S, the worst takeover plus a margin) until the record shows the cancel
carried out -- CANCELLING, or ended -- and answers with that record: the real state, not a
guess. oVirt has one engine, so there is nothing of the kind to match.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ferry.common.errors import Conflict, FerryError
from ferry.engine.db.records import MigrationRecord, MigrationState
from ferry.engine.lease_rules import worst_takeover_s
from ferry.engine.ownership import Fenced

log = logging.getLogger("ferry.engine.cancel_requests")

REQUEST_POLL_S = 0.5
FORWARD_WAIT_S = worst_takeover_s() + 3.0
_NOT_YET = (MigrationState.PENDING, MigrationState.RUNNING)


class CancelRequests:
    """The hand-over of cancels between engines, for one orchestrator."""

    def __init__(self, orchestrator: Any, *, poll_s: float = REQUEST_POLL_S, wait_s: float = FORWARD_WAIT_S):
        self.orchestrator = orchestrator
        self.db = orchestrator.db
        self.poll_s = poll_s
        self.wait_s = wait_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.orchestrator.ownership.shared or self._thread is not None:
            return   # one engine (SQLite): every cancel is its own
        self._thread = threading.Thread(target=self._loop, name="cancel-requests", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # ---- the asking engine -----------------------------------------------------------------------
    def forward(self, migration_id: str, user: str, *, wait: bool = True) -> MigrationRecord:
        """Leave the cancel for the engine that follows the migration; with `wait`, return the
        record once it shows the cancel carried out (or as it is after `wait_s`)."""
        with self.db.unit_of_work() as store:
            store.migrations.request_cancel(migration_id, user)
            record = store.migrations.get(migration_id)
        log.info("migration %s: cancel by %s handed to the engine that follows it", migration_id, user)
        deadline = time.monotonic() + self.wait_s
        while wait and record.state in _NOT_YET and time.monotonic() < deadline:
            time.sleep(0.1)
            with self.db.unit_of_work() as store:
                record = store.migrations.get(migration_id)
        if wait and record.state in _NOT_YET:
            log.warning("migration %s: the cancel is not carried out after %.0f s; it stays asked for "
                        "(whoever follows the migration next carries it out)", migration_id, self.wait_s)
        return record

    # ---- the owning engine -----------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - the next poll tries again
                log.exception("reading cancel requests failed")

    def run_once(self) -> list[str]:
        """Carry out the cancel requests of the migrations this engine follows; returns their ids."""
        followed = self.orchestrator.active_runs()
        if not followed or self.orchestrator.stopping:   # stopping: the requests stay for the next owner
            return []
        with self.db.unit_of_work() as store:
            asked = store.migrations.cancel_requests(followed)
        done = []
        for migration_id, user in sorted(asked.items()):
            try:
                self.orchestrator.cancel(migration_id, user=user, requested=True)
                done.append(migration_id)
                log.info("migration %s: cancel asked of another engine by %s carried out", migration_id, user)
            except Fenced:
                pass        # no longer ours: the new owner reads the request
            except Conflict as exc:   # it ended meanwhile: nothing to cancel
                log.info("migration %s: cancel request not carried out: %s", migration_id, exc)
                self._clear(migration_id)
            except FerryError as exc:
                log.warning("migration %s: cancel request failed: %s", migration_id, exc)
        return done

    def _clear(self, migration_id: str) -> None:
        with self.db.unit_of_work() as store:
            store.migrations.clear_cancel_request(migration_id)

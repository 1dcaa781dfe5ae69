"""Reading the event log as the REST API asks for it: the bounds of a follow (`after`) and a page.

Why a use case for a read: `after` comes from a client, and SQLite's and PostgreSQL's integers
are 64-bit, so a larger one is bad input naming the field, never a database error (a 500).
"""
from __future__ import annotations

from ferry.engine.db.records import EventRecord
from ferry.engine.db.store import Store
from ferry.engine.validation import MAX_ROW_ID, check_int, check_optional_int


def list_events(store: Store, *, vm: str | None = None, host: str | None = None, migration_id: str | None = None,
                after_id: int | None = None, limit: int = 100) -> list[EventRecord]:
    """The newest `limit` events matching, oldest first; after_id lets a caller follow."""
    check_optional_int("after", after_id, 0, MAX_ROW_ID)
    check_int("limit", limit, 1, MAX_ROW_ID)
    return store.events.list(vm=vm, host=host, migration_id=migration_id, after_id=after_id, limit=limit)

"""Per-request database session: one Store per request; handlers that write commit it."""
from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request

from ferry.engine.db import Store


def get_store(request: Request) -> Iterator[Store]:
    session = request.app.state.db.sessions()
    try:
        yield Store(session)
    finally:
        session.close()  # rolls back anything not committed

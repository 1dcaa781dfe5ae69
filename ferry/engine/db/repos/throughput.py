"""The host-pair throughput repository: what each succeeded migration reached between two hosts.

Why apart from the migration records: deleting a VM deletes its migrations (ON DELETE CASCADE),
and with them the history a host pair's forecast bandwidth is calibrated from. Rows name hosts
by name and the migration by id, with no foreign keys, so they outlive both.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ferry.engine.db import models as m
from ferry.engine.db.repos.base import now, utc


class ThroughputRepository:
    def __init__(self, session: Session):
        self.session = session

    def add(self, *, source: str, destination: str, connections: int, cap_mibs: int | None, mibs: float,
            migration_id: str) -> dict[str, Any]:
        row = m.PairThroughput(source=source, destination=destination, connections=int(connections or 0),
                               cap_mibs=cap_mibs, mibs=float(mibs), migration_id=migration_id, measured_at=now())
        self.session.add(row)
        self.session.flush()
        return _dict(row)

    def list(self, *, source: str, destination: str, limit: int = 1000) -> list[dict[str, Any]]:
        """The pair's samples in this direction, newest first."""
        q = (select(m.PairThroughput).where(m.PairThroughput.source == source,
                                            m.PairThroughput.destination == destination)
             .order_by(m.PairThroughput.measured_at.desc(), m.PairThroughput.id.desc()).limit(limit))
        return [_dict(r) for r in self.session.scalars(q)]


def _dict(row: m.PairThroughput) -> dict[str, Any]:
    return {"source": row.source, "destination": row.destination, "connections": row.connections,
            "capMiBs": row.cap_mibs, "mibs": row.mibs, "measuredAt": utc(row.measured_at).isoformat(),
            "migrationId": row.migration_id}

"""The events repository: the audit log (oVirt's event ids and texts, ferry.engine.audit)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ferry.engine import audit
from ferry.engine.db import models as m
from ferry.engine.db.records import EventRecord
from ferry.engine.db.repos.base import find_row, now, utc


class EventRepository:
    def __init__(self, session: Session):
        self.session = session

    def add(self, code: int, message: str, *, severity: str = "normal", vm: str | None = None,
            host: str | None = None, migration_id: str | None = None) -> EventRecord:
        row = m.Event(
            time=now(), severity=str(severity), code=int(code), message=message,
            vm_id=None if vm is None else find_row(self.session, m.Vm, vm, "vm").id,
            host_id=None if host is None else find_row(self.session, m.Host, host, "host").id,
            migration_id=migration_id,
        )
        self.session.add(row)
        self.session.flush()
        return _record(row)

    def record_audit(self, kind: audit.AuditType, *, vm: str | None = None, host: str | None = None,
                     migration_id: str | None = None, **fields: Any) -> EventRecord:
        """An oVirt audit event: its id, severity and text from ferry.engine.audit (`fields`
        fill the event's text template, so they vary by kind)."""
        message = audit.format_message(kind, vm=vm, **fields)
        return self.add(kind.code, message, severity=kind.severity.value, vm=vm, host=host,
                        migration_id=migration_id)

    def list(self, *, vm: str | None = None, host: str | None = None, migration_id: str | None = None,
             after_id: int | None = None, limit: int = 100) -> list[EventRecord]:
        """The newest `limit` events matching, oldest first; after_id lets a caller follow
        (the bounds are checked by services.events)."""
        # Following (after_id): the next ones, oldest first; otherwise the newest ones.
        q = select(m.Event).order_by(m.Event.id if after_id is not None else m.Event.id.desc()).limit(limit)
        if vm is not None:
            q = q.where(m.Event.vm_id == find_row(self.session, m.Vm, vm, "vm").id)
        if host is not None:
            q = q.where(m.Event.host_id == find_row(self.session, m.Host, host, "host").id)
        if migration_id is not None:
            q = q.where(m.Event.migration_id == migration_id)
        if after_id is not None:
            q = q.where(m.Event.id > after_id)
        rows = self.session.scalars(q).all()
        return [_record(r) for r in (rows if after_id is not None else reversed(rows))]


def _record(row: m.Event) -> EventRecord:
    return EventRecord(
        id=row.id, time=utc(row.time), severity=row.severity, code=row.code, message=row.message,
        vm=row.vm.name if row.vm else None, host=row.host.name if row.host else None,
        migration_id=row.migration_id,
    )

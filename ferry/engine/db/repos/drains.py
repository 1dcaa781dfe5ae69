"""The drains repository: one row per host maintenance request, with its VMs' items (JSON)."""
from __future__ import annotations

import uuid as uuidlib
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ferry.common.errors import NotFound
from ferry.engine.db import models as m
from ferry.engine.db.records import DRAIN_ACTIVE_STATES, DrainRecord, DrainState
from ferry.engine.db.repos.base import UNSET, Unset, as_enum, find_row, now, utc


class DrainRepository:
    def __init__(self, session: Session):
        self.session = session

    def create(self, host: str, *, order: str, reason: str, user: str, items: list[dict[str, Any]]) -> DrainRecord:
        row = m.Drain(id=str(uuidlib.uuid4()), host_id=find_row(self.session, m.Host, host).id,
                      state=DrainState.ACTIVE.value, order=order, reason=reason, user=user,
                      abort_running=False, items=items, created_at=now(), updated_at=now())
        self.session.add(row)
        self.session.flush()
        return _record(row)

    def get(self, drain_id: str) -> DrainRecord:
        row = self.session.get(m.Drain, drain_id)
        if row is None:
            raise NotFound("drain", drain_id)
        return _record(row)

    def latest(self, host: str) -> DrainRecord | None:
        """The host's newest drain (active or not), None when it never had one."""
        host_id = find_row(self.session, m.Host, host).id
        row = self.session.scalars(select(m.Drain).where(m.Drain.host_id == host_id)
                                   .order_by(m.Drain.created_at.desc()).limit(1)).first()
        return None if row is None else _record(row)

    def active(self) -> list[DrainRecord]:
        q = select(m.Drain).where(m.Drain.state.in_(DRAIN_ACTIVE_STATES)).order_by(m.Drain.created_at)
        return [_record(r) for r in self.session.scalars(q)]

    def update(self, drain_id: str, *, state: DrainState | str | Unset = UNSET,
               items: list[dict[str, Any]] | Unset = UNSET, abort_running: bool | Unset = UNSET,
               finished_at: datetime | None | Unset = UNSET) -> DrainRecord:
        row = self.session.get(m.Drain, drain_id)
        if row is None:
            raise NotFound("drain", drain_id)
        if state is not UNSET:
            row.state = as_enum(DrainState, state).value
        if items is not UNSET:
            row.items = [dict(i) for i in items]
        if abort_running is not UNSET:
            row.abort_running = bool(abort_running)
        if finished_at is not UNSET:
            row.finished_at = finished_at
        row.updated_at = now()
        self.session.flush()
        return _record(row)


def _record(row: m.Drain) -> DrainRecord:
    return DrainRecord(
        id=row.id, host=row.host.name, state=DrainState(row.state), order=row.order, reason=row.reason,
        user=row.user, abort_running=row.abort_running, items=[dict(i) for i in row.items or []],
        created_at=utc(row.created_at), updated_at=utc(row.updated_at), finished_at=utc(row.finished_at),
    )

"""The migrations repository: one record per migration request, with its plan, attempts and end."""
from __future__ import annotations

import uuid as uuidlib
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ferry.engine.db import models as m
from ferry.engine.db.records import MIGRATION_ACTIVE_STATES, MigrationRecord, MigrationState
from ferry.engine.db.repos.base import UNSET, Unset, as_enum, find_row, now, utc


class MigrationRepository:
    def __init__(self, session: Session):
        self.session = session

    def create(self, vm: str, *, source: str | None, destination: str | None,
               plan: dict[str, Any] | None = None,
               state: MigrationState | str = MigrationState.PENDING) -> MigrationRecord:
        row = m.Migration(
            id=str(uuidlib.uuid4()),
            vm_id=find_row(self.session, m.Vm, vm, "vm").id,
            source_host_id=self._host_id(source, "source"),
            destination_host_id=self._host_id(destination, "destination"),
            state=as_enum(MigrationState, state).value, progress=0, plan=plan,
            created_at=now(), updated_at=now(),
        )
        self.session.add(row)
        self.session.flush()
        return _record(row)

    def update(self, migration_id: str, *, state: MigrationState | str | Unset = UNSET,
               progress: int | Unset = UNSET, plan: dict[str, Any] | None | Unset = UNSET,
               result: dict[str, Any] | None | Unset = UNSET, error: str | None | Unset = UNSET,
               figures: dict[str, Any] | None | Unset = UNSET,
               attempts: list[dict[str, Any]] | None | Unset = UNSET,
               started_at: datetime | None | Unset = UNSET, finished_at: datetime | None | Unset = UNSET,
               source: str | None | Unset = UNSET, destination: str | None | Unset = UNSET) -> MigrationRecord:
        """Set what is given; `updated_at` moves on every update (long polls wait for it)."""
        row = find_row(self.session, m.Migration, migration_id)
        if destination is not UNSET:
            row.destination_host_id = self._host_id(destination, "destination")
        if source is not UNSET:
            row.source_host_id = self._host_id(source, "source")
        if progress is not UNSET:
            row.progress = int(progress)   # 0..100: the orchestrator's progress_percent
        if state is not UNSET:
            row.state = as_enum(MigrationState, state).value
        for key, value in (("plan", plan), ("result", result), ("error", error), ("figures", figures),
                           ("attempts", attempts), ("started_at", started_at), ("finished_at", finished_at)):
            if value is not UNSET:
                setattr(row, key, value)
        row.updated_at = now()
        self.session.flush()
        return _record(row)

    def get(self, migration_id: str) -> MigrationRecord:
        return _record(find_row(self.session, m.Migration, migration_id))

    def list(self, vm: str | None = None, active: bool | None = None, limit: int = 100) -> list[MigrationRecord]:
        q = select(m.Migration).order_by(m.Migration.created_at.desc(), m.Migration.id).limit(limit)
        if vm is not None:
            q = q.where(m.Migration.vm_id == find_row(self.session, m.Vm, vm, "vm").id)
        if active is True:
            q = q.where(m.Migration.state.in_(MIGRATION_ACTIVE_STATES))
        elif active is False:
            q = q.where(m.Migration.state.not_in(MIGRATION_ACTIVE_STATES))
        return [_record(r) for r in self.session.scalars(q)]

    def active_by_destination(self) -> dict[str, int]:
        """How many active migrations go to each host (by name); hosts with none are absent."""
        return dict(self.session.execute(
            select(m.Host.name, func.count(m.Migration.id))
            .join(m.Migration, m.Migration.destination_host_id == m.Host.id)
            .where(m.Migration.state.in_(MIGRATION_ACTIVE_STATES))
            .group_by(m.Host.name)).all())

    def request_cancel(self, migration_id: str, user: str) -> None:
        """A cancel for the engine that owns the migration (ferry.engine.orchestrator)."""
        row = find_row(self.session, m.Migration, migration_id)
        row.cancel_requested_by, row.cancel_requested_at = user, now()
        self.session.flush()

    def cancel_requests(self, migration_ids: list[str]) -> dict[str, str]:
        """Of these migrations, those with a cancel request still to carry out: id -> user."""
        if not migration_ids:
            return {}
        return dict(self.session.execute(
            select(m.Migration.id, m.Migration.cancel_requested_by)
            .where(m.Migration.cancel_requested_at.is_not(None), m.Migration.id.in_(migration_ids))).all())

    def clear_cancel_request(self, migration_id: str) -> None:
        row = find_row(self.session, m.Migration, migration_id)
        row.cancel_requested_by = row.cancel_requested_at = None
        self.session.flush()

    def _host_id(self, host: str | None, field: str) -> int | None:
        return None if host is None else find_row(self.session, m.Host, host, field).id


def _record(row: m.Migration) -> MigrationRecord:
    return MigrationRecord(
        id=row.id, vm=row.vm.name,
        source=row.source_host.name if row.source_host else None,
        destination=row.destination_host.name if row.destination_host else None,
        state=MigrationState(row.state), progress=row.progress, plan=row.plan, result=row.result,
        error=row.error, figures=row.figures, attempts=row.attempts,
        created_at=utc(row.created_at), started_at=utc(row.started_at),
        finished_at=utc(row.finished_at), updated_at=utc(row.updated_at),
    )

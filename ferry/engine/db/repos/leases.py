"""The leases repository: the SQL of work ownership between engines (ferry.engine.lease_rules).

On PostgreSQL a lease row is read with SELECT ... FOR UPDATE SKIP LOCKED, so two engines
claiming at once never wait on each other: the one that gets the row lock decides with the pure
rule, the other skips it (refused, "being claimed"). A missing row is inserted with ON CONFLICT
DO NOTHING, so of two engines creating the same lease only one succeeds. Expiries are computed
from the database's clock (clock_timestamp()), never an engine's.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from ferry.engine.db import models as m
from ferry.engine.lease_rules import Claim, ClaimOutcome, Lease, claim


class LeaseRepository:
    def __init__(self, session: Session):
        self.session = session
        self.postgres = session.get_bind().dialect.name == "postgresql"

    def now(self) -> datetime:
        """The database's clock (PostgreSQL), or this process's for SQLite (one engine)."""
        if self.postgres:
            return _utc(self.session.scalar(select(func.clock_timestamp())))
        return datetime.now(UTC)

    def get(self, kind: str, key: str, *, lock: bool = False, share: bool = False) -> Lease | None:
        """The lease row; `lock` takes it FOR UPDATE, `share` FOR SHARE (held to the commit: a
        claim, which skips locked rows, cannot take the lease over while a fenced write runs)."""
        q = select(m.WorkLease).where(m.WorkLease.kind == kind, m.WorkLease.key == key)
        if (lock or share) and self.postgres:
            q = q.with_for_update(read=share and not lock)
        row = self.session.scalars(q).first()
        return None if row is None else _lease(row)

    def claim(self, kind: str, key: str, engine_id: str, ttl_s: float) -> Claim:
        """Claim (or renew) one lease by the pure rule; refused at once if another engine is
        claiming it at this moment (its row is locked: SKIP LOCKED)."""
        q = select(m.WorkLease).where(m.WorkLease.kind == kind, m.WorkLease.key == key)
        if self.postgres:
            q = q.with_for_update(skip_locked=True)
        row = self.session.scalars(q).first()
        now = self.now()
        if row is None:
            if self.postgres and self._exists(kind, key):   # locked by a claimer: skipped, not waited for
                return Claim(ClaimOutcome.REFUSED, None, None, "another engine is claiming it right now")
            decision = claim(None, kind=kind, key=key, claimant=engine_id, now=now, ttl_s=ttl_s)
            if not self._insert(decision.lease, now):
                return Claim(ClaimOutcome.REFUSED, None, None, "another engine created it first")
            return decision
        decision = claim(_lease(row), kind=kind, key=key, claimant=engine_id, now=now, ttl_s=ttl_s)
        if decision.granted:
            row.owner, row.epoch, row.expires_at = decision.lease.owner, decision.lease.epoch, decision.lease.expires_at
            if decision.outcome is ClaimOutcome.TAKEN_OVER:
                row.acquired_at = now
            self.session.flush()
        return decision

    def renew_all(self, engine_id: str, ttl_s: float) -> dict[tuple[str, str], Lease]:
        """Push forward every lease `engine_id` still owns; returns them (a lease it no longer
        finds here was taken over: the caller stops acting on it)."""
        until = self.now() + timedelta(seconds=ttl_s)
        rows = self.session.execute(
            update(m.WorkLease).where(m.WorkLease.owner == engine_id).values(expires_at=until)
            .returning(m.WorkLease.kind, m.WorkLease.key, m.WorkLease.epoch, m.WorkLease.expires_at)).all()
        return {(k, key): Lease(k, key, engine_id, _utc(exp), epoch) for k, key, epoch, exp in rows}

    def claimable(self, kind: str, keys: Iterable[str], engine_id: str) -> list[str]:
        """Of `keys`, those whose lease is missing or expired and not `engine_id`'s."""
        keys = list(keys)
        if not keys:
            return []
        now = self.now()
        rows = {r.key: r for r in self.session.scalars(
            select(m.WorkLease).where(m.WorkLease.kind == kind, m.WorkLease.key.in_(keys)))}
        return [k for k in keys if k not in rows or (rows[k].owner != engine_id and _utc(rows[k].expires_at) <= now)]

    def owners(self, kind: str, keys: Iterable[str]) -> dict[str, Lease]:
        keys = list(keys)
        if not keys:
            return {}
        return {r.key: _lease(r) for r in self.session.scalars(
            select(m.WorkLease).where(m.WorkLease.kind == kind, m.WorkLease.key.in_(keys)))}

    def of_kind(self, kind: str) -> list[Lease]:
        return [_lease(r) for r in self.session.scalars(select(m.WorkLease).where(m.WorkLease.kind == kind))]

    def forget_expired(self, kind: str, older_than_s: float) -> int:
        """Delete leases of `kind` expired for longer than `older_than_s` (dead engines' rows)."""
        before = self.now() - timedelta(seconds=older_than_s)
        return int(self.session.execute(delete(m.WorkLease).where(
            m.WorkLease.kind == kind, m.WorkLease.expires_at < before)).rowcount or 0)

    def release(self, kind: str, key: str, engine_id: str) -> bool:
        done = self.session.execute(delete(m.WorkLease).where(
            m.WorkLease.kind == kind, m.WorkLease.key == key, m.WorkLease.owner == engine_id))
        return bool(done.rowcount)

    def release_all(self, engine_id: str) -> int:
        """An engine stopping cleanly lets its work go at once (no wait for the expiry)."""
        return int(self.session.execute(delete(m.WorkLease).where(m.WorkLease.owner == engine_id)).rowcount or 0)

    def _exists(self, kind: str, key: str) -> bool:
        return self.session.scalar(select(func.count()).select_from(m.WorkLease).where(
            m.WorkLease.kind == kind, m.WorkLease.key == key)) > 0

    def _insert(self, lease: Lease, now: datetime) -> bool:
        values = dict(kind=lease.kind, key=lease.key, owner=lease.owner, epoch=lease.epoch,
                      expires_at=lease.expires_at, acquired_at=now)
        if self.postgres:
            made = self.session.execute(pg_insert(m.WorkLease).values(**values)
                                        .on_conflict_do_nothing(index_elements=["kind", "key"])
                                        .returning(m.WorkLease.key)).first()
            return made is not None
        if self.session.get(m.WorkLease, (lease.kind, lease.key)) is not None:
            return False
        self.session.add(m.WorkLease(**values))
        self.session.flush()
        return True


def _utc(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _lease(row: m.WorkLease) -> Lease:
    return Lease(row.kind, row.key, row.owner, _utc(row.expires_at), row.epoch)

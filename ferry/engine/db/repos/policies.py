"""The policies repository: the read-only built-ins and the custom policies in the database."""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from ferry.common.errors import Conflict, InvalidInput, NotFound
from ferry.engine.db import models as m
from ferry.engine.db.repos.base import now
from ferry.engine.policies import (
    BUILTIN_BY_ID,
    BUILTIN_POLICIES,
    MigrationPolicy,
    find_policy,
    policy_to_dict,
)
from ferry.protocol.schedule import Action, StallingStep


class PolicyRepository:
    def __init__(self, session: Session):
        self.session = session

    def list(self) -> list[MigrationPolicy]:
        """The built-ins (in oVirt's order), then the custom ones by name."""
        return list(BUILTIN_POLICIES) + self.customs()

    def customs(self) -> list[MigrationPolicy]:
        """The custom policies, by name."""
        return [_policy(r) for r in self.session.scalars(select(m.Policy).order_by(m.Policy.name))]

    def get(self, ref: str, field: str = "policy") -> MigrationPolicy:
        """A policy by id or by name (case-insensitive), built-in or custom; an unknown one is
        bad input in `field` (the policy is referred to from a cluster, a VM, a plan)."""
        try:
            return find_policy(ref, self.customs(), field=field)
        except NotFound:
            names = ", ".join(repr(p.name) for p in self.list())
            raise InvalidInput(field, f"unknown policy {ref!r} (known: {names})") from None

    def find(self, ref: str) -> MigrationPolicy:
        """A policy by id or name; a missing one is NotFound (for /policies/{ref})."""
        return find_policy(ref, self.customs())

    def name_of(self, policy_id: str | None) -> str | None:
        if policy_id is None:
            return None
        if policy_id in BUILTIN_BY_ID:
            return BUILTIN_BY_ID[policy_id].name
        row = self.session.get(m.Policy, policy_id)
        return row.name if row else None

    def add(self, policy: MigrationPolicy) -> MigrationPolicy:
        """Store a new custom policy (built and checked by services.policies)."""
        row = m.Policy(id=policy.id, created_at=now())
        _fill(row, policy)
        self.session.add(row)
        self.session.flush()
        return policy

    def replace(self, policy: MigrationPolicy) -> MigrationPolicy:
        """Store a custom policy's new contents under its id; built-ins are not stored."""
        row = self.session.get(m.Policy, policy.id)
        if row is None:
            raise NotFound("policy", policy.id)
        _fill(row, policy)
        self.session.flush()
        return policy

    def delete(self, ref: str) -> None:
        policy = self.find(ref)
        if policy.builtin:
            raise Conflict(f"policy {policy.name!r} is built-in and cannot be removed")
        users = [f"{kind} {name!r}" for name, kind in self.users(policy.id)]
        if users:
            raise Conflict(f"policy {policy.name!r} is in use by {', '.join(users)}")
        self.session.delete(self.session.get(m.Policy, policy.id))
        self.session.flush()

    def users(self, policy_id: str, gated_only: bool = False) -> Iterable[tuple[str, str]]:
        """(name, 'cluster'|'VM') of everything that uses the policy; with gated_only, the
        names of clusters without parallel support where it is used (directly or by a VM)."""
        for c in self.session.scalars(select(m.Cluster).where(m.Cluster.policy_id == policy_id)):
            if not gated_only or not c.parallel_supported:
                yield (c.name, "cluster")
        for v in self.session.scalars(select(m.Vm).where(m.Vm.policy_id == policy_id)):
            if not gated_only:
                yield (v.name, "VM")
            elif not v.cluster.parallel_supported:
                yield (v.cluster.name, "cluster")


def _fill(row: m.Policy, p: MigrationPolicy) -> None:
    wire = policy_to_dict(p)
    row.name = p.name
    row.description = p.description
    row.max_migrations = p.max_migrations
    row.auto_converge = p.auto_converge
    row.compression = p.compression
    row.guest_events = p.guest_events
    row.zerocopy = p.zerocopy
    row.schedule = {k: wire[k] for k in ("init", "stalling", "last_items")}


def _policy(row: m.Policy) -> MigrationPolicy:
    """Rebuilt as stored, without re-validating (rules may tighten; stored data stays readable)."""
    def action(a: dict) -> Action:
        return Action.from_params(a["name"], a.get("params", ()))

    sched = row.schedule or {}
    return MigrationPolicy(
        id=row.id, name=row.name, description=row.description, max_migrations=row.max_migrations,
        auto_converge=row.auto_converge, compression=row.compression, guest_events=row.guest_events,
        zerocopy=row.zerocopy,
        init=tuple(action(a) for a in sched.get("init", ())),
        stalling=tuple(StallingStep(s["limit"], action(s["action"])) for s in sched.get("stalling", ())),
        last_items=tuple(action(a) for a in sched.get("last_items", ())),
    )

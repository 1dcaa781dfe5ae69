"""The policies repository: the read-only built-ins and the custom policies in the database."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

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
    policy_from_dict,
    policy_to_dict,
)
from ferry.engine.validation import policy_input, zerocopy_gate_error
from ferry.protocol.schedule import Action, StallingStep


class PolicyRepository:
    def __init__(self, session: Session):
        self.session = session

    def list(self) -> list[MigrationPolicy]:
        """The built-ins (in oVirt's order), then the custom ones by name."""
        return list(BUILTIN_POLICIES) + self._customs()

    def _customs(self) -> list[MigrationPolicy]:
        return [_policy(r) for r in self.session.scalars(select(m.Policy).order_by(m.Policy.name))]

    def get(self, ref: str, field: str = "policy") -> MigrationPolicy:
        """A policy by id or by name (case-insensitive), built-in or custom; an unknown one is
        bad input in `field` (the policy is referred to from a cluster, a VM, a plan)."""
        try:
            return find_policy(ref, self._customs(), field=field)
        except NotFound:
            names = ", ".join(repr(p.name) for p in self.list())
            raise InvalidInput(field, f"unknown policy {ref!r} (known: {names})") from None

    def find(self, ref: str) -> MigrationPolicy:
        """A policy by id or name; a missing one is NotFound (for /policies/{ref})."""
        return find_policy(ref, self._customs())

    def name_of(self, policy_id: str | None) -> str | None:
        if policy_id is None:
            return None
        if policy_id in BUILTIN_BY_ID:
            return BUILTIN_BY_ID[policy_id].name
        row = self.session.get(m.Policy, policy_id)
        return row.name if row else None

    def create(self, data: Mapping[str, Any]) -> MigrationPolicy:
        """A new custom policy from its JSON form (ferry.engine.policies.policy_from_dict)."""
        data = policy_input(data)
        customs = self._customs()
        _check_name_free(data.get("name"), customs)
        policy = policy_from_dict(data, customs)
        row = m.Policy(id=policy.id, created_at=now())
        _fill(row, policy)
        self.session.add(row)
        self.session.flush()
        return policy

    def replace(self, ref: str, data: Mapping[str, Any]) -> MigrationPolicy:
        """Replace a custom policy's contents (its id stays); built-ins are read-only."""
        current = self.find(ref)
        if current.builtin:
            raise Conflict(f"policy {current.name!r} is built-in and read-only; create a custom policy instead")
        data = policy_input(data)
        if data.get("id") not in (None, current.id):
            raise InvalidInput("id", "a policy's id cannot change")
        others = [p for p in self._customs() if p.id != current.id]
        _check_name_free(data.get("name"), others)
        policy = policy_from_dict({**data, "id": current.id}, others)
        if policy.zerocopy:
            for cluster_name, _ in self._users(current.id, gated_only=True):
                raise zerocopy_gate_error("zerocopy", policy, cluster_name)
        _fill(self.session.get(m.Policy, current.id), policy)
        self.session.flush()
        return policy

    def delete(self, ref: str) -> None:
        policy = self.find(ref)
        if policy.builtin:
            raise Conflict(f"policy {policy.name!r} is built-in and cannot be removed")
        users = [f"{kind} {name!r}" for name, kind in self._users(policy.id)]
        if users:
            raise Conflict(f"policy {policy.name!r} is in use by {', '.join(users)}")
        self.session.delete(self.session.get(m.Policy, policy.id))
        self.session.flush()

    def _users(self, policy_id: str, gated_only: bool = False) -> Iterable[tuple[str, str]]:
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


def _check_name_free(name: Any, customs: Iterable[MigrationPolicy]) -> None:
    if not isinstance(name, str):
        return  # policy_from_dict names the problem
    for p in (*BUILTIN_POLICIES, *customs):
        if p.name.lower() == name.strip().lower():
            raise Conflict(f"a policy named {p.name!r} already exists")


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

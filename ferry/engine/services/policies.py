"""The custom-policy use cases: create and replace a policy from its JSON form.

The JSON is checked (ferry.engine.validation.policy_input) and built into a MigrationPolicy
(ferry.engine.policies.policy_from_dict, which names the field of any problem) before the
repository stores it. Two rules span other objects: a name is unique among the built-ins and
the custom policies (case-insensitive), and a policy may turn zero-copy only where every
cluster using it, directly or through a VM, supports parallel migrations (the zero-copy gate).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ferry.common.errors import Conflict, InvalidInput
from ferry.engine.db.store import Store
from ferry.engine.policies import BUILTIN_POLICIES, MigrationPolicy, policy_from_dict
from ferry.engine.validation import policy_input, zerocopy_gate_error


def _check_name_free(name: Any, customs: Iterable[MigrationPolicy]) -> None:
    if not isinstance(name, str):
        return  # policy_from_dict names the problem
    for p in (*BUILTIN_POLICIES, *customs):
        if p.name.lower() == name.strip().lower():
            raise Conflict(f"a policy named {p.name!r} already exists")


def create_policy(store: Store, data: Mapping[str, Any]) -> MigrationPolicy:
    """A new custom policy from its JSON form (ferry.engine.policies.policy_from_dict)."""
    data = policy_input(data)
    customs = store.policies.customs()
    _check_name_free(data.get("name"), customs)
    return store.policies.add(policy_from_dict(data, customs))


def replace_policy(store: Store, ref: str, data: Mapping[str, Any]) -> MigrationPolicy:
    """Replace a custom policy's contents (its id stays); built-ins are read-only."""
    current = store.policies.find(ref)
    if current.builtin:
        raise Conflict(f"policy {current.name!r} is built-in and read-only; create a custom policy instead")
    data = policy_input(data)
    if data.get("id") not in (None, current.id):
        raise InvalidInput("id", "a policy's id cannot change")
    others = [p for p in store.policies.customs() if p.id != current.id]
    _check_name_free(data.get("name"), others)
    policy = policy_from_dict({**data, "id": current.id}, others)
    if policy.zerocopy:
        for cluster_name, _ in store.policies.users(current.id, gated_only=True):
            raise zerocopy_gate_error("zerocopy", policy, cluster_name)
    return store.policies.replace(policy)

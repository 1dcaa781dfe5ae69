"""The migration planner: cluster options + VM + policy + hosts -> VM.migrate parameters.

Pure: no I/O. It follows oVirt's engine step by step (facts §5, order matters; one function per
step in `ferry.engine.plan_rules`) with the zero-copy rules of the seed page: zero-copy forces
parallel connections on, migration encryption turns zero-copy off, a cluster without parallel
migrations gets no zero-copy, and a source host that reports no zero-copy support is not sent
the parameter. An older agent that does not report the capability is sent it anyway: it
ignores unknown keys, logs them, and the migration goes on. A plan always exists; nothing here
blocks a migration.

The plan holds the typed parameters (`ferry.protocol.migrate_params.MigrateParams`) and the
libvirt flags the agent will derive from them (the protocol's own flag builder); the wire dict
is made once, by `to_dict`, for output and for the VM.migrate call. Every value that differs
from what the admin set comes with an explanation entry {field, from, to, reason}; how
automatic values were derived goes into `notes`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferry.engine import plan_rules as rules
from ferry.engine.bandwidth import cluster_bandwidth
from ferry.engine.options import ClusterMigrationOptions, HostMigrationInfo, VmMigrationOverrides
from ferry.engine.plan_rules import ExplanationEntry
from ferry.engine.policies import MigrationPolicy
from ferry.protocol.flags import MigrationFlags, build_migration_flags
from ferry.protocol.migrate_params import MigrateParams

__all__ = ["ExplanationEntry", "MigrationPlan", "effective_policy_id", "plan_migration"]

effective_policy_id = rules.rule_3_effective_policy


@dataclass(frozen=True)
class MigrationPlan:
    """VM.migrate parameters for one migration, the libvirt flags they lead to, and why."""

    vm: str | None
    source: str
    destination: str
    policy_id: str
    policy_name: str
    policy_origin: str                      # "VM override", "cluster" or "requested"
    params: MigrateParams
    flags: MigrationFlags
    explanation: tuple[ExplanationEntry, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def parallel_connections(self) -> int | None:
        return self.params.parallel

    @property
    def zerocopy(self) -> bool:
        return self.params.zerocopy

    @property
    def libvirt_flags(self) -> tuple[str, ...]:
        return self.flags.names

    @property
    def libvirt_typed_params(self) -> dict[str, Any]:
        return dict(self.flags.typed_params)

    @property
    def flag_notes(self) -> tuple[str, ...]:
        return self.flags.notes

    @property
    def flag_warnings(self) -> tuple[str, ...]:
        """Combinations libvirt/QEMU would refuse (never expected from the planner)."""
        return self.flags.warnings

    def to_dict(self) -> dict:
        return {
            "vm": self.vm,
            "source": self.source,
            "destination": self.destination,
            "policy": {"id": self.policy_id, "name": self.policy_name, "origin": self.policy_origin},
            "params": _jsonable(self.params.to_wire()),
            "libvirt_flags": list(self.flags.names),
            "libvirt_typed_params": _jsonable(self.flags.typed_params),
            "flag_notes": list(self.flags.notes),
            "flag_warnings": list(self.flags.warnings),   # combinations libvirt/QEMU would refuse
            "explanation": [e.to_dict() for e in self.explanation],
            "notes": list(self.notes),
        }


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def plan_migration(
    cluster: ClusterMigrationOptions,
    vm: VmMigrationOverrides,
    policy: MigrationPolicy,
    source: HostMigrationInfo,
    destination: HostMigrationInfo,
    *,
    vcpus: int,
    paused: bool = False,
    vm_name: str | None = None,
    cluster_policy: MigrationPolicy | None = None,
) -> MigrationPlan:
    """VM.migrate parameters for moving a VM from `source` to `destination` under `policy`.

    `policy` is the policy to apply (normally the effective one, see `effective_policy_id`;
    a dry run may ask for another). `cluster_policy`: the cluster's policy, whose maxMigrations
    divides the bandwidth (step 8); left out, see `plan_rules.cluster_policy_for`. Raises
    InvalidInput only for malformed input (vCPUs < 1, a policy with maxMigrations < 1); for any
    valid input a plan exists.
    """
    rules.check_inputs(vcpus, policy, destination)
    sharing, why_sharing = rules.cluster_policy_for(cluster, policy, cluster_policy)
    rules.check_inputs(vcpus, sharing, destination)
    origin, why = rules.rule_3_policy_origin(policy, cluster, vm)
    user_auto_converge = rules.rule_1_auto_converge(cluster, vm)
    encrypted, encrypted_origin = rules.rule_2_encrypted(cluster, vm)
    zerocopy, r4 = rules.rule_4_zerocopy(policy, cluster, encrypted, encrypted_origin, source)
    bandwidth = cluster_bandwidth(cluster.bandwidth, source, destination)
    parallel, r5 = rules.rule_5_parallel(cluster, vm, policy, zerocopy, bandwidth, vcpus)
    user_compressed, compressed, compressed_reason = rules.rule_6_compressed(cluster, vm, parallel)
    schedule, r7 = rules.rule_7_schedule(policy, parallel, paused)
    max_bandwidth, r8 = rules.rule_8_max_bandwidth(cluster, sharing, bandwidth,
                                                   shared_with_vm=sharing.id == policy.id)
    (auto_converge, compressed), r9 = rules.rule_9_policy_features(
        policy, user_auto_converge, user_compressed, compressed, compressed_reason, parallel)
    downtime, r_downtime = rules.vm_downtime(vm, policy)
    limit, r10 = rules.rule_10_limits(policy, parallel)
    dstqemu, r11 = rules.rule_11_dstqemu(source, destination)
    why += r4 + r5 + r7 + why_sharing + r8 + r9 + r_downtime + r10 + r11

    params = MigrateParams(
        dst=destination.address, dstqemu=dstqemu, abort_on_error=True, auto_converge=auto_converge,
        compressed=compressed, encrypted=encrypted, enable_guest_events=policy.guest_events,
        parallel=parallel, zerocopy=zerocopy, max_bandwidth=max_bandwidth, schedule=schedule,
        outgoing_limit=limit, incoming_limit=limit, downtime=downtime,
    )
    return MigrationPlan(
        vm=vm_name, source=source.name, destination=destination.name,
        policy_id=policy.id, policy_name=policy.name, policy_origin=origin,
        params=params, flags=build_migration_flags(params),
        explanation=why.explanation, notes=why.notes,
    )

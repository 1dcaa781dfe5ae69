"""The migration planner: cluster options + VM + policy + hosts -> VM.migrate parameters.

Pure: no I/O. It follows oVirt's engine step by step (facts §5, order matters) with the
zero-copy rules of the seed page: zero-copy forces parallel connections on, migration
encryption turns zero-copy off, a cluster without parallel migrations gets no zero-copy, and a
source host that reports no zero-copy support is not sent the parameter. An older agent that
does not report the capability is sent it anyway: it ignores unknown keys, logs them, and the
migration goes on. A plan always exists; nothing here blocks a migration.

Every value that differs from what the admin set comes with an explanation entry {field,
from, to, reason}; how automatic values were derived goes into `notes`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferry.agent.flags import build_migration_flags
from ferry.common.errors import InvalidInput
from ferry.engine.bandwidth import (
    AGENT_DEFAULT_MAX_BANDWIDTH_MIBS,
    cluster_bandwidth,
    max_bandwidth_mibps,
)
from ferry.engine.options import (
    BandwidthMode,
    ClusterMigrationOptions,
    HostMigrationInfo,
    ParallelMode,
    VmMigrationOverrides,
    ZeroCopySupport,
)
from ferry.engine.parallel import ParallelResolution, resolve_parallel
from ferry.engine.policies import MigrationPolicy

POSTCOPY_ACTION = "postcopy"


@dataclass(frozen=True)
class ExplanationEntry:
    """One value the planner set differently from what the admin set, and why."""

    field: str
    from_: str
    to: str
    reason: str

    def to_dict(self) -> dict:
        return {"field": self.field, "from": self.from_, "to": self.to, "reason": self.reason}

    def __str__(self) -> str:
        return f"{self.field}: {self.from_} → {self.to}: {self.reason}"


@dataclass(frozen=True)
class MigrationPlan:
    """VM.migrate parameters for one migration, the libvirt flags they lead to, and why."""

    vm: str | None
    source: str
    destination: str
    policy_id: str
    policy_name: str
    policy_origin: str                      # "VM override", "cluster" or "requested"
    params: dict[str, Any]
    explanation: tuple[ExplanationEntry, ...] = ()
    notes: tuple[str, ...] = ()
    libvirt_flags: tuple[str, ...] = ()
    libvirt_typed_params: dict[str, Any] | None = None
    flag_notes: tuple[str, ...] = ()
    flag_warnings: tuple[str, ...] = ()     # combinations libvirt/QEMU would refuse (never expected)
    parallel_connections: int | None = None
    zerocopy: bool = False

    def to_dict(self) -> dict:
        return {
            "vm": self.vm,
            "source": self.source,
            "destination": self.destination,
            "policy": {"id": self.policy_id, "name": self.policy_name, "origin": self.policy_origin},
            "params": _jsonable(self.params),
            "libvirt_flags": list(self.libvirt_flags),
            "libvirt_typed_params": _jsonable(self.libvirt_typed_params),
            "flag_notes": list(self.flag_notes),
            "flag_warnings": list(self.flag_warnings),
            "explanation": [e.to_dict() for e in self.explanation],
            "notes": list(self.notes),
        }


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _onoff(value: bool) -> str:
    return "on" if value else "off"


def _first_set(*values: bool | None, default: bool = False) -> tuple[bool, str]:
    """VM override, else cluster, else the default; with where the value came from."""
    for value, origin in zip(values, ("VM override", "cluster")):
        if value is not None:
            return bool(value), origin
    return default, "default"


def effective_policy_id(cluster: ClusterMigrationOptions, vm: VmMigrationOverrides) -> tuple[str, str]:
    """Facts §5 step 3: the VM's policy if set, else the cluster's; with its origin."""
    if vm.policy_id:
        return vm.policy_id, "VM override"
    return cluster.policy_id, "cluster"


def _policy_origin(policy: MigrationPolicy, cluster: ClusterMigrationOptions, vm: VmMigrationOverrides) -> str:
    effective, origin = effective_policy_id(cluster, vm)
    return origin if effective == policy.id else "requested"


def _drop_postcopy(schedule: dict) -> tuple[dict, int]:
    """The schedule without `postcopy` actions, and how many were dropped."""
    stalling = [s for s in schedule["stalling"] if s["action"]["name"] != POSTCOPY_ACTION]
    init = [a for a in schedule["init"] if a["name"] != POSTCOPY_ACTION]
    dropped = len(schedule["stalling"]) - len(stalling) + len(schedule["init"]) - len(init)
    return {"init": init, "stalling": stalling}, dropped


def _flags_for(params: dict):
    """The agent's own pure flag builder, so the plan shows exactly what the agent would pass."""
    flags = build_migration_flags(dict(params))
    return tuple(flags.names), dict(flags.typed_params), tuple(flags.notes), tuple(flags.warnings)


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
) -> MigrationPlan:
    """VM.migrate parameters for moving a VM from `source` to `destination` under `policy`.

    `policy` is the policy to apply (normally the effective one, see `effective_policy_id`;
    a dry run may ask for another). Raises InvalidInput only for malformed input (vCPUs < 1,
    a policy with maxMigrations < 1); for any valid input a plan exists.
    """
    if not isinstance(vcpus, int) or isinstance(vcpus, bool) or vcpus < 1:
        raise InvalidInput("vcpus", f"must be a positive integer, got {vcpus!r}")
    if not isinstance(policy.max_migrations, int) or policy.max_migrations < 1:
        raise InvalidInput("policy.max_migrations", f"must be 1 or more, got {policy.max_migrations!r}")

    explanation: list[ExplanationEntry] = []
    notes: list[str] = []

    def explain(field_: str, from_: str, to: str, reason: str) -> None:
        explanation.append(ExplanationEntry(field_, from_, to, reason))

    policy_origin = _policy_origin(policy, cluster, vm)
    if policy_origin == "requested":
        effective, origin = effective_policy_id(cluster, vm)
        notes.append(f"policy: {policy.name} was asked for this plan instead of the {origin}'s policy ({effective})")

    # 1-2. auto-converge and encryption: VM override, else cluster, else off.
    user_auto_converge, _ = _first_set(vm.auto_converge, cluster.auto_converge)
    encrypted, encrypted_origin = _first_set(vm.encrypted, cluster.encrypted)

    # 4. zero-copy: the policy asks, the cluster allows parallel, no TLS; and we do not send it
    #    to a source that says it cannot (our addition: the seed's engine cannot know that).
    blockers: list[str] = []
    if policy.zerocopy:
        if not cluster.parallel_supported:
            blockers.append("parallel migrations are not supported in this cluster, and zero-copy needs them")
        if encrypted:
            blockers.append(f"migration encryption is enabled ({encrypted_origin}); QEMU cannot "
                            "combine zero-copy with TLS")
        if policy.compression:
            blockers.append(f"policy {policy.name} also asks for compression, which QEMU cannot "
                            "combine with zero-copy")
    zerocopy = policy.zerocopy and not blockers
    host_refuses = zerocopy and source.zerocopy is ZeroCopySupport.NO
    if host_refuses:
        zerocopy = False
    if policy.zerocopy and not zerocopy:
        reasons = list(blockers)
        if source.zerocopy is ZeroCopySupport.NO:
            reasons.append(f"source host {source.name} reports zero-copy unsupported")
        explain("zerocopy", f"on (policy {policy.name})", "off" if blockers else "not sent",
                "; ".join(reasons))
    elif zerocopy and source.zerocopy is ZeroCopySupport.UNKNOWN:
        explain("zerocopy", f"on (policy {policy.name})", "sent, unconfirmed",
                f"source host {source.name} does not report zero-copy support (an older agent): "
                "sent anyway; an agent that does not know the parameter ignores it, logs it as "
                "not recognized and migrates without zero-copy")

    # 5. parallel connections, forced on by zero-copy; none where the cluster has no parallel.
    requested_parallel = vm.parallel if vm.parallel is not None else cluster.parallel
    bandwidth = cluster_bandwidth(cluster.bandwidth, source, destination)
    if not cluster.parallel_supported:
        resolution = ParallelResolution(requested_parallel, requested_parallel.mode, None,
                                        derivation="parallel migrations are not supported in this cluster")
        if requested_parallel.mode is not ParallelMode.DISABLED:
            explain("parallel", str(requested_parallel), "off",
                    "parallel migrations are not supported in this cluster")
    else:
        resolution = resolve_parallel(requested_parallel, enforce=zerocopy,
                                      bandwidth_mbps=bandwidth.mbps, vcpus=vcpus)
        reasons = []
        if resolution.enforced:
            reasons.append(f"required by zero-copy of policy {policy.name}")
        if resolution.capped_by_vcpus:
            reasons.append(f"CUSTOM is limited to max(2, the VM's {vcpus} vCPUs) connections")
        if resolution.capped_at_max:
            reasons.append("at most 255 connections")
        if reasons:
            explain("parallel", str(requested_parallel), resolution.describe(), "; ".join(reasons))
    notes.append(f"parallel: {requested_parallel} → {resolution.describe()}: {resolution.derivation}")
    parallel = resolution.connections

    # 6. compression only without parallel connections ...
    user_compressed, _ = _first_set(vm.compressed, cluster.compressed)
    compressed = user_compressed and parallel is None
    compressed_reason = "compression is not used with parallel connections"

    # 7. no post-copy with parallel connections or for a paused VM.
    schedule = policy.schedule_wire()
    if schedule is not None and (parallel is not None or paused):
        schedule, dropped = _drop_postcopy(schedule)
        if dropped:
            why = ("post-copy is not used with parallel connections" if parallel is not None
                   else "the VM is paused, and post-copy needs a running VM")
            explain("convergenceSchedule", f"policy {policy.name} with post-copy",
                    "without post-copy", why)

    # 8. bandwidth: the cluster's, shared by the policy's concurrent migrations.
    max_bandwidth = max_bandwidth_mibps(bandwidth, policy.max_migrations)
    notes.append(f"bandwidth: {bandwidth.derivation}")
    if max_bandwidth is None:
        if cluster.bandwidth.mode is BandwidthMode.AUTO:
            explain("maxBandwidth", "AUTO", f"not sent (agent default {AGENT_DEFAULT_MAX_BANDWIDTH_MIBS} MiB/s)",
                    "neither host reports its migration link speed")
    else:
        share = (f"{bandwidth.mibps} MiB/s / {policy.max_migrations}: policy {policy.name} runs up to "
                 f"{policy.max_migrations} migration{'s' if policy.max_migrations != 1 else ''} at once")
        if cluster.bandwidth.mode is BandwidthMode.CUSTOM and max_bandwidth != bandwidth.mibps:
            explain("maxBandwidth", f"CUSTOM {cluster.bandwidth.custom_mbps} Mbps",
                    f"{max_bandwidth} MiB/s", share)
        elif bandwidth.mibps == 0:
            explain("maxBandwidth", str(cluster.bandwidth.mode.value), "1 MiB/s",
                    "less than 8 Mbps rounds to 0 MiB/s, which the agent would read as unlimited")
        else:
            notes.append(f"maxBandwidth: {max_bandwidth} MiB/s = {share}")

    # 9. a real policy (not Legacy) decides auto-converge and compression.
    auto_converge = user_auto_converge
    if not policy.legacy:
        auto_converge = policy.auto_converge
        compressed = policy.compression
        compressed_reason = f"policy {policy.name} sets compression {_onoff(policy.compression)}"
        if auto_converge != user_auto_converge:
            explain("autoConverge", _onoff(user_auto_converge), _onoff(auto_converge),
                    f"policy {policy.name} sets auto-converge {_onoff(auto_converge)}")
    # Our addition: libvirt refuses COMPRESSED with PARALLEL unless a multifd compression method
    # is named ("No compression algorithm selected for parallel migration"), so a policy's
    # compression is not applied to a parallel migration.
    if compressed and parallel is not None:
        compressed = False
        compressed_reason = (f"policy {policy.name} asks for compression, but libvirt refuses "
                             "compression with parallel connections")
        if not user_compressed:
            notes.append(f"compressed: off: {compressed_reason}")
    if compressed != user_compressed:
        explain("compressed", _onoff(user_compressed), _onoff(compressed), compressed_reason)

    # 10. migrations at once: one when parallel (it uses the link), else the policy's.
    limit = 1 if parallel is not None else policy.max_migrations

    params: dict[str, Any] = {
        "dst": destination.address,
        "method": "online",
        "tunneled": False,
        "abortOnError": True,
        "autoConverge": auto_converge,
        "compressed": compressed,
        "encrypted": encrypted,
        "enableGuestEvents": policy.guest_events,
        "outgoingLimit": limit,
        "incomingLimit": limit,
    }
    if parallel is not None:
        params["parallel"] = parallel
    if zerocopy:
        params["zerocopy"] = True
    if max_bandwidth is not None:
        params["maxBandwidth"] = max_bandwidth
    if schedule is not None:
        params["convergenceSchedule"] = schedule
    if vm.downtime_ms is not None:
        params["downtime"] = vm.downtime_ms
        if not policy.legacy:
            notes.append(f"downtime: {vm.downtime_ms} ms is sent, but policy {policy.name}'s "
                         "schedule sets the downtimes; the agent uses it only without a schedule")
    notes.append(f"incomingLimit/outgoingLimit: {limit}: "
                 + ("one migration at a time when it uses parallel connections" if parallel is not None
                    else f"policy {policy.name} allows {policy.max_migrations} at once"))

    # 11. the destination's migration network address, when that network is up on both hosts.
    if destination.migration_address and destination.migration_network_up and source.migration_network_up:
        params["dstqemu"] = destination.migration_address
    else:
        down = [h.name for h in (source, destination) if not h.migration_network_up]
        why = (f"the migration network is not up on {', '.join(down)}" if down
               else f"{destination.name} has no migration network address")
        notes.append(f"dstqemu: not sent ({why}): QEMU's data goes to {destination.address}")

    libvirt_flags, typed_params, flag_notes, flag_warnings = _flags_for(params)
    return MigrationPlan(
        vm=vm_name, source=source.name, destination=destination.name,
        policy_id=policy.id, policy_name=policy.name, policy_origin=policy_origin,
        params=params, explanation=tuple(explanation), notes=tuple(notes),
        libvirt_flags=libvirt_flags, libvirt_typed_params=typed_params, flag_notes=flag_notes,
        flag_warnings=flag_warnings,
        parallel_connections=parallel, zerocopy=zerocopy,
    )

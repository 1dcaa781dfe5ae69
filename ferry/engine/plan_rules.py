"""The planner's rules, one pure function per numbered step of ovirt-migration-facts §5.

Each rule takes typed inputs and returns its value and its `Reasons`: the explanation entries
(a value that differs from what the admin set, and why) and the notes (how an automatic value
was derived). `ferry.engine.planner.plan_migration` composes them in the facts' order, which
matters: zero-copy decides parallel, parallel decides compression, post-copy and the limits.
Our additions to oVirt are marked as such where they happen.
"""
from __future__ import annotations

from dataclasses import dataclass

from ferry.common.errors import InvalidInput
from ferry.engine.bandwidth import (
    AGENT_DEFAULT_MAX_BANDWIDTH_MIBS,
    ClusterBandwidth,
    max_bandwidth_mibps,
    unknown_link_speed,
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
from ferry.engine.policies import BUILTIN_BY_ID, MigrationPolicy
from ferry.protocol.migrate_params import MAX_MIGRATION_LIMIT, parse_int
from ferry.protocol.schedule import MAX_DOWNTIME_MS, POSTCOPY, Schedule


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
class Reasons:
    """What one rule says about its value: explanation entries and derivation notes."""

    explanation: tuple[ExplanationEntry, ...] = ()
    notes: tuple[str, ...] = ()

    def __add__(self, other: Reasons) -> Reasons:
        return Reasons(self.explanation + other.explanation, self.notes + other.notes)


NONE = Reasons()


def _explain(field: str, from_: str, to: str, reason: str) -> Reasons:
    return Reasons((ExplanationEntry(field, from_, to, reason),))


def _note(text: str) -> Reasons:
    return Reasons(notes=(text,))


def onoff(value: bool) -> str:
    return "on" if value else "off"


def first_set(*values: bool | None, default: bool = False) -> tuple[bool, str]:
    """VM override, else cluster, else the default; with where the value came from."""
    for value, origin in zip(values, ("VM override", "cluster")):
        if value is not None:
            return bool(value), origin
    return default, "default"


def rule_1_auto_converge(cluster: ClusterMigrationOptions, vm: VmMigrationOverrides) -> bool:
    """Step 1: auto-converge as the admin set it (VM, else cluster, else off)."""
    return first_set(vm.auto_converge, cluster.auto_converge)[0]


def rule_2_encrypted(cluster: ClusterMigrationOptions, vm: VmMigrationOverrides) -> tuple[bool, str]:
    """Step 2: encryption (VM, else cluster, else off), with where it was set."""
    return first_set(vm.encrypted, cluster.encrypted)


def rule_3_effective_policy(cluster: ClusterMigrationOptions, vm: VmMigrationOverrides) -> tuple[str, str]:
    """Step 3: the VM's policy if set, else the cluster's; with its origin."""
    if vm.policy_id:
        return vm.policy_id, "VM override"
    return cluster.policy_id, "cluster"


def rule_3_policy_origin(policy: MigrationPolicy, cluster: ClusterMigrationOptions,
                         vm: VmMigrationOverrides) -> tuple[str, Reasons]:
    """Where the policy planned with came from; a dry run may ask for another than step 3's."""
    effective, origin = rule_3_effective_policy(cluster, vm)
    if effective == policy.id:
        return origin, NONE
    return "requested", _note(f"policy: {policy.name} was asked for this plan instead of the "
                              f"{origin}'s policy ({effective})")


def rule_4_zerocopy(policy: MigrationPolicy, cluster: ClusterMigrationOptions, encrypted: bool,
                    encrypted_origin: str, source: HostMigrationInfo) -> tuple[bool, Reasons]:
    """Step 4: zero-copy when the policy asks, the cluster allows parallel and there is no TLS.

    Also not with the policy's compression (QEMU refuses the pair), and our addition: not sent
    to a source that reports it cannot (the seed's engine cannot know that). A source that
    does not report it (an older agent) is sent it anyway: it logs the unknown key and goes on.
    """
    if not policy.zerocopy:
        return False, NONE
    blockers: list[str] = []
    if not cluster.parallel_supported:
        blockers.append("parallel migrations are not supported in this cluster, and zero-copy needs them")
    if encrypted:
        blockers.append(f"migration encryption is enabled ({encrypted_origin}); QEMU cannot "
                        "combine zero-copy with TLS")
    if policy.compression:
        blockers.append(f"policy {policy.name} also asks for compression, which QEMU cannot "
                        "combine with zero-copy")
    if blockers or source.zerocopy is ZeroCopySupport.NO:
        reasons = list(blockers)
        if source.zerocopy is ZeroCopySupport.NO:
            reasons.append(f"source host {source.name} reports zero-copy unsupported")
        return False, _explain("zerocopy", f"on (policy {policy.name})", "off" if blockers else "not sent",
                               "; ".join(reasons))
    if source.zerocopy is ZeroCopySupport.UNKNOWN:
        return True, _explain(
            "zerocopy", f"on (policy {policy.name})", "sent, unconfirmed",
            f"source host {source.name} does not report zero-copy support (an older agent): "
            "sent anyway; an agent that does not know the parameter ignores it, logs it as "
            "not recognized and migrates without zero-copy")
    return True, NONE


def rule_5_parallel(cluster: ClusterMigrationOptions, vm: VmMigrationOverrides, policy: MigrationPolicy,
                    zerocopy: bool, bandwidth: ClusterBandwidth, vcpus: int) -> tuple[int | None, Reasons]:
    """Step 5: the connection count (None: not parallel), forced on by zero-copy; none where
    the cluster does not support parallel migrations."""
    requested = vm.parallel if vm.parallel is not None else cluster.parallel
    reasons = NONE
    if not cluster.parallel_supported:
        why = "parallel migrations are not supported in this cluster"
        resolution = ParallelResolution(requested, requested.mode, None, derivation=why)
        if requested.mode is not ParallelMode.DISABLED:
            reasons = _explain("parallel", str(requested), "off", why)
    else:
        resolution = resolve_parallel(requested, enforce=zerocopy, bandwidth_mbps=bandwidth.mbps, vcpus=vcpus)
        why_changed = []
        if resolution.enforced:
            why_changed.append(f"required by zero-copy of policy {policy.name}")
        if resolution.capped_by_vcpus:
            why_changed.append(f"CUSTOM is limited to max(2, the VM's {vcpus} vCPUs) connections")
        if resolution.capped_at_max:
            why_changed.append("at most 255 connections")
        if why_changed:
            reasons = _explain("parallel", str(requested), resolution.describe(), "; ".join(why_changed))
    note = _note(f"parallel: {requested} → {resolution.describe()}: {resolution.derivation}")
    return resolution.connections, reasons + note


def rule_6_compressed(cluster: ClusterMigrationOptions, vm: VmMigrationOverrides,
                      parallel: int | None) -> tuple[bool, bool, str]:
    """Step 6: compression as set (VM, else cluster, else off), only without parallel
    connections: (as set, as planned so far, why they differ)."""
    user_compressed = first_set(vm.compressed, cluster.compressed)[0]
    return user_compressed, user_compressed and parallel is None, \
        "compression is not used with parallel connections"


def rule_7_schedule(policy: MigrationPolicy, parallel: int | None, paused: bool) -> tuple[Schedule | None, Reasons]:
    """Step 7: the policy's schedule (None for Legacy), without post-copy when parallel
    connections are used or the VM is paused."""
    schedule = policy.schedule()
    if schedule is None or (parallel is None and not paused):
        return schedule, NONE
    schedule, dropped = schedule.without(POSTCOPY)
    if not dropped:
        return schedule, NONE
    why = ("post-copy is not used with parallel connections" if parallel is not None
           else "the VM is paused, and post-copy needs a running VM")
    return schedule, _explain("convergenceSchedule", f"policy {policy.name} with post-copy",
                              "without post-copy", why)


def rule_8_max_bandwidth(cluster: ClusterMigrationOptions, policy: MigrationPolicy,
                         bandwidth: ClusterBandwidth, *, shared_with_vm: bool = True) -> tuple[int | None, Reasons]:
    """Step 8: maxBandwidth (MiB/s), the cluster's bandwidth shared by the concurrent
    migrations of the CLUSTER's policy (`policy`; oVirt's getMaxBandwidth(clusterMigrationPolicy):
    the link is shared with the cluster's other migrations, so a VM that overrides the policy
    still divides by the cluster's); None: not sent (the agent's default applies).
    `shared_with_vm`: the VM migrates under that same policy (the text then needs no aside)."""
    max_bandwidth = max_bandwidth_mibps(bandwidth, policy.max_migrations)
    reasons = _note(f"bandwidth: {bandwidth.derivation}")
    if max_bandwidth is None:
        if cluster.bandwidth.mode is BandwidthMode.AUTO:
            reasons += _explain("maxBandwidth", "AUTO",
                                f"not sent (agent default {AGENT_DEFAULT_MAX_BANDWIDTH_MIBS} MiB/s)",
                                unknown_link_speed(bandwidth.unknown_hosts))
        return None, reasons
    n = policy.max_migrations
    share = (f"{bandwidth.mibps} MiB/s / {n}: policy {policy.name} runs up to "
             f"{n} migration{'s' if n != 1 else ''} at once")
    if not shared_with_vm:
        share += " (the cluster's policy: the link is shared with the cluster's other migrations)"
    if cluster.bandwidth.mode is BandwidthMode.CUSTOM and max_bandwidth != bandwidth.mibps:
        reasons += _explain("maxBandwidth", f"CUSTOM {cluster.bandwidth.custom_mbps} Mbps",
                            f"{max_bandwidth} MiB/s", share)
    elif bandwidth.mibps == 0:
        reasons += _explain("maxBandwidth", str(cluster.bandwidth.mode.value), "1 MiB/s",
                            "less than 8 Mbps rounds to 0 MiB/s, which the agent would read as unlimited")
    else:
        reasons += _note(f"maxBandwidth: {max_bandwidth} MiB/s = {share}")
    return max_bandwidth, reasons


def rule_9_policy_features(policy: MigrationPolicy, user_auto_converge: bool, user_compressed: bool,
                           compressed: bool, compressed_reason: str,
                           parallel: int | None) -> tuple[tuple[bool, bool], Reasons]:
    """Step 9: a real policy (not Legacy) decides auto-converge and compression:
    (autoConverge, compressed)."""
    auto_converge = user_auto_converge
    reasons = NONE
    if not policy.legacy:
        auto_converge = policy.auto_converge
        compressed = policy.compression
        compressed_reason = f"policy {policy.name} sets compression {onoff(policy.compression)}"
        if auto_converge != user_auto_converge:
            reasons += _explain("autoConverge", onoff(user_auto_converge), onoff(auto_converge),
                                f"policy {policy.name} sets auto-converge {onoff(auto_converge)}")
    # Our addition: libvirt refuses COMPRESSED with PARALLEL unless a multifd compression method
    # is named ("No compression algorithm selected for parallel migration"), so a policy's
    # compression is not applied to a parallel migration.
    if compressed and parallel is not None:
        compressed = False
        compressed_reason = (f"policy {policy.name} asks for compression, but libvirt refuses "
                             "compression with parallel connections")
        if not user_compressed:
            reasons += _note(f"compressed: off: {compressed_reason}")
    if compressed != user_compressed:
        reasons += _explain("compressed", onoff(user_compressed), onoff(compressed), compressed_reason)
    return (auto_converge, compressed), reasons


def vm_downtime(vm: VmMigrationOverrides, policy: MigrationPolicy) -> tuple[int | None, Reasons]:
    """The VM's legacy maximum downtime (ms), sent as set; only the agent's legacy schedule
    uses it."""
    if vm.downtime_ms is None:
        return None, NONE
    downtime = parse_int(vm.downtime_ms, "downtime", minimum=1, maximum=MAX_DOWNTIME_MS)
    if policy.legacy:
        return downtime, NONE
    return downtime, _note(f"downtime: {downtime} ms is sent, but policy {policy.name}'s schedule "
                           "sets the downtimes; the agent uses it only without a schedule")


def rule_10_limits(policy: MigrationPolicy, parallel: int | None) -> tuple[int, Reasons]:
    """Step 10: migrations at once (incoming = outgoing): one when parallel (it uses the
    link), else the policy's maxMigrations."""
    if parallel is not None:
        return 1, _note("incomingLimit/outgoingLimit: 1: one migration at a time when it uses "
                        "parallel connections")
    limit = parse_int(policy.max_migrations, "outgoingLimit", minimum=1, maximum=MAX_MIGRATION_LIMIT)
    return limit, _note(f"incomingLimit/outgoingLimit: {limit}: policy {policy.name} allows "
                        f"{policy.max_migrations} at once")


def rule_11_dstqemu(source: HostMigrationInfo, destination: HostMigrationInfo) -> tuple[str | None, Reasons]:
    """Step 11: the destination's migration network address, when that network is up on both
    hosts; else QEMU's data goes to the destination's management address."""
    if destination.migration_address and destination.migration_network_up and source.migration_network_up:
        return destination.migration_address, NONE
    down = [h.name for h in (source, destination) if not h.migration_network_up]
    why = (f"the migration network is not up on {', '.join(down)}" if down
           else f"{destination.name} has no migration network address")
    return None, _note(f"dstqemu: not sent ({why}): QEMU's data goes to {destination.address}")


def cluster_policy_for(cluster: ClusterMigrationOptions, policy: MigrationPolicy,
                       given: MigrationPolicy | None) -> tuple[MigrationPolicy, Reasons]:
    """The cluster's policy, for step 8's divisor: as given, else the policy planned with when
    it is the cluster's, else the built-in of that id. A custom cluster policy nobody passed
    cannot be known here: the policy planned with stands in, and a note says so."""
    if given is not None:
        return given, NONE
    if policy.id == cluster.policy_id:
        return policy, NONE
    builtin = BUILTIN_BY_ID.get(cluster.policy_id)
    if builtin is not None:
        return builtin, NONE
    return policy, _note(f"maxBandwidth: the cluster's policy {cluster.policy_id} was not given to the "
                         f"planner; dividing by policy {policy.name}'s maxMigrations instead")


def check_inputs(vcpus, policy: MigrationPolicy, destination: HostMigrationInfo) -> None:
    """Malformed input is the only thing that stops a plan: vCPUs < 1, maxMigrations < 1, a
    destination without an address."""
    if not isinstance(vcpus, int) or isinstance(vcpus, bool) or vcpus < 1:
        raise InvalidInput("vcpus", f"must be a positive integer, got {vcpus!r}")
    if not isinstance(policy.max_migrations, int) or policy.max_migrations < 1:
        raise InvalidInput("policy.max_migrations", f"must be 1 or more, got {policy.max_migrations!r}")
    if not isinstance(destination.address, str) or not destination.address.strip():
        raise InvalidInput("dst", f"the destination host[:port] is required, got {destination.address!r}")

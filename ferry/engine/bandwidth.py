"""The cluster's migration bandwidth for one migration, and the per-migration cap sent to the agent.

oVirt's rule (facts §5 step 8): AUTO is the slower of the two hosts' migration link speeds and
needs both: if either is unknown there is no AUTO bandwidth (nothing is sent, and AUTO parallel
has no bandwidth to count connections from). HYPERVISOR_DEFAULT sends nothing (the agent uses
its own 52 MiB/s), CUSTOM is the admin's Mbps. Mbps / 8 gives MiB/s, shared by the cluster
policy's maxMigrations concurrent migrations.
"""
from __future__ import annotations

from dataclasses import dataclass

from ferry.engine.options import BandwidthMode, BandwidthSetting, HostMigrationInfo

AGENT_DEFAULT_MAX_BANDWIDTH_MIBS = 52


@dataclass(frozen=True)
class ClusterBandwidth:
    setting: BandwidthSetting
    mbps: int | None        # None: unknown, or left to the agent
    derivation: str         # where the number came from, in words
    unknown_hosts: tuple[str, ...] = ()   # AUTO: the hosts that do not report their link speed

    @property
    def mibps(self) -> int | None:
        """The whole bandwidth in MiB/s (Mbps / 8, as oVirt computes it)."""
        return None if self.mbps is None else self.mbps // 8


def _known_speed(host: HostMigrationInfo) -> int | None:
    speed = host.link_speed_mbps
    return speed if isinstance(speed, int) and speed > 0 else None


def cluster_bandwidth(
    setting: BandwidthSetting, source: HostMigrationInfo, destination: HostMigrationInfo
) -> ClusterBandwidth:
    """The bandwidth (Mbps) the cluster gives migrations between these two hosts."""
    if setting.mode is BandwidthMode.HYPERVISOR_DEFAULT:
        return ClusterBandwidth(setting, None, "HYPERVISOR_DEFAULT: the agent's own limit "
                                f"({AGENT_DEFAULT_MAX_BANDWIDTH_MIBS} MiB/s) applies")
    if setting.mode is BandwidthMode.CUSTOM:
        return ClusterBandwidth(setting, setting.custom_mbps, f"CUSTOM {setting.custom_mbps} Mbps")
    speeds = {h.name: _known_speed(h) for h in (source, destination)}
    unknown = tuple(name for name, s in speeds.items() if s is None)
    if unknown:
        return ClusterBandwidth(setting, None, f"AUTO: {unknown_link_speed(unknown)}", unknown)
    slowest = min(s for s in speeds.values() if s is not None)
    parts = ", ".join(f"{name} {s} Mbps" for name, s in speeds.items())
    return ClusterBandwidth(setting, slowest, f"AUTO: slower migration link of {parts} = {slowest} Mbps")


def unknown_link_speed(hosts: tuple[str, ...]) -> str:
    """Why AUTO has no bandwidth, in words."""
    if len(hosts) > 1:
        return "neither host reports its migration link speed"
    return f"{hosts[0]} does not report its migration link speed, and AUTO needs both hosts' speeds"


def max_bandwidth_mibps(bandwidth: ClusterBandwidth, max_migrations: int) -> int | None:
    """maxBandwidth for VM.migrate: MiB/s per migration, or None to leave it to the agent.

    Never 0: the agent would read 0 as "unlimited", the opposite of a very small limit.
    """
    if bandwidth.mibps is None:
        return None
    return max(1, bandwidth.mibps // max(1, max_migrations))

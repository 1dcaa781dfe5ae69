"""How many parallel migration connections (QEMU multifd channels) a migration uses.

oVirt's rule (facts §5 step 5): AUTO and AUTO_PARALLEL give one connection per 10 GiB/s-ish
share of the cluster's migration bandwidth (10240 Mbps per connection), never more than the VM
has vCPUs; below two connections AUTO means "not parallel" and AUTO_PARALLEL means two. CUSTOM
is honoured up to the VM's vCPUs (but never below two). Zero-copy needs parallel connections,
so with `enforce` DISABLED and AUTO become AUTO_PARALLEL. The result never exceeds 255.
"""
from __future__ import annotations

from dataclasses import dataclass

from ferry.engine.options import (
    MAX_PARALLEL_CONNECTIONS,
    MIN_PARALLEL_CONNECTIONS,
    ParallelMode,
    ParallelSetting,
)

MBPS_PER_CONNECTION = 10 * 1024


@dataclass(frozen=True)
class ParallelResolution:
    """The connection count and how it came about (for the plan's explanation)."""

    requested: ParallelSetting
    mode: ParallelMode              # the mode actually applied (after enforcement)
    connections: int | None         # None: not a parallel migration
    enforced: bool = False          # DISABLED/AUTO turned into AUTO_PARALLEL
    derivation: str = ""            # how the count was computed, in words
    capped_by_vcpus: bool = False   # CUSTOM N lowered to the VM's vCPUs
    capped_at_max: bool = False     # lowered to 255

    @property
    def parallel(self) -> bool:
        return self.connections is not None

    def describe(self) -> str:
        """'AUTO_PARALLEL, 2 connections', 'CUSTOM, 4 connections' or 'off'."""
        if self.connections is None:
            return "off"
        return f"{self.mode.value}, {self.connections} connection{'s' if self.connections != 1 else ''}"


def automatic_connections(bandwidth_mbps: int | None, vcpus: int) -> tuple[int | None, str]:
    """AUTO's count: min(bandwidth / 10240, vCPUs), or None below two or with unknown bandwidth."""
    if bandwidth_mbps is None:
        return None, "the migration bandwidth is unknown"
    by_link = bandwidth_mbps // MBPS_PER_CONNECTION
    n = min(by_link, vcpus)
    why = (f"min({bandwidth_mbps} Mbps / {MBPS_PER_CONNECTION} = {by_link}, "
           f"{vcpus} vCPU{'s' if vcpus != 1 else ''}) = {n}")
    if n < MIN_PARALLEL_CONNECTIONS:
        return None, why + f", below {MIN_PARALLEL_CONNECTIONS}"
    return n, why


def resolve_parallel(
    setting: ParallelSetting, *, enforce: bool, bandwidth_mbps: int | None, vcpus: int
) -> ParallelResolution:
    """Facts §5 step 5: the connection count for `setting`, parallel forced on if `enforce`."""
    mode = setting.mode
    enforced = enforce and mode in (ParallelMode.DISABLED, ParallelMode.AUTO)
    if enforced:
        mode = ParallelMode.AUTO_PARALLEL

    capped_by_vcpus = False
    if mode is ParallelMode.DISABLED:
        return ParallelResolution(setting, mode, None, derivation="parallel migration is disabled")
    if mode is ParallelMode.CUSTOM:
        assert setting.connections is not None
        limit = max(MIN_PARALLEL_CONNECTIONS, vcpus)
        n: int | None = min(setting.connections, limit)
        capped_by_vcpus = n < setting.connections
        derivation = (f"CUSTOM {setting.connections}, at most max({MIN_PARALLEL_CONNECTIONS}, "
                      f"{vcpus} vCPU{'s' if vcpus != 1 else ''}) = {limit}")
    else:
        n, derivation = automatic_connections(bandwidth_mbps, vcpus)
        if n is None:
            if mode is ParallelMode.AUTO_PARALLEL:
                n = MIN_PARALLEL_CONNECTIONS
                derivation += f"; AUTO_PARALLEL uses at least {MIN_PARALLEL_CONNECTIONS}"
            else:
                derivation += "; AUTO does not use parallel connections then"
    capped_at_max = n is not None and n > MAX_PARALLEL_CONNECTIONS
    if capped_at_max:
        n = MAX_PARALLEL_CONNECTIONS
        derivation += f"; capped at {MAX_PARALLEL_CONNECTIONS}"
    return ParallelResolution(setting, mode, n, enforced=enforced, derivation=derivation,
                              capped_by_vcpus=capped_by_vcpus, capped_at_max=capped_at_max)

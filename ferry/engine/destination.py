"""Choosing where a VM migrates to, and whether a failed migration is tried again elsewhere.

oVirt's rules: a destination is an up host of the VM's cluster, not the source, with room for
the VM (a host PREPARING_FOR_MAINTENANCE or in MAINTENANCE is not up: it takes no incoming
migration and no new VM); among those Ferry prefers the one running the fewest migrations (then the most free
memory). A failure while the VM still runs on the source is retried on another host, never one
already tried, with at most MAX_HOSTS hosts in all. Pure functions: the orchestrator feeds them
the inventory it read.
"""
from __future__ import annotations

from dataclasses import dataclass

MAX_HOSTS = 3  # oVirt tries at most three destinations for one migration request


@dataclass(frozen=True)
class Candidate:
    name: str
    cluster: str
    up: bool
    free_memory_mib: int | None   # None: unknown (no stats yet) -> not excluded for it
    running_migrations: int = 0
    status: str | None = None      # the host's status, named when it is passed over for not being up


@dataclass(frozen=True)
class Choice:
    host: str | None               # None: no host can take the VM
    rejected: tuple[tuple[str, str], ...] = ()  # (host, why) for every host passed over

    def reason(self) -> str:
        """Why nothing was chosen, in one line for the event."""
        if not self.rejected:
            return "the cluster has no other host"
        return "; ".join(f"{h}: {why}" for h, why in self.rejected)


def choose_destination(
    candidates: list[Candidate],
    *,
    cluster: str,
    source: str,
    vm_memory_mib: int,
    exclude: frozenset[str] | set[str] = frozenset(),
) -> Choice:
    rejected: list[tuple[str, str]] = []
    fit: list[Candidate] = []
    for c in candidates:
        if c.name == source:
            continue
        if c.cluster != cluster:
            continue
        if c.name in exclude:
            rejected.append((c.name, "already tried for this migration"))
        elif not c.up:
            rejected.append((c.name, "host is not up" if c.status is None else f"host is {c.status}"))
        elif c.free_memory_mib is not None and c.free_memory_mib < vm_memory_mib:
            rejected.append((c.name, f"not enough free memory ({c.free_memory_mib} MiB < {vm_memory_mib} MiB)"))
        else:
            fit.append(c)
    if not fit:
        return Choice(None, tuple(rejected))
    best = min(fit, key=lambda c: (c.running_migrations, -(c.free_memory_mib or 0), c.name))
    return Choice(best.name, tuple(rejected))


def may_rerun(*, tried_hosts: int, vm_on_source: bool, cancelled: bool, destination_given: bool) -> bool:
    """A failed attempt is retried elsewhere only if the VM still runs on the source, the user
    did not cancel, the user did not pin the destination, and fewer than MAX_HOSTS were tried."""
    return vm_on_source and not cancelled and not destination_given and tried_hosts < MAX_HOSTS

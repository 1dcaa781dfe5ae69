"""Choosing where a VM migrates to, and whether a failed migration is tried again elsewhere.

oVirt's rules: a destination is an up host of the VM's cluster, not the source, with room for
the VM (a host PREPARING_FOR_MAINTENANCE or in MAINTENANCE is not up: it takes no incoming
migration and no new VM); among those Ferry prefers the one running the fewest migrations (then the most free
memory). A failure while the VM still runs on the source is retried on another host, never one
already tried, with at most MAX_HOSTS hosts in all. Pure functions: the orchestrator feeds them
the inventory it read.

`assign_destinations` is the same rule for many VMs at once (every VM of some hosts, planned in
one pass): why not call choose_destination once per VM? It scans every host, so 2,000 VMs over
2,000 hosts is four million comparisons in Python, seconds of planning. There the hosts wait in
a heap ordered by choose_destination's own key (running migrations, then most free memory, then
name); each VM takes the first that fits, whose count goes up by one and free memory down by the
VM's, so the VMs spread as a run of single requests would if each counted the ones planned
before it. Hosts excluded, not up, or in another cluster never enter. (The maintenance drain is
another thing: ferry.engine.drain_planner starts a host's VMs tick by tick within the hosts'
migration slots.)
"""
from __future__ import annotations

import heapq
from collections.abc import Iterable
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


@dataclass(frozen=True)
class Leaving:
    """A VM to move: its name, cluster, host and memory."""

    name: str
    cluster: str
    source: str
    memory_mib: int


def assign_destinations(vms: Iterable[Leaving], candidates: Iterable[Candidate], *,
                        exclude: frozenset[str] = frozenset()) -> dict[str, str | None]:
    """VM name -> destination host (None: nowhere fits), in the order the VMs are given."""
    heaps: dict[str, list[tuple[int, int, str]]] = {}
    free: dict[str, int | None] = {}
    for c in candidates:
        if c.name in exclude or not c.up:
            continue
        free[c.name] = c.free_memory_mib
        heaps.setdefault(c.cluster, []).append((c.running_migrations, -(c.free_memory_mib or 0), c.name))
    for h in heaps.values():
        heapq.heapify(h)
    out: dict[str, str | None] = {}
    for vm in vms:
        heap = heaps.get(vm.cluster, [])
        skipped = []
        chosen = None
        while heap:
            item = heapq.heappop(heap)
            name = item[2]
            room = free[name]
            if name != vm.source and (room is None or room >= vm.memory_mib):
                chosen = item
                break
            skipped.append(item)
        for item in skipped:
            heapq.heappush(heap, item)
        if chosen is None:
            out[vm.name] = None
            continue
        running, _neg_free, name = chosen
        if free[name] is not None:
            free[name] -= vm.memory_mib
        heapq.heappush(heap, (running + 1, -(free[name] or 0), name))
        out[vm.name] = name
    return out

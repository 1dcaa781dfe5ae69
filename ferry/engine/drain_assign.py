"""Destinations for many VMs at once (a drain), by the same rule as one migration's (pure).

Why not call ferry.engine.destination.choose_destination once per VM: it scans every host, so
2,000 VMs over 2,000 hosts is four million comparisons in Python, seconds of planning. Here the
hosts wait in a heap ordered by choose_destination's own key (running migrations, then most
free memory, then name); each VM takes the first that fits, whose count goes up by one and free
memory down by the VM's, so a drain spreads its VMs as a run of single requests would if each
counted the ones planned before it. Hosts excluded, not up, or in another cluster never enter.
"""
from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

from ferry.engine.destination import Candidate


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

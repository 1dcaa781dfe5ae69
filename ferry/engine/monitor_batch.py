"""Recording many hosts' agent answers in one transaction (the host monitor's writes, issue 18).

Why: a refresh recorded on its own cost a transaction of about eight round trips and a dozen
ORM objects (the host row and its cluster, the active migrations, the host's VMs with their
specs); at 2,000 hosts every 5 s that was most of the engine's CPU (py-spy, docs/benchmarks.md,
scale). Here a batch of answers is one transaction of a few statements whatever its size: the
hosts' ids and statuses in one narrow query, their new status and capabilities in one
executemany per kind, the active migrations once, the VMs of every host in the batch in one
narrow query (name, UUID, host, status), then the same rules per host as before
(`host_status_after`, `reconcile_vms`) and an update only for a VM that changed.

`Answer` is what the agent said (or that it could not be reached); `record_answers` is the write.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ferry.engine.db.records import HostStatus, VmPlacement
from ferry.engine.db.store import Store
from ferry.engine.validation import check_object

log = logging.getLogger("ferry.engine.monitor")


@dataclass(frozen=True)
class Answer:
    """One host's refresh: the capabilities (with the stats folded in) and VM list its agent
    returned at `sampled_at`, or `error`, the reason it could not be reached."""

    host: str
    sampled_at: float
    capabilities: dict[str, Any] | None = None
    vms: list[Mapping[str, Any]] = field(default_factory=list)
    error: str | None = None


def record_answers(store: Store, answers: Iterable[Answer], *, untouchable: Callable[[float], set[str]],
                   reconcile: Callable, missing: dict[str, int], lock: threading.Lock,
                   status_after: Callable[[HostStatus, bool], HostStatus]) -> list[str]:
    """Writes `answers` (at most one per host) in `store`'s transaction; the hosts written
    (an answer for a host no longer in the inventory is dropped)."""
    answers = list(answers)
    states = store.hosts.states([a.host for a in answers])
    answers = [a for a in answers if a.host in states]
    answered, unreachable = [], []
    for a in answers:
        row_id, status = states[a.host]
        if a.error is None:
            answered.append((row_id, status, status_after(status, True), check_object("capabilities", a.capabilities)))
        else:
            unreachable.append((row_id, status, status_after(status, False)))
    store.hosts.record_answers(answered, unreachable)
    reached = [a for a in answers if a.error is None]
    if not reached:
        return [a.host for a in answers]
    moving = {m.vm for m in store.migrations.list(active=True, limit=1000)}
    by_host = _inventory_for(store, reached)
    for a in reached:
        skip = untouchable(a.sampled_at) | moving
        with lock:
            changes = reconcile(a.host, a.vms, by_host.get(a.host, []), skip, missing)
        for change in changes:
            log.info("VM %s: now %s on %s (%s)", change.vm, change.status.value, change.host, change.why)
            store.vms.update(change.vm, host=change.host, status=change.status.value)
    return [a.host for a in answers]


def _inventory_for(store: Store, reached: list[Answer]) -> dict[str, list[VmPlacement]]:
    """Per answering host, the inventory VMs its answer can change: those placed on it, and those
    it lists that the inventory places elsewhere (by UUID; read before the batch's changes, as
    each host's own read was before its own). Not the whole cluster: at 40,000 VMs reading them
    all for every host's refresh was most of the monitor's time."""
    placed = store.vms.placements(hosts=[a.host for a in reached])
    by_uuid = {v.uuid: v for v in placed}
    unknown = sorted({str(e.get("vmID")) for a in reached for e in a.vms} - set(by_uuid))
    if unknown:
        by_uuid.update((v.uuid, v) for v in store.vms.placements(uuids=unknown))
    out: dict[str, list[VmPlacement]] = {}
    for v in placed:
        out.setdefault(v.host, []).append(v)
    for a in reached:
        mine = out.setdefault(a.host, [])
        for entry in a.vms:
            vm = by_uuid.get(str(entry.get("vmID")))
            if vm is not None and vm.host != a.host and vm not in mine:
                mine.append(vm)
    return out

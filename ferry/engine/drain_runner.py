"""The drain runner: the thread beside the orchestrator that empties hosts going to maintenance.

Every tick (about a second, sooner when woken by a request) and for every drain not ended:
1. bring its items up to date from the migrations they started (SUCCEEDED -> done; a failure
   with the VM still on the host: the destination counts as tried, the VM queued again, event
   VM_MIGRATION_FAILED_DURING_MOVE_TO_MAINTENANCE 140; a migration the engine never sent, e.g.
   because it was restarted: queued again, nothing tried) and from where the VMs run (a VM no
   longer on the host is gone; a new one on it is queued);
2. read the other hosts of the cluster and the migrations running anywhere, and ask the pure
   drain planner (ferry.engine.drain_planner) for the actions;
3. carry them out: start a migration through the orchestrator (the VM's own effective policy,
   planned by the planner, destination given), block or give up on a VM with an event
   (1111 no destination / 602 the host stays PREPARING_FOR_MAINTENANCE), drop queued VMs or
   cancel running migrations of a cancelled drain, and end the drain: MAINTENANCE (VDS_MAINTENANCE
   15) or, cancelled, back UP.
The drain's state and items live in the database, so a restarted engine resumes every drain.
With several engines on one PostgreSQL a runner steps only the drains whose lease its engine
holds or can claim (ferry.engine.ownership): one runner per drain, and another engine's runner
picks a drain up once its owner's lease has expired. Both writes of a tick are fenced by the
drain's lease (ownership.fence): a runner paused past its ttl writes nothing over the new
owner's items and starts nothing; it lets the drain go.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from ferry.common.errors import Conflict, FerryError
from ferry.engine import audit
from ferry.engine.db import Database, Store
from ferry.engine.db.records import DrainRecord, DrainState, HostStatus, MigrationState
from ferry.engine.db.repos.base import now
from ferry.engine.drain_planner import (
    BLOCKED,
    DONE,
    DROPPED,
    FAILED,
    GONE,
    MIGRATING,
    QUEUED,
    Abort,
    Block,
    DrainFacts,
    DrainVm,
    Drop,
    Finish,
    GiveUp,
    HostRoom,
    Start,
    plan_drain,
)
from ferry.engine.lease_rules import DRAIN
from ferry.engine.maintenance import new_item
from ferry.engine.ownership import Fenced, Ownership, SoleOwner
from ferry.engine.services.planning import free_memory

log = logging.getLogger("ferry.engine.drain")

TICK_S = 1.0


class DrainRunner:
    def __init__(self, db: Database, orchestrator: Any, *, tick: float = TICK_S,
                 ownership: SoleOwner | Ownership | None = None):
        self.db = db
        self.orchestrator = orchestrator
        self.ownership = ownership or getattr(orchestrator, "ownership", None) or SoleOwner()
        self.tick = tick
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="drain-runner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def wake(self) -> None:
        """A drain was asked for, cancelled, paused or resumed: act now, not at the next tick."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - the runner must outlive a bad tick
                log.exception("drain tick failed")
            self._wake.wait(self.tick)
            self._wake.clear()

    # ---- one tick ------------------------------------------------------------------------------
    def run_once(self) -> None:
        with self.db.unit_of_work() as store:
            drains = store.drains.active()
        for d in drains:
            if self._stop.is_set():
                return
            if not self.ownership.holds(DRAIN, d.id) and not self.ownership.claim(DRAIN, d.id).granted:
                continue   # another engine's drain
            try:
                ended = self._step(d.id)
            except Fenced as why:
                log.warning("drain %s of %s: let go, fenced (%s)", d.id, d.host, why)
                continue
            if ended:
                self.ownership.release(DRAIN, d.id)

    def _step(self, drain_id: str) -> bool:
        """One tick of one drain; True when the drain has ended."""
        with self.db.unit_of_work() as store:
            self.ownership.fence(store, DRAIN, drain_id)
            d = store.drains.get(drain_id)
            items = self._refresh_items(store, d)
            facts = self._facts(store, d, items)
            store.drains.update(d.id, items=items)
        step = plan_drain(facts)
        by_vm = {i["vm"]: i for i in items}
        if step.actions and not self.ownership.holds(DRAIN, drain_id):
            raise Fenced(f"drain {drain_id}: lease no longer held here, nothing started")
        for action in step.actions:
            if isinstance(action, Start):
                self._start(d, by_vm[action.vm], action)
            elif isinstance(action, Abort):
                self._abort(action)
        with self.db.unit_of_work() as store:
            self.ownership.fence(store, DRAIN, drain_id)
            d = store.drains.get(drain_id)
            if d.state.final:
                return True
            latest = {i["vm"]: i for i in d.items}
            for i in items:   # keep what this tick learnt and did
                latest[i["vm"]] = by_vm[i["vm"]]
            for action in step.actions:
                self._record(store, d, latest, action)
            store.drains.update(d.id, items=list(latest.values()))
        return any(isinstance(a, Finish) for a in step.actions)

    def _refresh_items(self, store: Store, d: DrainRecord) -> list[dict[str, Any]]:
        items = [dict(i) for i in d.items]
        known = {i["vm"] for i in items}
        for i in items:
            if i["state"] == MIGRATING and i.get("migration_id"):
                self._after_migration(store, d, i)
            if i["state"] in (QUEUED, BLOCKED, MIGRATING):
                vm = store.vms.get(i["vm"])
                if i["state"] != MIGRATING and vm.host != d.host:
                    i["state"] = GONE if vm.host is None else DONE
                    i["reason"] = "no longer on the host" if vm.host is None else f"now on {vm.host}"
        if d.state in (DrainState.ACTIVE, DrainState.PAUSED):
            for vm in store.vms.list(host=d.host):
                if vm.name not in known:
                    items.append(new_item(store, vm))
        return items

    def _after_migration(self, store: Store, d: DrainRecord, i: dict[str, Any]) -> None:
        m = store.migrations.get(i["migration_id"])
        if m.active:
            i["destination"] = m.destination
            return
        vm = store.vms.get(i["vm"])
        if m.state is MigrationState.SUCCEEDED:
            i["state"], i["bytes"] = DONE, int((m.result or {}).get("bytes") or 0)
            i["duration_s"] = (m.result or {}).get("wall_s")
            return
        if vm.host != d.host:
            i["state"] = DONE if vm.host else GONE
            return
        if m.state is MigrationState.CANCELLED and d.state is DrainState.CANCELLING:
            i["state"], i["reason"] = DROPPED, "its migration was cancelled with the maintenance"
            return
        i["state"], i["migration_id"] = QUEUED, None
        if m.started_at is None:   # never sent (e.g. the engine restarted): nothing was tried
            i["reason"] = m.error
            return
        tried = [a.get("destination") for a in (m.attempts or []) if a.get("destination")] or [m.destination]
        i["tried"] = sorted(set(i.get("tried") or []) | {t for t in tried if t})
        i["reason"] = f"{m.state.value}: {m.error or 'unknown error'}"
        store.events.record_audit(audit.VM_MIGRATION_FAILED_DURING_MOVE_TO_MAINTENANCE, vm=i["vm"], host=d.host,
                                  migration_id=m.id, host_name=d.host, reason=i["reason"])

    def _facts(self, store: Store, d: DrainRecord, items: list[dict[str, Any]]) -> DrainFacts:
        host = store.hosts.get(d.host)
        active = store.migrations.list(active=True, limit=1000)
        memory = {v.name: v.memory_mib for v in store.vms.list(cluster=host.cluster)}
        rooms = []
        for h in store.hosts.list(cluster=host.cluster):
            if h.name == d.host:
                continue
            to_it = [m for m in active if m.destination == h.name]
            rooms.append(HostRoom(h.name, h.status is HostStatus.UP, free_memory(h), len(to_it),
                                  sum(memory.get(m.vm, 0) for m in to_it), f"host is {h.status.value}"))
        vms = tuple(DrainVm(i["vm"], i["state"], int(i.get("memory_mib") or 0), i.get("forecast_s"),
                            frozenset(i.get("tried") or ()), int(i.get("outgoing_limit") or 1),
                            int(i.get("incoming_limit") or 1), i.get("migration_id"), i.get("reason"))
                    for i in items)
        return DrainFacts(d.state.value, d.order, vms, tuple(rooms),
                          sum(1 for m in active if m.source == d.host), d.abort_running)

    # ---- actions -------------------------------------------------------------------------------
    def _start(self, d: DrainRecord, item: dict[str, Any], action: Start) -> None:
        try:
            record = self.orchestrator.migrate(item["vm"], to=action.destination, user=d.user)
        except FerryError as exc:
            if self.orchestrator.stopping:   # SIGTERM: nothing was sent, and the host was not tried
                return                        # (the next engine starts this VM from the queue)
            log.warning("drain of %s: VM %s to %s not started: %s", d.host, item["vm"], action.destination, exc)
            item["tried"] = sorted(set(item.get("tried") or []) | {action.destination})
            item["reason"] = f"not started on {action.destination}: {exc}"
            return
        log.info("drain of %s: VM %s -> %s (%s), migration %s", d.host, item["vm"], action.destination,
                 action.why, record.id)
        item.update(state=MIGRATING, migration_id=record.id, destination=action.destination, reason=None)

    def _abort(self, action: Abort) -> None:
        try:
            self.orchestrator.cancel(action.migration_id, wait=False)   # another engine's: handed to it
        except Conflict as exc:   # already over: the next tick sees how it ended
            log.info("drain: cancelling migration %s: %s", action.migration_id, exc)

    def _record(self, store: Store, d: DrainRecord, items: dict[str, dict], action: Any) -> None:
        if isinstance(action, Block):
            items[action.vm].update(state=BLOCKED, reason=action.reason)
            store.events.record_audit(audit.VM_MIGRATION_FAILED_DURING_MOVE_TO_MAINTENANCE_NO_DESTINATION_VDS,
                                      vm=action.vm, host=d.host, host_name=d.host, reason=action.reason)
            store.events.record_audit(audit.USER_VDS_MAINTENANCE_MIGRATION_FAILED, vm=action.vm, host=d.host,
                                      host_name=d.host, reason=f"no destination: {action.reason}")
        elif isinstance(action, GiveUp):
            items[action.vm].update(state=FAILED, reason=action.reason)
            store.events.record_audit(audit.USER_VDS_MAINTENANCE_MIGRATION_FAILED, vm=action.vm, host=d.host,
                                      host_name=d.host, reason=action.reason)
        elif isinstance(action, Drop):
            items[action.vm].update(state=DROPPED, reason="maintenance cancelled before it started")
        elif isinstance(action, Finish):
            self._finish(store, d, list(items.values()), action.outcome)

    def _finish(self, store: Store, d: DrainRecord, items: list[dict], outcome: str) -> None:
        if outcome == "maintenance":
            store.hosts.update(d.host, status=HostStatus.MAINTENANCE)
            store.drains.update(d.id, state=DrainState.DONE, finished_at=now())
            moved = sum(1 for i in items if i["state"] == DONE)
            seconds = (now() - d.created_at).total_seconds() if d.created_at else None
            store.events.record_audit(audit.VDS_MAINTENANCE, host=d.host, host_name=d.host, count=moved,
                                      duration=audit.format_duration(seconds))
            log.info("host %s is in maintenance (%d VMs moved)", d.host, moved)
        else:
            store.hosts.update(d.host, status=HostStatus.UP)
            store.drains.update(d.id, state=DrainState.CANCELLED, finished_at=now())
            log.info("maintenance of %s cancelled; host UP again", d.host)

"""The destination side of a migration: VM.migrationCreate and the incoming slots it holds.

A source asks this host to expect a VM (VM.migrationCreate); the expectation holds an incoming
slot until libvirt's lifecycle events say how it ended (resumed or started here: succeeded, a
paused arrival too; stopped or undefined: failed), VM.destroy drops it, or it expires
(`incoming_timeout`). A full host answers migrateLimit at once and the source retries.
Mixed into `ferry.agent.api.Agent`, whose lock, connection and slots it uses.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from ferry.agent.rpc_errors import translated
from ferry.agent.vms import MIGRATION_DESTINATION
from ferry.common.jsonrpc import agent_error
from ferry.protocol.migrate_params import parse_int

log = logging.getLogger("ferry.agent")


@dataclass
class Incoming:
    """A VM this host was asked to expect (VM.migrationCreate) and holds an incoming slot for."""

    vm_id: str
    name: str
    since: float
    state: str = "running"
    ended_at: float | None = None
    history: list = field(default_factory=list)
    holds_slot: bool = True   # False: adopted while every incoming slot was taken


class DestinationSide:
    def vm_migration_create(self, params: dict) -> dict:
        vm_id = self._vm_id(params)
        name = params.get("name") or vm_id
        limit = None
        if params.get("incomingLimit") is not None:
            with translated(self.lv):
                limit = parse_int(params["incomingLimit"], "incomingLimit", minimum=1)
        self._expire_incoming()
        with self._lock:
            try:
                dom = self.conn.lookupByUUIDString(vm_id)
                if dom.isActive():
                    raise agent_error("exist", f"Virtual machine already exists here: vmID {vm_id}", vmID=vm_id)
            except self.lv.libvirtError:
                pass
            inc = self.incoming.get(vm_id)
            if inc is not None and inc.state == "running":
                raise agent_error("exist", f"an incoming migration of vmID {vm_id} is already expected", vmID=vm_id)
            if not self.incoming_slots.try_acquire(limit):
                raise agent_error("migrateLimit", "Incoming migration limit exceeded "
                                  f"({self.incoming_slots.taken} running, limit "
                                  f"{min(self.incoming_slots.limit, limit or self.incoming_slots.limit)})")
            self.incoming[vm_id] = Incoming(vm_id, str(name), time.time())
        log.info("VM %s (%s): expecting incoming migration", name, vm_id)
        return {"vmID": vm_id, "status": MIGRATION_DESTINATION}

    def _end_incoming(self, vm_id: str, state: str) -> None:
        with self._lock:
            inc = self.incoming.get(vm_id)
            if inc is None or inc.state != "running":
                return
            inc.state = state
            inc.ended_at = time.time()
            if inc.holds_slot:
                self.incoming_slots.release()
        log.info("VM %s: incoming migration %s", vm_id, state)

    def _expire_incoming(self) -> None:
        now = time.time()
        for vm_id, inc in list(self.incoming.items()):
            if inc.state == "running" and now - inc.since > self.config.incoming_timeout:
                self._end_incoming(vm_id, "expired")

    def _on_lifecycle(self, uuid: str, event: int, detail: int) -> None:
        lv = self.lv
        if self.capabilities.ready and event in (lv.VIR_DOMAIN_EVENT_STARTED, lv.VIR_DOMAIN_EVENT_STOPPED,
                                                 lv.VIR_DOMAIN_EVENT_UNDEFINED):
            self.capabilities.invalidate()   # the hard-limit warnings list the running VMs
        if uuid not in self.incoming:
            return
        if event == lv.VIR_DOMAIN_EVENT_RESUMED or (
                event == lv.VIR_DOMAIN_EVENT_STARTED and detail != lv.VIR_DOMAIN_EVENT_STARTED_MIGRATED) or (
                # a paused VM arrived (VIR_MIGRATE_PAUSED): libvirt's finish step says "paused"
                event == lv.VIR_DOMAIN_EVENT_SUSPENDED and detail == lv.VIR_DOMAIN_EVENT_SUSPENDED_PAUSED):
            self._end_incoming(uuid, "succeeded")
        elif event in (lv.VIR_DOMAIN_EVENT_STOPPED, lv.VIR_DOMAIN_EVENT_UNDEFINED):
            self._end_incoming(uuid, "failed")


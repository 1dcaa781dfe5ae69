"""Starting and stopping VMs through the engine: the host's agent runs them (VM.create/VM.destroy).

A VM is defined in the inventory with its spec (ferry.common.vmspec); `start` picks a host (the
one given, else an up host of the VM's cluster with room for it, as for a migration
destination), sends the spec to that host's agent and records where the VM runs. `stop`
destroys it there. Agent errors become OperationFailed naming the host and the agent's reason.
"""
from __future__ import annotations

import logging
from typing import Any

from ferry.common.errors import Conflict, InvalidInput, NotFound, OperationFailed
from ferry.common.jsonrpc import JsonRpcError
from ferry.engine.db import Database
from ferry.engine.db.records import HostStatus, VmRecord, VmStatus
from ferry.engine.monitor import AgentFactory, PlacementGuard, agent_client
from ferry.engine.services.planning import pick_destination

log = logging.getLogger("ferry.engine.vms")


class VmLifecycle:
    def __init__(self, db: Database, *, guard: PlacementGuard, agent: AgentFactory = agent_client):
        self.db = db
        self.guard = guard
        self.agent = agent

    def start(self, vm_ref: str, host: str | None = None) -> VmRecord:
        with self.db.unit_of_work() as store:
            vm = store.vms.get(vm_ref)
            if vm.status is not VmStatus.DOWN or vm.host is not None:
                raise Conflict(f"VM {vm.name!r} is already {vm.status.value} on host {vm.host!r}")
            if host is not None:
                try:
                    target = store.hosts.get(host)
                except NotFound:
                    raise InvalidInput("host", f"unknown host {host!r}") from None
                if target.cluster != vm.cluster:
                    raise InvalidInput("host", f"host {host!r} is in cluster {target.cluster!r}, not in the "
                                               f"VM's cluster {vm.cluster!r}")
                if target.status is not HostStatus.UP:
                    raise Conflict(f"host {host!r} is {target.status.value}; a VM starts only on an UP host")
            else:
                try:
                    target = pick_destination(store, vm)
                except Conflict as exc:
                    raise Conflict(str(exc).replace("migrate VM", "start VM")) from None
        with self.guard.busy(vm.name):
            try:
                answer = self.agent(target.agent_url).call("VM.create", {"spec": vm.spec})
            except JsonRpcError as exc:
                raise OperationFailed(f"starting VM {vm.name} on {target.name} failed: {exc.message}") from None
            status = VmStatus.PAUSED if (answer or {}).get("status") == "Paused" else VmStatus.UP
            with self.db.unit_of_work() as store:
                record = store.vms.update(vm.name, host=target.name, status=status.value)
        log.info("VM %s started on %s", vm.name, target.name)
        return record

    def stop(self, vm_ref: str) -> VmRecord:
        with self.db.unit_of_work() as store:
            vm = store.vms.get(vm_ref)
            if vm.host is None:
                raise Conflict(f"VM {vm.name!r} is not running (status {vm.status.value})")
            active = store.migrations.list(vm=vm.name, active=True)
            if active:
                raise Conflict(f"VM {vm.name!r} is migrating (migration {active[0].id}); wait or cancel it first")
            host = store.hosts.get(vm.host)
        with self.guard.busy(vm.name):
            try:
                self.agent(host.agent_url).call("VM.destroy", {"vmID": vm.uuid})
            except JsonRpcError as exc:
                if exc.name != "noVM":
                    raise OperationFailed(f"stopping VM {vm.name} on {host.name} failed: {exc.message}") from None
            with self.db.unit_of_work() as store:
                record = store.vms.update(vm.name, host=None, status=VmStatus.DOWN.value)
        log.info("VM %s stopped on %s", vm.name, host.name)
        return record


UNREACHABLE = {"status": None, "unreachable": True}


def vm_stats(agent: AgentFactory, agent_url: str, vm_uuid: str) -> dict[str, Any] | None:
    """VM.getStats from one agent; None when it does not run the VM; UNREACHABLE (status None,
    `unreachable` true) when the agent cannot be asked."""
    try:
        return agent(agent_url).call("VM.getStats", {"vmID": vm_uuid})
    except JsonRpcError as exc:
        return None if exc.name == "noVM" else dict(UNREACHABLE, error=exc.message)

"""The agent's JSON-RPC verbs (Vdsm's names and parameters) over one libvirt connection.

Each verb takes the request's params dict and returns a JSON-able result, or raises
`JsonRpcError` with a Vdsm-style code and a message naming the field and reason. Migrations run
in `MigrationJob` threads; the engine follows one with VM.getMigrationStatus, long-polled
through Ferry's `waitForChange` (ferry.agent.long_poll) so it hears of changes at once, >= 1 Hz.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ferry.agent import capabilities as caps
from ferry.agent import libvirt_edge, measure
from ferry.agent.config import AgentConfig
from ferry.agent.limits import MigrationSlots
from ferry.agent.long_poll import PARAM as WAIT_PARAM
from ferry.agent.long_poll import parse_wait_for_change
from ferry.agent.migration import MigrationJob
from ferry.agent.vms import (
    MIGRATION_DESTINATION,
    MIGRATION_SOURCE,
    domain_stats,
    domain_summary,
    domain_xml_from_create_params,
    status_name,
)
from ferry.common import memlock
from ferry.common.errors import InvalidInput
from ferry.common.jsonrpc import INVALID_PARAMS, JsonRpcClient, JsonRpcError, agent_error
from ferry.protocol.migrate_params import MigrateParams, parse_int, split_host_port
from ferry.protocol.status import INCOMING, JobState, MigrationStatus

log = logging.getLogger("ferry.agent")

AGENT_VERSION = "0.1.0"


def invalid(exc: InvalidInput) -> JsonRpcError:
    return JsonRpcError(INVALID_PARAMS, f"invalid parameter {exc}",
                        {"name": "invalidParams", "field": exc.field, "reason": exc.reason})


@dataclass
class Incoming:
    """A VM this host was asked to expect (VM.migrationCreate) and holds an incoming slot for."""

    vm_id: str
    name: str
    since: float
    state: str = "running"
    ended_at: float | None = None
    history: list = field(default_factory=list)


class Agent:
    def __init__(self, conn, lv, events, config: AgentConfig,
                 destination: Callable[[str], Any] | None = None,
                 zerocopy_facts: Callable[[], caps.ZerocopyFacts] | None = None):
        self.conn = conn
        self.lv = lv
        self.events = events
        self.config = config
        self.outgoing = MigrationSlots(config.max_outgoing)
        self.incoming_slots = MigrationSlots(config.max_incoming)
        self.jobs: dict[str, MigrationJob] = {}
        self.incoming: dict[str, Incoming] = {}
        self._lock = threading.RLock()
        self._destination = destination or self._default_destination
        self._zerocopy_facts_fn = zerocopy_facts or self._probe_zerocopy_facts
        self._static_facts: caps.ZerocopyFacts | None = None
        events.subscribe_all(libvirt_edge.LIFECYCLE, self._on_lifecycle)

    # ---- plumbing ------------------------------------------------------------------------------

    def methods(self) -> dict[str, Callable[[dict], Any]]:
        return {
            "Host.getCapabilities": self.host_get_capabilities,
            "Host.getStats": self.host_get_stats,
            "Host.getVMList": self.host_get_vm_list,
            "VM.create": self.vm_create,
            "VM.destroy": self.vm_destroy,
            "VM.getStats": self.vm_get_stats,
            "VM.migrate": self.vm_migrate,
            "VM.migrationCreate": self.vm_migration_create,
            "VM.migrateCancel": self.vm_migrate_cancel,
            "VM.migrateChangeParams": self.vm_migrate_change_params,
            "VM.getMigrationStatus": self.vm_get_migration_status,
            "VM.getDirtyRate": self.vm_get_dirty_rate,
        }

    def _default_destination(self, dst: str) -> JsonRpcClient:
        host, port = split_host_port(dst)
        host = f"[{host}]" if ":" in host else host
        if self.config.dev:  # plain HTTP between dev agents on loopback
            return JsonRpcClient(f"http://{host}:{port or self.config.port}/jsonrpc",
                                 timeout=self.config.destination_timeout)
        return JsonRpcClient(f"https://{host}:{port or self.config.port}/jsonrpc",  # our own host certificate
                             timeout=self.config.destination_timeout, tls=self.config.tls_files)

    def _vm_id(self, params: dict) -> str:
        vm_id = params.get("vmID")
        if not isinstance(vm_id, str) or not vm_id:
            raise invalid(InvalidInput("vmID", f"the VM's UUID is required, got {vm_id!r}"))
        return vm_id

    def _lookup(self, vm_id: str):
        try:
            return self.conn.lookupByUUIDString(vm_id)
        except self.lv.libvirtError:
            raise agent_error("noVM", f"Virtual machine does not exist: vmID {vm_id}", vmID=vm_id) from None

    def _running_job(self, vm_id: str) -> MigrationJob | None:
        job = self.jobs.get(vm_id)
        return job if job is not None and job.active else None

    def _status(self, vm_id: str, dom) -> str:
        if self._running_job(vm_id):
            return MIGRATION_SOURCE
        inc = self.incoming.get(vm_id)
        if inc is not None and inc.state == "running":
            return MIGRATION_DESTINATION
        return status_name(self.lv, dom.state()[0])

    # ---- Host.* --------------------------------------------------------------------------------

    def zerocopy_facts(self) -> caps.ZerocopyFacts:
        if self._static_facts is None:
            self._static_facts = self._zerocopy_facts_fn()
        hard_limits = []
        for dom in self._domains():
            try:
                kib = caps.hard_limit_kib(dom.XMLDesc(0))
            except Exception:  # noqa: BLE001 - a domain vanishing mid-listing
                continue
            if kib is not None:
                hard_limits.append((dom.name(), kib))
        return caps.ZerocopyFacts(**{**self._static_facts.__dict__, "vms_with_hard_limit": tuple(hard_limits)})

    def _probe_zerocopy_facts(self) -> caps.ZerocopyFacts:
        qemu_caps, qemu_error = None, None
        try:
            emulator = caps.emulator_from_domain_capabilities(self.conn.getDomainCapabilities(None, None, None, None, 0))
            qemu_caps = caps.probe_qemu_migration_capabilities(emulator or "/usr/bin/qemu-system-x86_64")
        except Exception as exc:  # noqa: BLE001 - reported as a failed check
            qemu_error = str(exc)
        zc_ok, zc_error = caps.kernel_msg_zerocopy()
        return caps.ZerocopyFacts(
            binding_has_flag=hasattr(self.lv, "VIR_MIGRATE_ZEROCOPY"),
            libvirt_version=self.conn.getLibVersion(),
            qemu_migration_capabilities=qemu_caps, qemu_probe_error=qemu_error,
            msg_zerocopy=zc_ok, msg_zerocopy_error=zc_error,
            memlock_hard_limit=memlock.memlock_hard_limit(), can_raise_memlock=memlock.can_raise_memlock(),
            optmem_max=caps.read_optmem_max())

    def zerocopy_available(self) -> bool:
        if self.config.old_agent or self.config.zerocopy_disabled:
            return False
        return caps.evaluate_zerocopy(self.zerocopy_facts())[0]

    def host_get_capabilities(self, params: dict) -> dict:
        result = {
            "hostname": self.conn.getHostname(),
            "agentVersion": AGENT_VERSION,
            "libvirtVersion": caps.version_text(self.conn.getLibVersion()),
            "qemuVersion": caps.version_text(self.conn.getVersion()),
            "cpuCores": os.cpu_count(),
            "memSize": self.conn.getInfo()[1],
            "kvmEnabled": os.path.exists("/dev/kvm"),
            "migration": {"parallel": True, "postcopy": True, "maxOutgoing": self.outgoing.limit,
                          "maxIncoming": self.incoming_slots.limit},
        }
        if not self.config.old_agent:
            supported, checks = caps.evaluate_zerocopy(self.zerocopy_facts())
            if self.config.zerocopy_disabled:
                supported = False
                checks.insert(0, {"check": "admin_disabled", "result": caps.FAIL,
                                  "reason": f"zero-copy turned off on this host: {self.config.zerocopy_disabled}"})
            result["zerocopy_migrations"] = supported
            result["zerocopy_checks"] = checks
        return result

    def _domains(self) -> list:
        return list(self.conn.listAllDomains(self.lv.VIR_CONNECT_LIST_DOMAINS_ACTIVE))

    def host_get_stats(self, params: dict) -> dict:
        self._expire_incoming()
        domains = self._domains()
        with self._lock:
            outgoing = sum(1 for j in self.jobs.values() if j.active)
            incoming = sum(1 for i in self.incoming.values() if i.state == "running")
        free_kib = 0
        try:
            free_kib = self.conn.getFreeMemory() // 1024
        except self.lv.libvirtError:
            pass
        return {
            "incomingVmMigrations": incoming,
            "outgoingVmMigrations": outgoing,
            "vmCount": len(domains),
            "vmActive": sum(1 for d in domains if d.state()[0] == self.lv.VIR_DOMAIN_RUNNING),
            "memFree": free_kib // 1024,
            "cpuCores": os.cpu_count(),
            "loadAvg": list(os.getloadavg()),
            "outgoingSlotsTaken": self.outgoing.taken,
            "incomingSlotsTaken": self.incoming_slots.taken,
        }

    def host_get_vm_list(self, params: dict) -> dict:
        vms = []
        for dom in self._domains():
            summary = domain_summary(self.lv, dom)
            summary["status"] = self._status(summary["vmID"], dom)
            vms.append(summary)
        return {"vms": vms}

    # ---- VM lifecycle --------------------------------------------------------------------------

    def vm_create(self, params: dict) -> dict:
        try:
            xml = domain_xml_from_create_params(params)
        except InvalidInput as exc:
            raise invalid(exc) from None
        try:
            dom = self.conn.createXML(xml, 0)
        except self.lv.libvirtError as exc:
            message = exc.get_error_message() or str(exc)
            if "already exists" in message:
                raise agent_error("exist", f"Virtual machine already exists: {message}") from None
            raise agent_error("unexpected", f"VM.create failed: {message}") from None
        log.info("VM %s (%s) created", dom.name(), dom.UUIDString())
        return {"vmID": dom.UUIDString(), "name": dom.name(), "status": self._status(dom.UUIDString(), dom)}

    def vm_destroy(self, params: dict) -> dict:
        vm_id = self._vm_id(params)
        incoming_only = bool(params.get("incomingOnly", False))
        with self._lock:
            inc = self.incoming.get(vm_id)
            pending_incoming = inc is not None and inc.state == "running"
            if pending_incoming:
                self._end_incoming(vm_id, "cancelled")
        if incoming_only and not pending_incoming:
            raise agent_error("noVM", f"no incoming migration of vmID {vm_id} to drop", vmID=vm_id)
        try:
            dom = self.conn.lookupByUUIDString(vm_id)
        except self.lv.libvirtError:
            if pending_incoming:
                return {"vmID": vm_id, "status": "Down"}
            raise agent_error("noVM", f"Virtual machine does not exist: vmID {vm_id}", vmID=vm_id) from None
        job = self._running_job(vm_id)
        if job is not None:
            job.cancel()
            job.wait(30)
        try:
            if dom.isActive():
                dom.destroy()
            if dom.isPersistent():
                dom.undefine()
        except self.lv.libvirtError as exc:
            raise agent_error("unexpected", f"VM.destroy failed: {exc.get_error_message() or exc}") from None
        log.info("VM %s destroyed", vm_id)
        return {"vmID": vm_id, "status": "Down"}

    def vm_get_stats(self, params: dict) -> dict:
        vm_id = self._vm_id(params)
        dom = self._lookup(vm_id)
        stats = domain_stats(self.lv, dom)
        stats["status"] = self._status(vm_id, dom)
        job = self.jobs.get(vm_id)
        if job is not None and job.active:
            stats["migrationProgress"] = job.status().progress
        return stats

    # ---- migration -----------------------------------------------------------------------------

    def vm_migrate(self, params: dict) -> dict:
        vm_id = self._vm_id(params)
        raw = params.get("params")
        if raw is None:  # also accept the migration parameters beside vmID
            raw = {k: v for k, v in params.items() if k != "vmID"}
        try:
            parsed, unrecognized = MigrateParams.from_wire(raw, knows_zerocopy=not self.config.old_agent)
        except InvalidInput as exc:
            raise invalid(exc) from None
        dom = self._lookup(vm_id)
        with self._lock:
            if self._running_job(vm_id):
                raise agent_error("migrationInProgress", f"VM {vm_id} is already migrating", vmID=vm_id)
            state = dom.state()[0]
            if state != self.lv.VIR_DOMAIN_RUNNING:
                raise agent_error("vmNotRunning", f"VM {vm_id} is not running (status {status_name(self.lv, state)})",
                                  vmID=vm_id)
            if unrecognized:
                log.info("VM %s: parameters %s were not recognized", vm_id, list(unrecognized))
            job = MigrationJob(
                vm_id=vm_id, vm_name=dom.name(), dom=dom, lv=self.lv, events=self.events, params=parsed,
                unrecognized=unrecognized, slots=self.outgoing, destination=self._destination,
                zerocopy_available=self.zerocopy_available() if parsed.zerocopy else False,
                libvirt_transport=self.config.libvirt_transport, status_interval=self.config.status_interval,
                retry_interval=self.config.migrate_limit_retry)
            self.jobs[vm_id] = job
            job.start()
        return {"status": {"code": 0, "message": "Migration in progress"}, "progress": 0}

    def vm_migrate_cancel(self, params: dict) -> dict:
        vm_id = self._vm_id(params)
        job = self._running_job(vm_id)
        if job is None:
            self._lookup(vm_id)
            raise agent_error("migCancelErr", f"Migration not in progress for VM {vm_id}", vmID=vm_id)
        job.cancel()
        return {"status": {"code": 0, "message": "Migration cancel requested"}}

    def vm_migrate_change_params(self, params: dict) -> dict:
        vm_id = self._vm_id(params)
        raw = params.get("params", {})
        if not isinstance(raw, dict) or "maxBandwidth" not in raw:
            raise invalid(InvalidInput("params.maxBandwidth", "is required (MiB/s)"))
        try:
            mibs = parse_int(raw["maxBandwidth"], "maxBandwidth", minimum=1)
        except InvalidInput as exc:
            raise invalid(exc) from None
        job = self._running_job(vm_id)
        if job is None:
            self._lookup(vm_id)
            raise agent_error("migCancelErr", f"Migration not in progress for VM {vm_id}", vmID=vm_id)
        try:
            job.change_max_bandwidth(mibs)
        except self.lv.libvirtError as exc:
            raise agent_error("migrateErr", f"cannot change bandwidth: {exc.get_error_message() or exc}") from None
        return {"status": {"code": 0, "message": f"maxBandwidth set to {mibs} MiB/s"}}

    def vm_get_migration_status(self, params: dict) -> dict:
        """The migration's status; with Ferry's `waitForChange` {version, timeout} (see
        ferry.agent.long_poll) it answers once the outgoing migration's status version differs
        from the one given, or at the timeout. Each call holds only its own request thread."""
        vm_id = self._vm_id(params)
        try:
            wait = parse_wait_for_change(params.get(WAIT_PARAM))
        except InvalidInput as exc:
            raise invalid(exc) from None
        job = self.jobs.get(vm_id)
        if job is not None:
            if wait is not None and wait.timeout > 0:
                return job.wait_for_change(wait.version, wait.timeout).to_wire()
            return job.status().to_wire()
        inc = self.incoming.get(vm_id)
        if inc is not None:
            return MigrationStatus(JobState(inc.state), vm_id=vm_id, direction=INCOMING, started_at=inc.since,
                                   ended_at=inc.ended_at, message=f"incoming migration {inc.state}").to_wire()
        self._lookup(vm_id)
        return MigrationStatus.idle(vm_id).to_wire()

    def vm_get_dirty_rate(self, params: dict) -> dict:
        """VM.getDirtyRate {vmID, seconds}: ferry.agent.measure (waits `seconds` in this request only)."""
        vm_id = self._vm_id(params)
        try:
            seconds = measure.parse_seconds(params.get("seconds"))
        except InvalidInput as exc:
            raise invalid(exc) from None
        dom = self._lookup(vm_id)
        return measure.get_dirty_rate(self.conn, self.lv, dom, seconds, migrating=self._running_job(vm_id) is not None)

    # ---- destination side ----------------------------------------------------------------------

    def vm_migration_create(self, params: dict) -> dict:
        vm_id = self._vm_id(params)
        name = params.get("name") or vm_id
        limit = None
        if params.get("incomingLimit") is not None:
            try:
                limit = parse_int(params["incomingLimit"], "incomingLimit", minimum=1)
            except InvalidInput as exc:
                raise invalid(exc) from None
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
            self.incoming_slots.release()
        log.info("VM %s: incoming migration %s", vm_id, state)

    def _expire_incoming(self) -> None:
        now = time.time()
        for vm_id, inc in list(self.incoming.items()):
            if inc.state == "running" and now - inc.since > self.config.incoming_timeout:
                self._end_incoming(vm_id, "expired")

    def _on_lifecycle(self, uuid: str, event: int, detail: int) -> None:
        lv = self.lv
        if uuid not in self.incoming:
            return
        if event == lv.VIR_DOMAIN_EVENT_RESUMED or (
                event == lv.VIR_DOMAIN_EVENT_STARTED and detail != lv.VIR_DOMAIN_EVENT_STARTED_MIGRATED):
            self._end_incoming(uuid, "succeeded")
        elif event in (lv.VIR_DOMAIN_EVENT_STOPPED, lv.VIR_DOMAIN_EVENT_UNDEFINED):
            self._end_incoming(uuid, "failed")


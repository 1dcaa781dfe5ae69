"""The agent's JSON-RPC verbs (Vdsm's names and parameters) over one libvirt connection.

Each verb takes the request's params dict and returns a JSON-able result, or raises
`JsonRpcError` with a Vdsm-style code and a message naming the field and reason. Migrations run
in `MigrationJob` threads; the engine follows one with VM.getMigrationStatus, long-polled
through Ferry's `waitForChange` (ferry.agent.long_poll) so it hears of changes at once, >= 1 Hz.
The host's own verbs are in ferry.agent.host_side, the destination's in ferry.agent.incoming;
`Agent` joins them over one connection, one lock and the migration slots.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ferry.agent import capabilities as caps
from ferry.agent import force_complete, libvirt_edge, measure
from ferry.agent.adopted import AdoptedJob, running_migrations
from ferry.agent.config import AgentConfig
from ferry.agent.hard_limits import HardLimits, effective_limits
from ferry.agent.host_caps import CapabilitiesCache
from ferry.agent.host_side import HostSide
from ferry.agent.incoming import DestinationSide, Incoming
from ferry.agent.kept import KeptAnswers, call_within
from ferry.agent.limits import MigrationSlots
from ferry.agent.long_poll import PARAM as WAIT_PARAM
from ferry.agent.long_poll import parse_wait_for_change
from ferry.agent.migration import MigrationJob
from ferry.agent.migration_watch import qemu_monitor_command
from ferry.agent.rpc_errors import invalid, libvirt_message, translated  # noqa: F401 - the verbs' one translation
from ferry.agent.vms import (
    MIGRATION_DESTINATION,
    MIGRATION_SOURCE,
    domain_stats,
    domain_xml_from_create_params,
    migration_refusal,
    status_name,
)
from ferry.common.errors import InvalidInput
from ferry.common.jsonrpc import JsonRpcClient, JsonRpcError, agent_error
from ferry.protocol.migrate_params import MigrateParams, parse_int, split_host_port
from ferry.protocol.status import INCOMING, OUTGOING, JobState, MigrationStatus

log = logging.getLogger("ferry.agent")

SLOW_VERB_S = 0.25         # a verb that took longer in the agent itself is logged (it should not happen)
DESTROY_JOB_WAIT_S = 0.5   # VM.destroy gives a cancelled migration this long to end first
CHANGE_WAIT_S = 0.5        # VM.migrateChangeParams waits this long for libvirt, then answers "requested"


class Agent(HostSide, DestinationSide):
    def __init__(self, conn, lv, events, config: AgentConfig,
                 destination: Callable[[str], Any] | None = None,
                 zerocopy_facts: Callable[[], caps.ZerocopyFacts] | None = None):
        self.conn = conn
        self.link: libvirt_edge.LibvirtLink | None = getattr(conn, "link", None)  # None: a plain connection
        self.lv = lv
        self.events = events
        self.config = config
        self.outgoing = MigrationSlots(config.max_outgoing)
        self.incoming_slots = MigrationSlots(config.max_incoming)
        self.jobs: dict[str, MigrationJob] = {}
        self.monitor_command = qemu_monitor_command   # QEMU's monitor (live throttle, zero-copy misses)
        self.incoming: dict[str, Incoming] = {}
        self._lock = threading.RLock()
        self._destination = destination or self._default_destination
        self._zerocopy_facts_fn = zerocopy_facts or self._probe_zerocopy_facts
        self._static_facts: caps.ZerocopyFacts | None = None
        self.capabilities = CapabilitiesCache(self._compute_capabilities)
        self.kept = KeptAnswers()       # libvirt queries answered within a deadline (ferry.agent.kept)
        events.subscribe_all(libvirt_edge.LIFECYCLE, self._on_lifecycle)

    # ---- plumbing ------------------------------------------------------------------------------

    def methods(self) -> dict[str, Callable[[dict], Any]]:
        return {verb: self._guarded(verb, fn) for verb, fn in self._verbs().items()}

    def _libvirt_up(self) -> bool:
        return self.link is None or self.link.alive

    def _unavailable(self) -> JsonRpcError:
        reason = self.link.describe() if self.link is not None else "libvirt unavailable"
        return agent_error("libvirtUnavailable", reason)

    def _guarded(self, verb: str, fn: Callable[[dict], Any]) -> Callable[[dict], Any]:
        """While libvirt is away every verb answers libvirtUnavailable at once, except
        VM.getMigrationStatus of a migration this agent follows (answered from memory)."""
        def call(params: dict) -> Any:
            if not self._libvirt_up() and verb != "VM.getMigrationStatus":
                raise self._unavailable()
            t0 = time.monotonic()
            try:
                return fn(params)
            except libvirt_edge.LibvirtUnavailable:
                raise self._unavailable() from None
            except (JsonRpcError, self.lv.libvirtError):
                if not self._libvirt_up():
                    raise self._unavailable() from None
                raise
            finally:
                took = time.monotonic() - t0
                if took > SLOW_VERB_S and not (verb == "VM.getMigrationStatus" and params.get(WAIT_PARAM)):
                    log.warning("slow verb: %s took %.3f s in the agent", verb, took)
        call.__name__ = fn.__name__
        return call

    def _verbs(self) -> dict[str, Callable[[dict], Any]]:
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
            "VM.migrateForceComplete": lambda params: force_complete.handle(self, params),
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

    def _migrating(self, vm_id: str) -> bool:
        inc = self.incoming.get(vm_id)
        return self._running_job(vm_id) is not None or (inc is not None and inc.state == "running")

    # ---- adoption -----------------------------------------------------------------------------

    def adopt_running_jobs(self) -> list[str]:
        """Follow the migrations libvirt runs that no job of ours follows (ferry.agent.adopted);
        returns the adopted VM ids. Outgoing ones report through VM.getMigrationStatus."""
        adopted = []
        for dom, vm_id, kind, stats in running_migrations(self.lv, self._domains(), self._migrating):
            try:
                with self._lock:
                    if self._migrating(vm_id):
                        continue
                    if kind == OUTGOING:
                        job = AdoptedJob(vm_id=vm_id, vm_name=dom.name(), dom=dom, lv=self.lv, events=self.events,
                                         slots=self.outgoing, stats=stats,
                                         status_interval=self.config.status_interval)
                        self.jobs[vm_id] = job
                        job.start()
                    else:
                        slot = self.incoming_slots.try_acquire()   # held, if one is free, until it ends
                        self.incoming[vm_id] = Incoming(vm_id, dom.name(), time.time(), holds_slot=slot)
                adopted.append(vm_id)
                log.info("VM %s (%s): adopted a running %s migration from libvirt", dom.name(), vm_id, kind)
            except self.lv.libvirtError as exc:   # a domain that went away meanwhile
                log.debug("adopting migrations: %s", exc)
        return adopted

    def on_libvirt_connected(self, conn) -> None:
        """A (new) libvirt connection: refresh what we keep, adopt migrations libvirt runs
        (in its own thread: a destination's job query may wait behind its migration)."""
        self.capabilities.invalidate()
        threading.Thread(target=self._adopt_quietly, name="adopt-migrations", daemon=True).start()

    def _adopt_quietly(self) -> None:
        try:
            self.adopt_running_jobs()
        except Exception:  # noqa: BLE001 - adoption is best effort; libvirt stays the truth
            log.exception("adopting running migrations failed")

    # ---- VM lifecycle --------------------------------------------------------------------------

    def vm_create(self, params: dict) -> dict:
        with translated(self.lv):
            xml = domain_xml_from_create_params(params)
        with translated(self.lv, "VM.create failed", exists=True):
            dom = self.conn.createXML(xml, 0)
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
            # Not waiting behind the migration: libvirt destroys a migrating domain, and the
            # job then ends as cancelled on its own.
            job.cancel()
            job.wait(DESTROY_JOB_WAIT_S)
        with translated(self.lv, "VM.destroy failed"):
            if dom.isActive():
                dom.destroy()
            if dom.isPersistent():
                dom.undefine()
        log.info("VM %s destroyed", vm_id)
        return {"vmID": vm_id, "status": "Down"}

    def vm_get_stats(self, params: dict) -> dict:
        vm_id = self._vm_id(params)

        def query() -> dict:
            dom = self._lookup(vm_id)
            try:
                return domain_stats(self.lv, dom)
            except self.lv.libvirtError:   # it left meanwhile (a migration ending): as if looked up now
                raise agent_error("noVM", f"Virtual machine does not exist: vmID {vm_id}", vmID=vm_id) from None

        stats, stale = self.kept.get(("VM.getStats", vm_id), query)
        stats = dict(stats)
        if self._running_job(vm_id):
            stats["status"] = MIGRATION_SOURCE
        elif self._migrating(vm_id):
            stats["status"] = MIGRATION_DESTINATION
        if stale is not None:
            stats["staleSeconds"] = round(stale, 3)
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
        with translated(self.lv):
            parsed, unrecognized = MigrateParams.from_wire(raw, knows_zerocopy=not self.config.old_agent)
        dom = self._lookup(vm_id)
        with self._lock:
            if self._running_job(vm_id):
                raise agent_error("migrationInProgress", f"VM {vm_id} is already migrating", vmID=vm_id)
            state, reason = dom.state()[:2]
            refusal = migration_refusal(self.lv, state, reason)
            if refusal:
                raise agent_error("vmNotRunning", f"VM {vm_id} {refusal}", vmID=vm_id)
            if unrecognized:
                log.info("VM %s: parameters %s were not recognized", vm_id, list(unrecognized))
            job = MigrationJob(
                vm_id=vm_id, vm_name=dom.name(), dom=dom, lv=self.lv, events=self.events, params=parsed,
                unrecognized=unrecognized, slots=self.outgoing, destination=self._destination,
                zerocopy_available=self.zerocopy_available() if parsed.zerocopy else False,
                libvirt_transport=self.config.libvirt_transport, status_interval=self.config.status_interval,
                retry_interval=self.config.migrate_limit_retry,
                hard_limits=effective_limits(
                    HardLimits(self.config.max_time_per_gib, self.config.progress_timeout),
                    max_time_per_gib=parsed.max_time_per_gib, progress_timeout=parsed.progress_timeout,
                    has_schedule=parsed.schedule is not None),
                memory_mib=dom.info()[1] // 1024,
                qemu_version=self.conn.getVersion() if parsed.adaptive else None,
                monitor_command=self.monitor_command if parsed.adaptive or parsed.zerocopy else None)
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
        with translated(self.lv):
            mibs = parse_int(raw["maxBandwidth"], "maxBandwidth", minimum=1)
        job = self._running_job(vm_id)
        if job is None:
            self._lookup(vm_id)
            raise agent_error("migCancelErr", f"Migration not in progress for VM {vm_id}", vmID=vm_id)
        # libvirt holds the domain while a migration ends: answer within the deadline regardless.
        finished, _, error = call_within(lambda: job.change_max_bandwidth(mibs), CHANGE_WAIT_S)
        if not finished:
            return {"status": {"code": 0, "message": f"maxBandwidth {mibs} MiB/s requested; libvirt is busy "
                                                     "(the migration may be ending) and applies it when it answers"}}
        if isinstance(error, self.lv.libvirtError):
            if not job.active or error.get_error_code() == self.lv.VIR_ERR_NO_DOMAIN:
                raise agent_error("migCancelErr", f"Migration not in progress for VM {vm_id} (it has ended)",
                                  vmID=vm_id) from None
            with translated(self.lv, "cannot change bandwidth", name="migrateErr"):
                raise error
        if error is not None:
            raise error
        return {"status": {"code": 0, "message": f"maxBandwidth set to {mibs} MiB/s"}}

    def vm_get_migration_status(self, params: dict) -> dict:
        """The migration's status; with Ferry's `waitForChange` {version, timeout} (see
        ferry.agent.long_poll) it answers once the outgoing migration's status version differs
        from the one given, or at the timeout. Each call holds only its own request thread."""
        vm_id = self._vm_id(params)
        with translated(self.lv):
            wait = parse_wait_for_change(params.get(WAIT_PARAM))
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
        with translated(self.lv):
            seconds = measure.parse_seconds(params.get("seconds"))
        dom = self._lookup(vm_id)
        return measure.get_dirty_rate(self.conn, self.lv, dom, seconds, migrating=self._running_job(vm_id) is not None)

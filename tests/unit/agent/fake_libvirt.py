"""A recording fake of a libvirt connection and its domains (unit tests only).

It has the methods of `libvirt.virConnect` / `virDomain` the agent calls, records every call
in `calls` as (method, args), and runs a migration as a script: `dom.migration_script(dom)`
runs inside migrateToURI3 and may set job stats, fire migration-iteration events, wait for
abortJob, and return (success) or raise libvirtError (failure), as libvirt would.
"""
from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET

import libvirt

GiB = 1 << 30


class FakeDomain:
    def __init__(self, conn: FakeConnection, xml: str, persistent: bool = False):
        root = ET.fromstring(xml)
        self.conn = conn
        self.xml = xml
        self._name = root.findtext("name")
        self._uuid = root.findtext("uuid") or f"00000000-0000-0000-0000-{len(conn.domains):012d}"
        self.memory_kib = int(root.findtext("memory") or 1024) * (1024 if root.find("memory") is not None
                                                                   and root.find("memory").get("unit") == "MiB" else 1)
        self.vcpus = int(root.findtext("vcpu") or 1)
        self.running = True
        self.paused = False
        self.pause_reason = libvirt.VIR_DOMAIN_PAUSED_USER
        self.persistent = persistent
        self.postcopy_error: str | None = None   # migrateStartPostCopy raises this
        self.postcopy_event = True               # a successful switch fires SUSPENDED_POSTCOPY
        self.job_stats: dict = {"type": libvirt.VIR_DOMAIN_JOB_NONE}
        self.completed_job_stats: dict = {"type": libvirt.VIR_DOMAIN_JOB_NONE}
        self.aborted = threading.Event()
        self.migration_script = None
        # dirty-rate calculation (VM.getDirtyRate): what the next one reports, modes libvirt refuses
        self.dirty_rate_mibs = 0
        self.refuse_dirty_modes: tuple = ()
        self.dirty_calc: tuple | None = None       # (seconds, flags) of the calculation started
        self.memory_stats: dict = {}
        self.xml_blocker: threading.Event | None = None
        # QEMU's monitor (libvirt_qemu.qemuMonitorCommand): answers by command name, or this error
        self.qmp: dict = {}
        self.qmp_error: str | None = None

    # recording
    def _rec(self, method, *args):
        self.conn.calls.append((method, (self._uuid,) + args))

    def UUIDString(self):
        return self._uuid

    def name(self):
        return self._name

    def state(self):
        self.conn._check()
        if not self.running:
            return [libvirt.VIR_DOMAIN_SHUTOFF, 1]
        if self.paused:
            return [libvirt.VIR_DOMAIN_PAUSED, self.pause_reason]
        return [libvirt.VIR_DOMAIN_RUNNING, 1]

    def suspend(self):
        self._rec("suspend")
        self.paused, self.pause_reason = True, libvirt.VIR_DOMAIN_PAUSED_USER
        return 0

    def resume(self):
        self._rec("resume")
        self.paused = False
        return 0

    def info(self):
        self.conn._check()
        return [self.state()[0], self.memory_kib, self.memory_kib, self.vcpus, 123456789]

    def isActive(self):
        return int(self.running)

    def isPersistent(self):
        return int(self.persistent)

    def XMLDesc(self, flags=0):
        self.conn._check()
        if self.xml_blocker is not None and not flags:
            self.xml_blocker.wait(30)   # libvirt holds a migrating domain's live XML
        self._rec("XMLDesc", flags)
        return self.xml

    def destroy(self):
        self._rec("destroy")
        self.running = False
        if not self.persistent:
            self.conn.domains.pop(self._uuid, None)
        self.conn.fire_lifecycle(self, libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED)
        return 0

    def undefine(self):
        self._rec("undefine")
        self.conn.domains.pop(self._uuid, None)
        return 0

    def jobStats(self, flags=0):
        self.conn._check()
        if flags & libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED:
            return dict(self.completed_job_stats)
        return dict(self.job_stats)

    def abortJob(self):
        self._rec("abortJob")
        self.aborted.set()
        return 0

    def migrateSetMaxDowntime(self, ms, flags=0):
        self._rec("migrateSetMaxDowntime", ms, flags)
        return 0

    def migrateSetMaxSpeed(self, bandwidth, flags=0):
        self._rec("migrateSetMaxSpeed", bandwidth, flags)
        return 0

    def migrateStartPostCopy(self, flags=0):
        self._rec("migrateStartPostCopy", flags)
        if self.postcopy_error:
            raise libvirt.libvirtError(self.postcopy_error)
        self.paused, self.pause_reason = True, libvirt.VIR_DOMAIN_PAUSED_POSTCOPY
        if self.postcopy_event:
            self.conn.fire_lifecycle(self, libvirt.VIR_DOMAIN_EVENT_SUSPENDED,
                                     libvirt.VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY)
        return 0

    def startDirtyRateCalc(self, seconds, flags=0):
        self._rec("startDirtyRateCalc", seconds, flags)
        if flags in self.refuse_dirty_modes:
            raise libvirt.libvirtError("unsupported configuration: mode not supported by this QEMU")
        self.dirty_calc = (seconds, flags)
        return 0

    def qemu_monitor(self, command: dict) -> dict:
        """What libvirt_qemu.qemuMonitorCommand(dom, json, 0) answers, parsed (recorded)."""
        self._rec("qemuMonitorCommand", dict(command))
        if self.qmp_error:
            raise libvirt.libvirtError(self.qmp_error)
        answer = self.qmp.get(command.get("execute"))
        return answer(self) if callable(answer) else (answer if answer is not None else {"return": {}})

    def memoryStats(self):
        return dict(self.memory_stats)

    def migrateToURI3(self, duri, params, flags):
        self._rec("migrateToURI3", duri, dict(params), flags)
        if self.conn.refuse_migration:
            raise libvirt.libvirtError(self.conn.refuse_migration)
        if self.migration_script is not None:
            self.migration_script(self)
        self.running = False
        if not self.persistent:       # a persistent domain stays defined, shut off (reason migrated)
            self.conn.domains.pop(self._uuid, None)
        return 0


class FakeConnection:
    def __init__(self, hostname="fake-h1", lib_version=11_003_000, qemu_version=10_000_002):
        self.calls: list = []
        self.domains: dict[str, FakeDomain] = {}
        self.callbacks: dict[int, list] = {}
        self.hostname = hostname
        self.lib_version = lib_version
        self.qemu_version = qemu_version
        self.refuse_migration: str | None = None
        self.alive = True
        self.closed = False

    # a connection that dies (libvirtd gone): every call then fails as libvirt's do
    def die(self):
        self.alive = False

    def _check(self):
        if not self.alive:
            raise libvirt.libvirtError("internal error: client socket is closed")

    def isAlive(self):
        return int(self.alive)

    def close(self):
        self.closed = True
        return 0

    def add_domain(self, xml: str, persistent=False) -> FakeDomain:
        dom = FakeDomain(self, xml, persistent)
        self.domains[dom.UUIDString()] = dom
        return dom

    # libvirt API
    def createXML(self, xml, flags=0):
        self._check()
        self.calls.append(("createXML", (xml, flags)))
        name = ET.fromstring(xml).findtext("name")
        if any(d.name() == name for d in self.domains.values()):
            raise libvirt.libvirtError(f"operation failed: domain '{name}' already exists with uuid x")
        return self.add_domain(xml)

    def lookupByUUIDString(self, uuid):
        self._check()
        try:
            return self.domains[uuid]
        except KeyError:
            raise libvirt.libvirtError(f"Domain not found: no domain with matching uuid '{uuid}'") from None

    def listAllDomains(self, flags=0):
        self._check()
        return [d for d in self.domains.values() if d.running]

    def getLibVersion(self):
        self._check()
        return self.lib_version

    def getVersion(self):
        self._check()
        return self.qemu_version

    def getHostname(self):
        self._check()
        return self.hostname

    def getInfo(self):
        self._check()
        return ["x86_64", 24000, 2, 2000, 1, 1, 2, 1]

    def getFreeMemory(self):
        self._check()
        return 8 * GiB

    def getDomainCapabilities(self, *args):
        self._check()
        return "<domainCapabilities><path>/usr/bin/qemu-system-x86_64</path></domainCapabilities>"

    def domainListGetStats(self, doms, stats=0, flags=0):
        self.calls.append(("domainListGetStats", (tuple(d.UUIDString() for d in doms), stats, flags)))
        modes = {libvirt.VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING: "page-sampling",
                 libvirt.VIR_DOMAIN_DIRTYRATE_MODE_DIRTY_RING: "dirty-ring"}
        out = []
        for d in doms:
            if d.dirty_calc is None:
                out.append((d, {"dirtyrate.calc_status": libvirt.VIR_DOMAIN_DIRTYRATE_UNSTARTED}))
                continue
            secs, mode = d.dirty_calc
            out.append((d, {"dirtyrate.calc_status": libvirt.VIR_DOMAIN_DIRTYRATE_MEASURED,
                            "dirtyrate.calc_period": secs, "dirtyrate.calc_mode": modes[mode],
                            "dirtyrate.megabytes_per_second": d.dirty_rate_mibs}))
        return out

    def domainEventRegisterAny(self, dom, event_id, cb, opaque):
        self._check()
        self.callbacks.setdefault(event_id, []).append(cb)
        return len(self.callbacks)

    def domainEventDeregisterAny(self, cb_id):
        return 0

    # event helpers (what libvirt's event loop thread would deliver)
    def fire_iteration(self, dom, iteration):
        for cb in self.callbacks.get(libvirt.VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION, []):
            cb(self, dom, iteration, None)

    def fire_lifecycle(self, dom, event, detail):
        for cb in self.callbacks.get(libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, []):
            cb(self, dom, event, detail, None)

    def fire_job_completed(self, dom, params):
        for cb in self.callbacks.get(libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, []):
            cb(self, dom, params, None)

    def named_calls(self, method):
        return [args for m, args in self.calls if m == method]


def domain_xml(name="vm1", uuid="11111111-2222-3333-4444-555555555555", memory_mib=1024, hard_limit_kib=None):
    memtune = f"<memtune><hard_limit unit='KiB'>{hard_limit_kib}</hard_limit></memtune>" if hard_limit_kib else ""
    return (f"<domain type='qemu'><name>{name}</name><uuid>{uuid}</uuid>"
            f"<memory unit='MiB'>{memory_mib}</memory><vcpu>2</vcpu>{memtune}</domain>")


def iterating_script(iterations, *, total=GiB, step_remaining=None, downtime_ms=42, pause=0.03,
                     fail_message=None, expected_downtime_ms=None):
    """A migration that goes through `iterations`, firing an event and updating stats for each.

    `expected_downtime_ms`: put a `downtime` in the running job's stats too, as real libvirt does
    (QEMU's expected downtime while the job runs).

    Ends with success (JOB_COMPLETED event with the downtime), or raises libvirt's
    "operation aborted" if abortJob was called, or `fail_message` if given.
    """
    def script(dom):
        conn = dom.conn
        remaining = total
        for it in iterations:
            if dom.aborted.is_set():
                break
            remaining = step_remaining(it) if step_remaining else max(total // 10, remaining // 2)
            dom.job_stats = {"type": libvirt.VIR_DOMAIN_JOB_UNBOUNDED, "data_total": total,
                             "data_processed": total - remaining, "data_remaining": remaining,
                             "memory_total": total, "memory_remaining": remaining, "memory_bps": 100 << 20,
                             "memory_dirty_rate": 1000, "memory_page_size": 4096, "memory_iteration": it,
                             "time_elapsed": it * 100}
            if expected_downtime_ms is not None:
                dom.job_stats["downtime"] = expected_downtime_ms
            conn.fire_iteration(dom, it)
            time.sleep(pause)
        if dom.aborted.is_set():
            dom.job_stats = {"type": libvirt.VIR_DOMAIN_JOB_NONE}
            raise libvirt.libvirtError("operation aborted: migration out: canceled by client")
        if fail_message:
            raise libvirt.libvirtError(fail_message)
        conn.fire_job_completed(dom, {"type": libvirt.VIR_DOMAIN_JOB_COMPLETED, "data_total": total,
                                      "data_processed": total + 12345, "data_remaining": 0,
                                      "memory_total": total, "memory_remaining": 0, "downtime": downtime_ms,
                                      "time_elapsed": 2500, "memory_iteration": iterations[-1] if iterations else 0})
    return script

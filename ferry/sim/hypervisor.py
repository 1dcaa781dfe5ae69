"""A simulated libvirt connection: the subset of virConnect / virDomain the agent calls, run by
the clock instead of QEMU (scale tests only: see ferry.sim).

Not a recording fake (tests/unit/agent/fake_libvirt.py is that): nothing is scripted. A VM
runs until destroyed; `migrateToURI3` blocks for as long as the pre-copy model says
(ferry.sim.precopy), pass by pass, reports job stats and libvirt's migration-iteration,
lifecycle and job-completed events, obeys abortJob / migrateSetMaxDowntime / migrateSetMaxSpeed /
migrateStartPostCopy while it runs, and hands the guest to the destination host through
`ferry.sim.wire` (prepare at the start, finish or abort at the end), as libvirt's
peer-to-peer migration does between two libvirtds.
"""
from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import libvirt

from ferry.sim import precopy
from ferry.sim.precopy import SimVm

LIB_VERSION = 11_003_000    # what the simulated hosts report: libvirt 11.3.0, QEMU 10.0.2
QEMU_VERSION = 10_000_002
DEFAULT_BANDWIDTH_MIBS = 1100.0   # a 10 Gbit/s link, less protocol overhead
PREPARE_S = 0.75            # libvirt's prepare and confirm around QEMU's own time: together the
CONFIRM_S = 0.75            # model's FIXED_COST_S (1.5 s), split as ferry.forecast.live assumes
SLICE_S = 0.1               # how often a running pass looks at abort / post-copy requests


def domain_xml(vm: SimVm) -> str:
    return (f"<domain type='kvm'><name>{vm.name}</name><uuid>{vm.uuid}</uuid>"
            f"<memory unit='MiB'>{vm.memory_mib}</memory><vcpu>{vm.vcpus}</vcpu></domain>")


class SimDomain:
    def __init__(self, conn: SimConnection, vm: SimVm, *, running: bool = True, persistent: bool = False):
        self.conn = conn
        self.vm = vm
        self.running = running
        self.paused = False                # an incoming guest before the switch-over
        self.persistent = persistent
        self._lock = threading.Lock()
        self._job: dict = {"type": precopy.JOB_NONE}
        self._abort = threading.Event()
        self._postcopy = threading.Event()
        self._downtime_ms: float | None = None
        self._bandwidth_mibs: float | None = None
        self._dirty_calc: tuple[int, int] | None = None

    # ---- identity and state --------------------------------------------------------------------
    def UUIDString(self) -> str:  # noqa: N802 - libvirt's names
        return self.vm.uuid

    def name(self) -> str:
        return self.vm.name

    def state(self, flags: int = 0) -> list[int]:
        if not self.running:
            return [libvirt.VIR_DOMAIN_SHUTOFF, 0]
        if self.paused:
            return [libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_MIGRATION]
        return [libvirt.VIR_DOMAIN_RUNNING, 1]

    def info(self) -> list[int]:
        kib = self.vm.memory_mib * 1024
        return [self.state()[0], kib, kib, self.vm.vcpus, int(time.monotonic() * 1e9)]

    def isActive(self) -> int:  # noqa: N802
        return int(self.running)

    def isPersistent(self) -> int:  # noqa: N802
        return int(self.persistent)

    def XMLDesc(self, flags: int = 0) -> str:  # noqa: N802
        return domain_xml(self.vm)

    def memoryStats(self) -> dict:  # noqa: N802
        return {"actual": self.vm.memory_mib * 1024, "rss": int(self.vm.touched_mib * 1024)}

    def destroy(self) -> int:
        self.running = False
        self.conn._drop(self, libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED)
        return 0

    def undefine(self) -> int:
        self.persistent = False
        self.conn._forget(self.vm.uuid)
        return 0

    # ---- dirty rate ----------------------------------------------------------------------------
    def startDirtyRateCalc(self, seconds: int, flags: int = 0) -> int:  # noqa: N802
        self._dirty_calc = (int(seconds), int(flags))
        return 0

    # ---- the migration job ---------------------------------------------------------------------
    def jobStats(self, flags: int = 0) -> dict:  # noqa: N802
        with self._lock:
            return dict(self._job)

    def abortJob(self) -> int:  # noqa: N802
        self._abort.set()
        return 0

    def migrateSetMaxDowntime(self, ms: int, flags: int = 0) -> int:  # noqa: N802
        self._downtime_ms = float(ms)
        return 0

    def migrateSetMaxSpeed(self, bandwidth: int, flags: int = 0) -> int:  # noqa: N802
        self._bandwidth_mibs = float(bandwidth)
        return 0

    def migrateStartPostCopy(self, flags: int = 0) -> int:  # noqa: N802
        self._postcopy.set()
        return 0

    def migrateToURI3(self, duri: str, params: dict, flags: int) -> int:  # noqa: N802
        """Blocks until the migration ends: 0 on success, libvirtError otherwise (the VM stays)."""
        dst = urlsplit(duri).hostname or ""
        if not self.running or self.paused:
            raise libvirt.libvirtError("Requested operation is not valid: domain is not running")
        self._abort.clear()
        self._postcopy.clear()
        self._downtime_ms = None
        self._bandwidth_mibs = params.get(libvirt.VIR_MIGRATE_PARAM_BANDWIDTH) or None
        persist = bool(flags & libvirt.VIR_MIGRATE_PERSIST_DEST)
        try:
            self.conn.router.prepare(dst, self.vm, persist=persist)
        except ConnectionError as exc:
            raise libvirt.libvirtError(f"unable to connect to server at '{dst}': {exc}") from None
        except ValueError as exc:
            raise libvirt.libvirtError(f"operation failed: {exc}") from None
        try:
            outcome = _Run(self).run()
        except BaseException:
            self._end_job()
            self.conn.router.abort(dst, self.vm.uuid)
            raise
        if outcome is not None:  # aborted: the destination drops what it prepared, the VM stays here
            self._end_job()
            self.conn.router.abort(dst, self.vm.uuid)
            raise libvirt.libvirtError(outcome)
        self.conn.router.finish(dst, self.vm.uuid)
        self.running = False
        self.conn._drop(self, libvirt.VIR_DOMAIN_EVENT_STOPPED_MIGRATED)
        return 0

    def _set_job(self, stats: dict) -> None:
        with self._lock:
            self._job = stats

    def _end_job(self) -> None:
        self._set_job({"type": precopy.JOB_NONE})


class _Run:
    """One outgoing migration of `dom`, pass by pass (runs in migrateToURI3's thread)."""

    def __init__(self, dom: SimDomain):
        self.dom = dom
        self.vm = dom.vm
        self.started = time.monotonic()
        self.processed = 0.0

    def bandwidth(self) -> float:
        return self.dom._bandwidth_mibs or self.dom.conn.bandwidth_mibs

    def wait(self, seconds: float) -> bool:
        """Sleep `seconds`; True when abortJob came meanwhile."""
        return self.dom._abort.wait(max(0.0, seconds))

    def run(self) -> str | None:
        """None when the guest moved; libvirt's error text when it was aborted."""
        aborted = "operation aborted: migration out: canceled by client"
        if self.wait(PREPARE_S):
            return aborted
        conn, dom, vm = self.dom.conn, self.dom, self.vm
        send: float | None = None
        throttle, high, iteration = 0, 0, 1
        while True:
            bw = self.bandwidth()
            limit = dom._downtime_ms or precopy.QEMU_DEFAULT_DOWNTIME_MS
            if dom._postcopy.is_set() and send is not None:
                return self._postcopy(send, bw, iteration)
            p = precopy.next_pass(vm, iteration=iteration - 1, send_mib=send, bandwidth_mibs=bw,
                                  downtime_limit_ms=limit, throttle_pct=throttle)
            conn.fire_iteration(dom, iteration)
            t0 = time.monotonic()
            while True:
                done = time.monotonic() - t0
                self._report(p, done, bw, iteration, limit)
                if done >= p.seconds:
                    break
                if self.wait(min(SLICE_S, p.seconds - done)):
                    return aborted
                if dom._postcopy.is_set():
                    break
            self.processed += p.send_mib * min(1.0, (time.monotonic() - t0) / p.seconds) if p.seconds else 0.0
            if p.converges and not dom._postcopy.is_set():
                return self._switch_over(p.remaining_mib, p.downtime_ms or 0.0, bw, iteration)
            if dom._postcopy.is_set():
                return self._postcopy(precopy.remaining_during(vm, p, time.monotonic() - t0), bw, iteration)
            throttle, high = (precopy.next_throttle(throttle, high, p.send_mib, p.remaining_mib)
                              if conn.auto_converge else (throttle, high))
            send = p.remaining_mib
            iteration += 1

    def _report(self, p: precopy.Pass, done: float, bw: float, iteration: int, limit: float) -> None:
        remaining = precopy.remaining_during(self.vm, p, done)
        sent_now = p.send_mib * (min(1.0, done / p.seconds) if p.seconds else 1.0)
        self.dom._set_job(precopy.running_job_stats(
            memory_mib=self.vm.memory_mib, processed_mib=self.processed + sent_now, remaining_mib=remaining,
            bandwidth_mibs=bw, dirty_rate_mibs=p.dirty_rate_mibs, iteration=iteration,
            elapsed_s=time.monotonic() - self.started, expected_downtime_ms=min(limit, remaining / bw * 1000)))

    def _switch_over(self, left_mib: float, downtime_ms: float, bw: float, iteration: int) -> str | None:
        self.dom.paused = True
        if self.wait(downtime_ms / 1000):
            self.dom.paused = False
            return "operation aborted: migration out: canceled by client"
        self.processed += left_mib
        return self._complete(downtime_ms, bw, iteration)

    def _postcopy(self, left_mib: float, bw: float, iteration: int) -> str | None:
        self.dom.paused = True
        self.dom.conn.fire_lifecycle(self.dom, libvirt.VIR_DOMAIN_EVENT_SUSPENDED,
                                     libvirt.VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY)
        self.dom._abort.clear()      # post-copy cannot be aborted: the guest runs on the destination
        time.sleep(left_mib / bw)
        self.processed += left_mib
        return self._complete(0.0, bw, iteration)

    def _complete(self, downtime_ms: float, bw: float, iteration: int) -> None:
        time.sleep(CONFIRM_S)
        stats = precopy.completed_job_stats(memory_mib=self.vm.memory_mib, processed_mib=self.processed,
                                            downtime_ms=downtime_ms, elapsed_s=time.monotonic() - self.started,
                                            iteration=iteration, bandwidth_mibs=bw)
        self.dom._end_job()
        self.dom.conn.fire_job_completed(self.dom, stats)
        return None


class SimConnection:
    """A host's libvirt connection. `router` (ferry.sim.wire.Router) reaches other hosts."""

    def __init__(self, hostname: str, address: str, *, router: Any, memory_mib: int = 256 * 1024,
                 cpus: int = 64, bandwidth_mibs: float = DEFAULT_BANDWIDTH_MIBS, auto_converge: bool = False):
        self.hostname = hostname
        self.address = address
        self.router = router
        self.memory_mib = memory_mib
        self.cpus = cpus
        self.bandwidth_mibs = bandwidth_mibs
        self.auto_converge = auto_converge
        self._lock = threading.Lock()
        self.domains: dict[str, SimDomain] = {}
        self._callbacks: dict[int, list[Callable]] = {}

    # ---- what the simulator itself does --------------------------------------------------------
    def add_vm(self, vm: SimVm, *, persistent: bool = False) -> SimDomain:
        dom = SimDomain(self, vm, persistent=persistent)
        with self._lock:
            self.domains[vm.uuid] = dom
        return dom

    def prepare_incoming(self, vm: SimVm, *, persist: bool) -> None:
        """The destination half of a migration's start: a paused guest waiting for its memory."""
        with self._lock:
            old = self.domains.get(vm.uuid)
            if old is not None and old.running:
                raise ValueError(f"domain '{vm.name}' is already active on {self.hostname}")
            dom = SimDomain(self, vm, persistent=persist)
            dom.paused = True
            self.domains[vm.uuid] = dom
        self.fire_lifecycle(dom, libvirt.VIR_DOMAIN_EVENT_STARTED, libvirt.VIR_DOMAIN_EVENT_STARTED_MIGRATED)

    def finish_incoming(self, uuid: str) -> None:
        dom = self.domains.get(uuid)
        if dom is None:
            return
        dom.paused = False
        self.fire_lifecycle(dom, libvirt.VIR_DOMAIN_EVENT_RESUMED, libvirt.VIR_DOMAIN_EVENT_RESUMED_MIGRATED)

    def abort_incoming(self, uuid: str) -> None:
        dom = self.domains.get(uuid)
        if dom is not None and dom.paused:  # never defined here: a failed incoming guest leaves nothing
            dom.running = False
            self._forget(uuid)
            self.fire_lifecycle(dom, libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_FAILED)

    def _drop(self, dom: SimDomain, detail: int) -> None:
        if not dom.persistent:
            self._forget(dom.vm.uuid)
        self.fire_lifecycle(dom, libvirt.VIR_DOMAIN_EVENT_STOPPED, detail)

    def _forget(self, uuid: str) -> None:
        with self._lock:
            self.domains.pop(uuid, None)

    # ---- libvirt API ---------------------------------------------------------------------------
    def lookupByUUIDString(self, uuid: str) -> SimDomain:  # noqa: N802
        dom = self.domains.get(uuid)
        if dom is None:
            raise libvirt.libvirtError(f"Domain not found: no domain with matching uuid '{uuid}'")
        return dom

    def listAllDomains(self, flags: int = 0) -> list[SimDomain]:  # noqa: N802
        with self._lock:
            doms = list(self.domains.values())
        if flags & libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE:
            doms = [d for d in doms if d.running]
        return doms

    def createXML(self, xml: str, flags: int = 0) -> SimDomain:  # noqa: N802
        root = ET.fromstring(xml)
        name = root.findtext("name") or ""
        if any(d.vm.name == name and d.running for d in self.listAllDomains()):
            raise libvirt.libvirtError(f"operation failed: domain '{name}' already exists")
        mem = root.find("memory")
        scale = {"kib": 1 / 1024, "k": 1 / 1024, "mib": 1, "m": 1, "gib": 1024, "g": 1024}
        mib = int(float(mem.text) * scale.get((mem.get("unit") or "KiB").lower(), 1 / 1024)) if mem is not None else 1024
        import uuid as uuidlib
        vm = SimVm(name, root.findtext("uuid") or str(uuidlib.uuid4()), max(1, mib), int(root.findtext("vcpu") or 1))
        return self.add_vm(vm)

    def getHostname(self) -> str:  # noqa: N802
        return self.hostname

    def getLibVersion(self) -> int:  # noqa: N802
        return LIB_VERSION

    def getVersion(self) -> int:  # noqa: N802
        return QEMU_VERSION

    def getInfo(self) -> list:  # noqa: N802
        return ["x86_64", self.memory_mib, self.cpus, 2400, 1, 2, self.cpus // 2, 2]

    def getFreeMemory(self) -> int:  # noqa: N802
        used = sum(d.vm.memory_mib for d in self.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE))
        return max(0, self.memory_mib - used) * (1 << 20)

    def getDomainCapabilities(self, *args: Any) -> str:  # noqa: N802
        return "<domainCapabilities><path>/usr/bin/qemu-system-x86_64</path></domainCapabilities>"

    def domainListGetStats(self, doms: list, stats: int = 0, flags: int = 0) -> list:  # noqa: N802
        out = []
        for d in doms:
            if d._dirty_calc is None:
                out.append((d, {"dirtyrate.calc_status": libvirt.VIR_DOMAIN_DIRTYRATE_UNSTARTED}))
                continue
            seconds, mode = d._dirty_calc
            out.append((d, {"dirtyrate.calc_status": libvirt.VIR_DOMAIN_DIRTYRATE_MEASURED,
                            "dirtyrate.calc_period": seconds,
                            "dirtyrate.calc_mode": "dirty-ring" if mode == libvirt.VIR_DOMAIN_DIRTYRATE_MODE_DIRTY_RING
                            else "page-sampling",
                            "dirtyrate.megabytes_per_second": int(d.vm.dirty_rate_mibs)}))
        return out

    def domainEventRegisterAny(self, dom: Any, event_id: int, cb: Callable, opaque: Any) -> int:  # noqa: N802
        self._callbacks.setdefault(event_id, []).append(cb)
        return sum(len(v) for v in self._callbacks.values())

    def domainEventDeregisterAny(self, cb_id: int) -> int:  # noqa: N802
        return 0

    def setKeepAlive(self, interval: int, count: int) -> int:  # noqa: N802
        return 0

    def close(self) -> int:
        return 0

    # ---- events (what libvirt's event loop would deliver) --------------------------------------
    def _fire(self, event_id: int, *args: Any) -> None:
        for cb in list(self._callbacks.get(event_id, ())):
            cb(self, *args, None)

    def fire_iteration(self, dom: SimDomain, iteration: int) -> None:
        self._fire(libvirt.VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION, dom, iteration)

    def fire_lifecycle(self, dom: SimDomain, event: int, detail: int) -> None:
        self._fire(libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, dom, event, detail)

    def fire_job_completed(self, dom: SimDomain, stats: dict) -> None:
        self._fire(libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, dom, stats)

"""VM.getDirtyRate: a running guest's dirty rate and touched memory, the forecast's two inputs.

Why here: only the agent talks to libvirt. libvirt's dirty-rate calculation
(virDomainStartDirtyRateCalc, then virConnectGetAllDomainStats with VIR_DOMAIN_STATS_DIRTYRATE)
measures over a window the caller waits for; this module starts it, sleeps the window in the
request's own thread (the agent's server runs one thread per request, and no agent lock is
held, so other verbs go on), and reads the result.

Mode: dirty-ring where it can work, detected at run time: a KVM domain whose XML turns KVM's
dirty ring on (<features><kvm><dirty-ring state='on'/>); libvirt refusing it falls back to page
sampling. Under TCG (this lab) only page sampling works (dirty-bitmap reads 0 there). The
reading is corrected by ferry.forecast.bias. A VM that is migrating is not measured: the
figure would be biased 2-3x and the calculation contends with the migration's own tracking.

Touched memory: the resident set of the guest's RAM mapping alone (the one mapping in
/proc/<pid>/smaps whose size is the guest's memory, the pid from libvirt's pid file), else
QEMU's whole resident set (VmRSS in /proc/<pid>/status), else libvirt's memory stats ("rss").
The whole RSS also holds QEMU's own memory: under TCG its code buffer and the rest read 456 MiB
for a 512 MiB guest whose RAM mapping held 352 (lab, 256 MiB filled), and the forecast took the
difference for data to send. Capped at the guest's memory.
"""
from __future__ import annotations

import os
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable

from ferry.common.errors import InvalidInput
from ferry.common.jsonrpc import agent_error
from ferry.forecast import bias

MIN_SECONDS, MAX_SECONDS = 1, 60
RESULT_GRACE_S = 5.0          # how long past the window to wait for QEMU to report
POLL_S = 0.1
PID_DIRS = ("/run/libvirt/qemu", "/var/run/libvirt/qemu")

_sleep = time.sleep           # module-level so tests can stand in for the wait
_busy: set[str] = set()
_busy_lock = threading.Lock()


def parse_seconds(value) -> int:
    """The window, an integer 1..60 s (bool, float, text and out-of-range values are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("seconds", f"must be an integer number of seconds {MIN_SECONDS}..{MAX_SECONDS}, "
                                      f"got {value!r}")
    if not MIN_SECONDS <= value <= MAX_SECONDS:
        raise InvalidInput("seconds", f"must be {MIN_SECONDS}..{MAX_SECONDS}, got {value}")
    return value


def dirty_ring_configured(domain_xml: str) -> bool:
    """True for a KVM domain with KVM's dirty ring on: the only case dirty-ring mode can work."""
    try:
        root = ET.fromstring(domain_xml)
    except ET.ParseError:
        return False
    ring = root.find("./features/kvm/dirty-ring")
    return root.get("type") == "kvm" and ring is not None and ring.get("state") == "on"


def start_calc(lv, dom, seconds: int) -> str:
    """Start the calculation in the best mode this domain supports; returns the mode's name."""
    if dirty_ring_configured(dom.XMLDesc(0)):
        try:
            dom.startDirtyRateCalc(seconds, lv.VIR_DOMAIN_DIRTYRATE_MODE_DIRTY_RING)
            return bias.DIRTY_RING
        except lv.libvirtError:
            pass   # QEMU or KVM without the ring after all: sample pages instead
    dom.startDirtyRateCalc(seconds, lv.VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING)
    return bias.PAGE_SAMPLING


def read_calc(conn, lv, dom) -> dict | None:
    """The dirtyrate.* stats once QEMU reports the calculation measured, else None."""
    records = conn.domainListGetStats([dom], lv.VIR_DOMAIN_STATS_DIRTYRATE, 0)
    stats = records[0][1] if records else {}
    if stats.get("dirtyrate.calc_status") != lv.VIR_DOMAIN_DIRTYRATE_MEASURED:
        return None
    return stats


def qemu_pid(name: str, pid_dirs: tuple[str, ...] = PID_DIRS) -> int | None:
    for d in pid_dirs:
        try:
            with open(os.path.join(d, f"{name}.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            continue
    return None


def vm_rss_kib(pid: int, proc: str = "/proc") -> int | None:
    try:
        with open(f"{proc}/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def guest_ram_rss_kib(pid: int, memory_kib: int, proc: str = "/proc") -> int | None:
    """The Rss of the one mapping of QEMU's whose Size is exactly the guest's memory (its RAM
    block); None when there is none or more than one (then the caller falls back)."""
    found: list[int] = []
    size = None
    try:
        with open(f"{proc}/{pid}/smaps") as f:
            for line in f:
                if line.startswith("Size:"):
                    size = int(line.split()[1])
                elif line.startswith("Rss:") and size == memory_kib:
                    found.append(int(line.split()[1]))
    except (OSError, ValueError, IndexError):
        return None
    return found[0] if len(found) == 1 else None


def touched_memory(lv, dom, memory_mib: float, pid_dirs: tuple[str, ...] = PID_DIRS,
                   proc: str = "/proc") -> tuple[float | None, str | None]:
    """(touched MiB, where it came from): the guest RAM mapping's Rss, else QEMU's VmRSS,
    else libvirt's memory stats rss."""
    pid = qemu_pid(dom.name(), pid_dirs)
    kib = guest_ram_rss_kib(pid, round(memory_mib * 1024), proc) if pid is not None else None
    if kib is not None:
        return min(memory_mib, kib / 1024), "qemu-guest-ram-rss"
    kib = vm_rss_kib(pid, proc) if pid is not None else None
    source = "qemu-vmrss"
    if kib is None:
        try:
            kib = dom.memoryStats().get("rss")
        except lv.libvirtError:
            kib = None
        source = "libvirt-memory-stats"
    if kib is None:
        return None, None
    return min(memory_mib, kib / 1024), source


def get_dirty_rate(conn, lv, dom, seconds: int, *, migrating: bool = False,
                   sleep: Callable[[float], None] | None = None,
                   clock: Callable[[], float] = time.monotonic) -> dict:
    """Measure over `seconds` and answer VM.getDirtyRate's result (see docs/forecast.md)."""
    sleep = sleep or _sleep
    vm_id = dom.UUIDString()
    if migrating:
        raise agent_error("migrationInProgress", f"VM {vm_id} is migrating: its dirty rate would read 2-3x "
                          "the idle figure; use the migration's status", vmID=vm_id)
    if dom.state()[0] != lv.VIR_DOMAIN_RUNNING:
        raise agent_error("vmNotRunning", f"VM {vm_id} is not running: no dirty rate to measure", vmID=vm_id)
    with _busy_lock:
        if vm_id in _busy:
            raise agent_error("unexpected", f"a dirty-rate measurement of VM {vm_id} is already running",
                              vmID=vm_id)
        _busy.add(vm_id)
    try:
        try:
            mode = start_calc(lv, dom, seconds)
        except lv.libvirtError as exc:
            raise agent_error("unexpected", f"cannot start the dirty-rate calculation: "
                              f"{exc.get_error_message() or exc}", vmID=vm_id) from None
        sleep(seconds)
        deadline = clock() + RESULT_GRACE_S
        stats = read_calc(conn, lv, dom)
        while stats is None and clock() < deadline:
            sleep(POLL_S)
            stats = read_calc(conn, lv, dom)
    finally:
        with _busy_lock:
            _busy.discard(vm_id)
    if stats is None:
        raise agent_error("unexpected", f"the dirty-rate calculation gave no result within "
                          f"{seconds + RESULT_GRACE_S:g} s", vmID=vm_id)
    rate = float(stats.get("dirtyrate.megabytes_per_second", 0))   # QEMU's MB here are MiB
    mode = stats.get("dirtyrate.calc_mode") or mode
    corrected = bias.correct(rate, mode, seconds)
    memory_mib = dom.info()[1] / 1024
    touched, touched_source = touched_memory(lv, dom, memory_mib)
    return {"vmID": vm_id, "seconds": seconds, "mode": mode, "dirtyRateMiBs": rate,
            "estimate": corrected.to_wire(), "memoryMiB": memory_mib,
            "touchedMiB": None if touched is None else round(touched, 1), "touchedSource": touched_source}

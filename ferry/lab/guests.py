"""Lab guests and libvirt access: boot workload guests, find and verify the running copy.

Split from ferry.lab.lab (the `Lab` class mixes this in) so each module stays one concept:
lab.py brings hosts up and down, this module acts on the guests running on them. The lab
reaches libvirt through each host's unix socket (`_open`, local by default), so looking up,
verifying and destroying guests work while a host's link is cut off.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ferry.common.domain_xml import build_domain_xml
from ferry.common.errors import OperationFailed
from ferry.common.memlock import detect_memtune_workaround_kib
from ferry.common.vmspec import VmSpec, default_console_log
from ferry.lab.guest import Workload, workload_spec
from ferry.lab.plan import HostPlan
from ferry.lab.verify import Check, Copy, HostLog, VerifyReport, analyze, running_copy, scan_seen


def libvirt_module():
    try:
        import libvirt
    except ImportError as exc:  # pragma: no cover - the venv always has it
        raise OperationFailed(f"libvirt-python is not installed: {exc}") from None
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors come back as exceptions
    return libvirt


@dataclass(frozen=True)
class Guest:
    """A workload guest booted by the lab."""

    name: str
    host: HostPlan
    spec: VmSpec
    boot_seconds: float  # define -> workload READY and first heartbeat


class LabGuests:
    """Guest and libvirt-access methods of `ferry.lab.Lab` (uses its plan, host(), hosts(),
    accel and images())."""

    def connect(self, host: object, *, local: bool = False):
        """An open libvirt connection to a lab host (caller closes it): over the lab network
        (host.uri, as the engine reaches it), or with local=True through the host's unix
        socket (host.local_uri, which works while the host is cut off)."""
        h = self.host(host)
        libvirt = libvirt_module()
        uri = h.local_uri if local else h.uri
        try:
            return libvirt.open(uri)
        except libvirt.libvirtError as exc:
            raise OperationFailed(f"cannot connect to {h.name} at {uri}: {exc}") from None

    @contextmanager
    def _open(self, host: HostPlan, *, local: bool = True) -> Iterator[object]:
        """A libvirt connection to `host` for the length of a with-block (local by default).
        Opening raises libvirt.libvirtError, for callers that skip an unreachable host."""
        conn = libvirt_module().open(host.local_uri if local else host.uri)
        try:
            yield conn
        finally:
            conn.close()

    def _domains_named(self, name: str) -> Iterator[tuple[HostPlan, object]]:
        """(host, domain) for every reachable host that knows a domain called `name`; the
        connection stays open while the caller handles the domain."""
        libvirt = libvirt_module()
        for h in self.hosts():
            try:
                with self._open(h) as conn:
                    try:
                        dom = conn.lookupByName(name)
                    except libvirt.libvirtError:
                        continue
                    yield h, dom
            except libvirt.libvirtError:
                continue

    def copies(self, name: str) -> list[Copy]:
        """Every host's copy of VM `name` (running, paused, shut off) with libvirt's state."""
        libvirt = libvirt_module()
        out = []
        for h, dom in self._domains_named(name):
            try:
                state, reason = dom.state()
            except libvirt.libvirtError:
                continue
            out.append(Copy(h.name, state_name(state), reason))
        return out

    def find_vm(self, name: str) -> HostPlan:
        """The host where VM `name` runs: the running copy, never a paused incoming copy or a
        shut-off definition left on a former source (ferry.lab.verify.running_copy)."""
        host = running_copy(name, self.copies(name))
        return self.host(host)

    # ---- guests ----------------------------------------------------------------------------
    def console_log(self, host: object, vm: str, spec: VmSpec | None = None) -> Path:
        """The VM's serial console log on `host`, as a path readable from outside the host."""
        inside = spec.effective_console_log if spec else default_console_log(vm)
        return self.host(host).outside(inside)

    def guest_spec(self, name: str, *, memory_mib: int = 1024, fill_mib: int = 64,
                   dirty_mib_s: int = 0, vcpus: int = 1, spot_pages: int = 256,
                   cpu_bound: bool = False) -> VmSpec:
        """The VmSpec of a workload guest for this lab (accelerator, images, memtune workaround)."""
        imgs = self.images()
        return workload_spec(name=name, kernel=str(imgs.kernel), initrd=str(imgs.initrd),
                             accel=self.accel.accel, memory_mib=memory_mib, vcpus=vcpus,
                             workload=Workload(fill_mib, dirty_mib_s, spot_pages, cpu_bound),
                             memtune_hard_limit_kib=detect_memtune_workaround_kib())

    def boot_guest(self, host: object, name: str, *, memory_mib: int = 1024, fill_mib: int = 64,
                   dirty_mib_s: int = 0, vcpus: int = 1, spot_pages: int = 256,
                   cpu_bound: bool = False, timeout: float = 180.0) -> Guest:
        """Start a transient workload guest on `host` and wait for its first heartbeat."""
        h = self.host(host)
        spec = self.guest_spec(name, memory_mib=memory_mib, fill_mib=fill_mib,
                               dirty_mib_s=dirty_mib_s, vcpus=vcpus, spot_pages=spot_pages,
                               cpu_bound=cpu_bound)
        # A fresh console log everywhere: verify reads every host's log for this name.
        for other in self.plan.hosts(4):
            log = self.console_log(other, name, spec)
            if log.exists():
                log.unlink()
        libvirt = libvirt_module()
        t0 = time.monotonic()
        try:
            with self._open(h) as conn:
                conn.createXML(build_domain_xml(spec), 0)
        except libvirt.libvirtError as exc:
            raise OperationFailed(f"cannot start {name} on {h.name}: {exc}") from None
        log = self.console_log(h, name, spec)
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            text = _read(log)
            if "FERRY HB " in text:
                return Guest(name, h, spec, time.monotonic() - t0)
            if "FERRY FAIL" in text or "Kernel panic" in text:
                break
            time.sleep(0.2)
        raise OperationFailed(f"{name} on {h.name} gave no heartbeat within {timeout:.0f} s; "
                              f"console: {_read(log)[-500:]!r}")

    def destroy_guest(self, name: str) -> list[str]:
        """Destroy (and undefine) VM `name` on every running host; returns where it was."""
        libvirt = libvirt_module()
        found = []
        for h, dom in self._domains_named(name):
            try:
                persistent = dom.isPersistent()  # asked first: a destroyed transient domain is gone
                if dom.isActive():
                    dom.destroy()
                if persistent:
                    dom.undefine()
                found.append(h.name)
            except libvirt.libvirtError:
                pass
        return found

    def request_full_scan(self, host: object, vm: str, *, until: Callable[[], bool] | None = None,
                          timeout: float = 120.0) -> bool:
        """Ask the workload for a full scan: the byte 'S' through libvirt's console stream.

        The stream stays open until `until()` is true (or `timeout`): QEMU's pty backend only
        reads input once it has noticed the console is connected (it polls about once a
        second), so a console closed right after writing would leave the byte unread.
        Without `until`, the console is held for 3 s. Returns whether `until` became true.
        """
        libvirt = libvirt_module()
        h = self.host(host)
        try:
            with self._open(h) as conn:
                stream = conn.newStream(0)
                try:
                    conn.lookupByName(vm).openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
                    stream.send(b"S")
                    deadline = time.monotonic() + (timeout if until else 3.0)
                    while time.monotonic() < deadline:
                        if until is not None and until():
                            return True
                        time.sleep(0.3)
                    return until is None
                finally:
                    try:
                        stream.abort()
                    except libvirt.libvirtError:
                        pass
        except libvirt.libvirtError as exc:
            raise OperationFailed(f"cannot reach the console of {vm} on {h.name}: {exc}") from None

    def verify(self, vm: str, host: object | None = None, timeout: float = 120.0) -> VerifyReport:
        """Is `vm`'s memory intact? Requests a full scan, waits for it, analyses every host's log."""
        h = self.host(host) if host is not None else self.find_vm(vm)
        log = self.console_log(h, vm)
        offset = log.stat().st_size if log.exists() else 0
        state = self._state_on(h, vm)
        running = state == "running"
        if running:
            self.request_full_scan(h, vm, until=lambda: scan_seen(_read(log), offset), timeout=timeout)
        logs = [HostLog(other.name, _read(self.console_log(other, vm)))
                for other in self.plan.hosts(4) if self.console_log(other, vm).exists()]
        report = analyze(vm, logs, h.name, offset)
        check = Check("running_here", running, f"{vm} is running on {h.name}" if running
                      else f"{vm} is not running on {h.name} ({state or 'not defined there'})")
        report.checks.insert(0, check)
        if not running:
            report.reasons.insert(0, check.detail)
            report.intact = False
        return report

    def _state_on(self, h: HostPlan, vm: str) -> str | None:
        """libvirt's state of `vm` on host h ("running", "paused", "shutoff", ...), or None."""
        libvirt = libvirt_module()
        try:
            with self._open(h) as conn:
                return state_name(conn.lookupByName(vm).state()[0])
        except libvirt.libvirtError:
            return None


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return ""


_STATES = {0: "nostate", 1: "running", 2: "blocked", 3: "paused", 4: "shutdown", 5: "shutoff",
           6: "crashed", 7: "pmsuspended"}


def state_name(code: int) -> str:
    return _STATES.get(code, str(code))

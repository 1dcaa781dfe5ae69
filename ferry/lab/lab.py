"""`ferry.lab.Lab`: bring lab hosts up and down, boot workload guests, verify them, cut hosts off.

One Lab object per lab id (FERRY_LAB_ID). Its state (pids, namespaces, agents) is a JSON file
under the lab's directory, so separate processes (the CLI, pytest, the demo) act on the same
lab. Every process the lab starts is tracked by pid plus kernel start time; `down` stops
them by pid and then kills whatever is still inside each host's mount namespace.
"""
from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ferry.common.domain_xml import build_domain_xml
from ferry.common.errors import NotFound, OperationFailed
from ferry.common.memlock import detect_memtune_workaround_kib
from ferry.common.vmspec import VmSpec, default_console_log
from ferry.lab import netcut, procs
from ferry.lab import tls as lab_tls
from ferry.lab.accel import AccelChoice, detect_accel
from ferry.lab.config import libvirtd_conf, qemu_conf
from ferry.lab.guest import Workload, workload_spec
from ferry.lab.images import GuestImages, build_images
from ferry.lab.plan import (
    AGENT_PORT,
    DEFAULT_HOSTS,
    DEFAULT_ROOT,
    HOST_MOUNTS,
    HostPlan,
    LabPlan,
    check_host_count,
    lab_id_from_env,
)
from ferry.lab.verify import Check, HostLog, VerifyReport, analyze, scan_seen

Progress = Callable[[str], None]
READY_TIMEOUT_S = 90.0  # first start probes QEMU capabilities for 8-16 s, slower with 2 cores busy
AGENT_READY_TIMEOUT_S = 30.0
CAPS_SUBDIR = Path("qemu") / "capabilities"


def _quiet(_msg: str) -> None:
    pass


def _libvirt():
    try:
        import libvirt
    except ImportError as exc:  # pragma: no cover - the venv always has it
        raise OperationFailed(f"libvirt-python is not installed: {exc}") from None
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors come back as exceptions
    return libvirt


def agent_available() -> bool:
    """Whether `python -m ferry.agent run ...` exists in this installation."""
    try:
        return importlib.util.find_spec("ferry.agent.__main__") is not None
    except (ImportError, ValueError):
        return False


def install_script() -> Path:
    """scripts/install-system.sh, found next to the package (source tree / editable install)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent / "scripts" / "install-system.sh"
        if cand.exists():
            return cand
    raise OperationFailed("scripts/install-system.sh not found next to the ferry package")


@dataclass(frozen=True)
class Guest:
    """A workload guest booted by the lab."""

    name: str
    host: HostPlan
    spec: VmSpec
    boot_seconds: float  # define -> workload READY and first heartbeat


class Lab:
    """A lab of 1..4 libvirt hosts on this machine (see ferry.lab.plan for the address plan)."""

    def __init__(self, lab_id: int | None = None, root: Path | str | None = None):
        root = Path(root or os.environ.get("FERRY_LAB_ROOT") or DEFAULT_ROOT)
        self.plan = LabPlan(lab_id_from_env() if lab_id is None else lab_id, root)
        self._accel: AccelChoice | None = None

    # ---- state -----------------------------------------------------------------------------
    @property
    def lab_id(self) -> int:
        return self.plan.lab_id

    def _read_state(self) -> dict:
        try:
            return json.loads(self.plan.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {"hosts": {}}

    def _write_state(self, state: dict) -> None:
        self.plan.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.plan.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.plan.state_file)

    @contextmanager
    def _locked(self) -> Iterator[dict]:
        """Exclusive access to the lab's state (up/down/agent restarts from several processes)."""
        self.plan.dir.mkdir(parents=True, exist_ok=True)
        with open(self.plan.dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self._read_state()
            yield state
            self._write_state(state)

    def _host_state(self, host: HostPlan, state: dict | None = None) -> dict:
        state = self._read_state() if state is None else state
        return state.get("hosts", {}).get(str(host.index), {})

    def _libvirtd_running(self, hs: dict) -> bool:
        return procs.is_same_process(hs.get("pid"), hs.get("start"))

    def hosts(self) -> list[HostPlan]:
        """The hosts whose libvirtd is running, in index order."""
        state = self._read_state()
        return [self.plan.host(int(i)) for i, hs in sorted(state.get("hosts", {}).items())
                if self._libvirtd_running(hs)]

    def host(self, ref: object) -> HostPlan:
        """A host by index (1), name (ferry-h1) or address (127.0.0.2)."""
        return self.plan.resolve(ref)

    def is_up(self, hosts: int = 1) -> bool:
        return len(self.hosts()) >= hosts

    @property
    def accel(self) -> AccelChoice:
        if self._accel is None:
            self._accel = detect_accel()
        return self._accel

    # ---- up --------------------------------------------------------------------------------
    def up(self, hosts: int = DEFAULT_HOSTS, progress: Progress = _quiet, agents: bool = True) -> dict:
        """Start `hosts` lab hosts (idempotent: running hosts are kept) and their agents."""
        check_host_count(hosts)
        self._check_can_run()
        t0 = time.monotonic()
        progress(f"lab {self.lab_id}: accelerator {self.accel.accel} ({self.accel.reason})")
        self.images(progress)
        if not self._table_exists():
            netcut.create_table(self.plan.nft_table)
        with self._locked() as state:
            state["lab_id"] = self.lab_id
            hstates = state.setdefault("hosts", {})
            started: list[HostPlan] = []
            for host in self.plan.hosts(hosts):
                hs = hstates.get(str(host.index), {})
                if self._libvirtd_running(hs):
                    progress(f"{host.name}: libvirtd already running (pid {hs['pid']})")
                    if lab_tls.enroll_again_if_roleless(host):  # certificates from before roles (issue 12)
                        agent = hs.get("agent") or {}
                        if procs.is_same_process(agent.get("pid"), agent.get("start")):
                            procs.stop(agent["pid"], timeout=10)  # started again below, with its new certificate
                        progress(f"{host.name}: enrolled again (its agent certificate carried no role)")
                    continue
                self._leftovers_kill(host, hs)
                self._prepare_host_dirs(host)
                pid = procs.spawn(procs.libvirtd_command(host), host.dir / "libvirtd.out")
                hs = {"pid": pid, "start": procs.start_time(pid)}
                hstates[str(host.index)] = hs
                started.append(host)
                progress(f"{host.name}: starting libvirtd on {host.address} (pid {pid})")
            self._write_state(state)
            for host in started:
                self._wait_libvirtd(host, hstates[str(host.index)])
                hstates[str(host.index)]["mnt_ns"] = procs.mount_ns(hstates[str(host.index)]["pid"])
                self._save_caps(host)
                progress(f"{host.name}: libvirtd ready at {host.uri}")
            self._write_state(state)
            if agents:
                if agent_available():
                    for host in self.plan.hosts(hosts):
                        hs = hstates[str(host.index)]
                        agent = hs.get("agent") or {}
                        if procs.is_same_process(agent.get("pid"), agent.get("start")):
                            continue
                        hs["agent"] = self._start_agent(host, hs, agent.get("extra_args", []), progress)
                else:
                    progress("host agent: not available in this installation (ferry.agent has no "
                             "runnable module yet); hosts run without agents")
        progress(f"lab {self.lab_id} up: {hosts} host(s) in {time.monotonic() - t0:.1f} s")
        return self.status()

    def _check_can_run(self) -> None:
        if os.geteuid() != 0:
            raise OperationFailed("the lab needs root (mount/UTS namespaces, nftables, libvirtd)")
        for tool in ("unshare", "nsenter", "libvirtd", "qemu-system-x86_64", "nft"):
            if shutil.which(tool) is None:
                raise OperationFailed(f"{tool} not found: run `ferry lab install` first")

    def _table_exists(self) -> bool:
        return subprocess.run(["nft", "list", "table", "inet", self.plan.nft_table],
                              capture_output=True).returncode == 0

    def _prepare_host_dirs(self, host: HostPlan) -> None:
        """Fresh per-host dirs (config regenerated, runtime/state emptied; logs and cache kept)."""
        for sub, target in HOST_MOUNTS:
            d = host.dir / sub
            if sub in ("run", "lib", "etc") and d.exists():
                shutil.rmtree(d)
            d.mkdir(parents=True, exist_ok=True)
            Path(target).mkdir(parents=True, exist_ok=True)  # the mount point, outside
        (host.dir / "etc" / "libvirtd.conf").write_text(libvirtd_conf(host))
        (host.dir / "etc" / "qemu.conf").write_text(qemu_conf(host))
        lab_tls.prepare_host(host)  # certificates from the engine CA; libvirtd's TLS listener on
        (host.dir / "log" / "qemu").mkdir(exist_ok=True)
        caps = host.dir / "cache" / CAPS_SUBDIR
        shared = self.plan.root / "qemu-capabilities"
        if not any(caps.glob("*.xml")) and any(shared.glob("*.xml")):
            caps.mkdir(parents=True, exist_ok=True)
            for f in shared.glob("*.xml"):
                shutil.copy2(f, caps / f.name)

    def _save_caps(self, host: HostPlan) -> None:
        """Share the probed QEMU capabilities so other hosts and labs skip the 8-16 s probe."""
        shared = self.plan.root / "qemu-capabilities"
        caps = list((host.dir / "cache" / CAPS_SUBDIR).glob("*.xml"))
        if caps and not any(shared.glob("*.xml")):
            shared.mkdir(parents=True, exist_ok=True)
            for f in caps:
                shutil.copy2(f, shared / f.name)

    def _wait_libvirtd(self, host: HostPlan, hs: dict) -> None:
        libvirt = _libvirt()
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = ""
        while time.monotonic() < deadline:
            if not procs.alive(hs["pid"]):
                raise OperationFailed(f"{host.name}: libvirtd exited during start-up: "
                                      f"{self._tail(host.dir / 'libvirtd.out')}")
            try:
                conn = libvirt.open(host.uri)
                try:
                    conn.getCapabilities()
                    return
                finally:
                    conn.close()
            except libvirt.libvirtError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise OperationFailed(f"{host.name}: libvirtd not reachable at {host.uri} after "
                              f"{READY_TIMEOUT_S:.0f} s: {last}")

    @staticmethod
    def _tail(path: Path, n: int = 600) -> str:
        try:
            return path.read_text(errors="replace")[-n:].strip() or "(no output)"
        except FileNotFoundError:
            return "(no output)"

    # ---- agents ----------------------------------------------------------------------------
    def agent_command(self, host: HostPlan, libvirtd_pid: int, extra_args: list[str]) -> list[str]:
        """The agent runs inside the host's mount + UTS namespace (it sees the host's hostname
        and libvirt dirs), bound to the host's address, talking to the host's libvirtd."""
        return ["nsenter", f"--target={libvirtd_pid}", "--mount", "--uts", "--",
                sys.executable, "-m", "ferry.agent", "run", "--address", host.address,
                "--port", str(AGENT_PORT), "--libvirt-uri", host.uri,
                "--log-file", str(host.dir / "agent.log"), *lab_tls.agent_mode_args(self.plan), *extra_args]

    def _start_agent(self, host: HostPlan, hs: dict, extra_args: list[str], progress: Progress) -> dict:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in [str(Path(__file__).resolve().parents[2]),
                                                        env.get("PYTHONPATH", "")] if p)
        env["FERRY_AGENT_IMAGES_DIRS"] = str(self.plan.images_dir)  # kernels only from the lab's images
        pid = procs.spawn(self.agent_command(host, hs["pid"], list(extra_args)),
                          host.dir / "agent.out", env=env)
        agent = {"pid": pid, "start": procs.start_time(pid), "extra_args": list(extra_args)}
        deadline = time.monotonic() + AGENT_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if not procs.alive(pid):
                agent["error"] = f"exited: {self._tail(host.dir / 'agent.out', 300)}"
                progress(f"{host.name}: agent failed to start: {agent['error']}")
                return agent
            try:
                with socket.create_connection((host.address, AGENT_PORT), timeout=0.5):
                    progress(f"{host.name}: agent listening on {host.agent_url} (pid {pid})")
                    return agent
            except OSError:
                time.sleep(0.2)
        agent["error"] = f"not listening on {host.agent_url} after {AGENT_READY_TIMEOUT_S:.0f} s"
        progress(f"{host.name}: agent {agent['error']}")
        return agent

    def restart_agent(self, host: object, extra_args: list[str] | tuple[str, ...] = (),
                      progress: Progress = _quiet) -> dict:
        """Stop the host's agent (by pid) and start it again with extra options (e.g. --old-agent)."""
        h = self.host(host)
        if not agent_available():
            raise OperationFailed("host agent not available: ferry.agent has no runnable module")
        with self._locked() as state:
            hs = state.get("hosts", {}).get(str(h.index))
            if not hs or not self._libvirtd_running(hs):
                raise OperationFailed(f"{h.name} is not up (run `ferry lab up`)")
            old = hs.get("agent") or {}
            if procs.is_same_process(old.get("pid"), old.get("start")):
                procs.stop(old["pid"], timeout=10)
            hs["agent"] = self._start_agent(h, hs, list(extra_args), progress)
            return dict(hs["agent"])

    # ---- down ------------------------------------------------------------------------------
    def down(self, progress: Progress = _quiet) -> dict:
        """Stop agents, guests and libvirtd of every host (by pid), remove the nft table."""
        t0 = time.monotonic()
        summary: dict[str, str] = {}
        with self._locked() as state:
            hstates = state.get("hosts", {})
            threads = []
            for idx, hs in sorted(hstates.items()):
                host = self.plan.host(int(idx))
                t = threading.Thread(target=lambda h=host, s=hs: summary.__setitem__(
                    h.name, self._stop_host(h, s, progress)))
                t.start()
                threads.append(t)
            for t in threads:
                t.join()
            state["hosts"] = {}
        netcut.delete_table(self.plan.nft_table)
        progress(f"lab {self.lab_id} down in {time.monotonic() - t0:.1f} s")
        return summary

    def _stop_host(self, host: HostPlan, hs: dict, progress: Progress) -> str:
        agent = hs.get("agent") or {}
        if procs.is_same_process(agent.get("pid"), agent.get("start")):
            procs.stop(agent["pid"], timeout=10)
        how = "not running"
        if self._libvirtd_running(hs):
            self._destroy_all_domains(host)
            how = procs.stop(hs["pid"])
        left = self._leftovers_kill(host, hs)
        for sub in ("run", "lib"):
            shutil.rmtree(host.dir / sub, ignore_errors=True)
        msg = f"libvirtd {how}" + (f", killed {len(left)} leftover process(es)" if left else "")
        progress(f"{host.name}: {msg}")
        return msg

    def _destroy_all_domains(self, host: HostPlan) -> None:
        libvirt = _libvirt()
        try:
            conn = libvirt.open(host.uri)
        except libvirt.libvirtError:
            return
        try:
            for dom in conn.listAllDomains():
                try:
                    if dom.isActive():
                        dom.destroy()
                    if dom.isPersistent():
                        dom.undefine()
                except libvirt.libvirtError:
                    pass
        finally:
            conn.close()

    def _leftovers_kill(self, host: HostPlan, hs: dict) -> list[int]:
        """Kill (by pid) whatever still lives in the host's recorded mount namespace.

        A namespace inode can be reused once the namespace is gone, so a process only counts
        as ours if its mount table also shows this host's own directory.
        """
        ns = hs.get("mnt_ns")
        if not ns or ns == procs.mount_ns(os.getpid()):
            return []
        left = [pid for pid in procs.pids_in_mount_ns(ns) if procs.has_host_mounts(pid, host)]
        for pid in left:
            procs.signal_pid(pid, signal.SIGKILL)
        procs.wait_gone(left, 5)
        return left

    # ---- status ----------------------------------------------------------------------------
    def status(self) -> dict:
        """Hosts, addresses, versions, accelerator, agents and running VMs (JSON-able)."""
        libvirt = _libvirt()
        state = self._read_state()
        cut = set(netcut.cut_addresses(self.plan.nft_table))
        hosts = []
        for idx, hs in sorted(state.get("hosts", {}).items()):
            host = self.plan.host(int(idx))
            entry: dict = {"name": host.name, "index": host.index, "address": host.address,
                           "uri": host.uri, "host_uuid": host.host_uuid, "dir": str(host.dir),
                           "libvirtd_pid": hs.get("pid"), "running": self._libvirtd_running(hs),
                           "cut_off": host.address in cut, "vms": []}
            agent = hs.get("agent") or {}
            entry["agent"] = {"url": host.agent_url, "pid": agent.get("pid"),
                              "running": procs.is_same_process(agent.get("pid"), agent.get("start")),
                              "extra_args": agent.get("extra_args", []),
                              "error": agent.get("error")} if agent else None
            if entry["running"] and host.address not in cut:
                try:
                    conn = libvirt.open(host.uri)
                    try:
                        entry["libvirt_version"] = _version(conn.getLibVersion())
                        entry["qemu_version"] = _version(conn.getVersion())
                        entry["hostname"] = conn.getHostname()
                        entry["vms"] = [{"name": d.name(), "state": _state_name(d.state()[0])}
                                        for d in conn.listAllDomains()]
                    finally:
                        conn.close()
                except libvirt.libvirtError as exc:
                    entry["error"] = str(exc)
            hosts.append(entry)
        return {"lab_id": self.lab_id, "dir": str(self.plan.dir), "accel": self.accel.accel,
                "accel_reason": self.accel.reason, "agent_available": agent_available(),
                "hosts": hosts}

    # ---- libvirt access --------------------------------------------------------------------
    def connect(self, host: object):
        """An open libvirt connection to a lab host (caller closes it)."""
        h = self.host(host)
        libvirt = _libvirt()
        try:
            return libvirt.open(h.uri)
        except libvirt.libvirtError as exc:
            raise OperationFailed(f"cannot connect to {h.name} at {h.uri}: {exc}") from None

    def _domains_named(self, name: str) -> Iterator[tuple[HostPlan, object]]:
        """(host, domain) for every reachable host that knows a domain called `name`; the
        connection stays open while the caller handles the domain."""
        libvirt = _libvirt()
        for h in self.hosts():
            try:
                conn = libvirt.open(h.uri)
            except libvirt.libvirtError:
                continue
            try:
                try:
                    dom = conn.lookupByName(name)
                except libvirt.libvirtError:
                    continue
                yield h, dom
            finally:
                conn.close()

    def find_vm(self, name: str) -> HostPlan:
        """The host where VM `name` is running."""
        libvirt = _libvirt()
        for h, dom in self._domains_named(name):
            try:
                if dom.isActive():
                    return h
            except libvirt.libvirtError:
                pass
        raise NotFound("VM", name)

    # ---- guests ----------------------------------------------------------------------------
    def images(self, progress: Progress = _quiet) -> GuestImages:
        """The guest kernel and initramfs (built once, cached under <root>/images)."""
        return build_images(self.plan.images_dir, progress)

    def console_log(self, host: object, vm: str, spec: VmSpec | None = None) -> Path:
        """The VM's serial console log on `host`, as a path readable from outside the host."""
        inside = spec.effective_console_log if spec else default_console_log(vm)
        return self.host(host).outside(inside)

    def guest_spec(self, name: str, *, memory_mib: int = 1024, fill_mib: int = 64,
                   dirty_mib_s: int = 0, vcpus: int = 1, spot_pages: int = 256) -> VmSpec:
        """The VmSpec of a workload guest for this lab (accelerator, images, memtune workaround)."""
        imgs = self.images()
        return workload_spec(name=name, kernel=str(imgs.kernel), initrd=str(imgs.initrd),
                             accel=self.accel.accel, memory_mib=memory_mib, vcpus=vcpus,
                             workload=Workload(fill_mib, dirty_mib_s, spot_pages),
                             memtune_hard_limit_kib=detect_memtune_workaround_kib())

    def boot_guest(self, host: object, name: str, *, memory_mib: int = 1024, fill_mib: int = 64,
                   dirty_mib_s: int = 0, vcpus: int = 1, spot_pages: int = 256,
                   timeout: float = 180.0) -> Guest:
        """Start a transient workload guest on `host` and wait for its first heartbeat."""
        h = self.host(host)
        spec = self.guest_spec(name, memory_mib=memory_mib, fill_mib=fill_mib,
                               dirty_mib_s=dirty_mib_s, vcpus=vcpus, spot_pages=spot_pages)
        # A fresh console log everywhere: verify reads every host's log for this name.
        for other in self.plan.hosts(4):
            log = self.console_log(other, name, spec)
            if log.exists():
                log.unlink()
        libvirt = _libvirt()
        t0 = time.monotonic()
        conn = self.connect(h)
        try:
            conn.createXML(build_domain_xml(spec), 0)
        except libvirt.libvirtError as exc:
            raise OperationFailed(f"cannot start {name} on {h.name}: {exc}") from None
        finally:
            conn.close()
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
        libvirt = _libvirt()
        found = []
        for h, dom in self._domains_named(name):
            try:
                if dom.isActive():
                    dom.destroy()
                if dom.isPersistent():
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
        libvirt = _libvirt()
        h = self.host(host)
        conn = self.connect(h)
        stream = None
        try:
            dom = conn.lookupByName(vm)
            stream = conn.newStream(0)
            dom.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
            stream.send(b"S")
            deadline = time.monotonic() + (timeout if until else 3.0)
            while time.monotonic() < deadline:
                if until is not None and until():
                    return True
                time.sleep(0.3)
            return until is None
        except libvirt.libvirtError as exc:
            raise OperationFailed(f"cannot reach the console of {vm} on {h.name}: {exc}") from None
        finally:
            if stream is not None:
                try:
                    stream.abort()
                except libvirt.libvirtError:
                    pass
            conn.close()

    def verify(self, vm: str, host: object | None = None, timeout: float = 120.0) -> VerifyReport:
        """Is `vm`'s memory intact? Requests a full scan, waits for it, analyses every host's log."""
        h = self.host(host) if host is not None else self.find_vm(vm)
        log = self.console_log(h, vm)
        offset = log.stat().st_size if log.exists() else 0
        running = self._is_running(h, vm)
        if running:
            self.request_full_scan(h, vm, until=lambda: scan_seen(_read(log), offset), timeout=timeout)
        logs = [HostLog(other.name, _read(self.console_log(other, vm)))
                for other in self.plan.hosts(4) if self.console_log(other, vm).exists()]
        report = analyze(vm, logs, h.name, offset)
        check = Check("running_here", running,
                      f"{vm} is running on {h.name}" if running else f"{vm} is not running on {h.name}")
        report.checks.insert(0, check)
        if not running:
            report.reasons.insert(0, check.detail)
            report.intact = False
        return report

    def _is_running(self, h: HostPlan, vm: str) -> bool:
        libvirt = _libvirt()
        try:
            conn = libvirt.open(h.uri)
        except libvirt.libvirtError:
            return False
        try:
            return bool(conn.lookupByName(vm).isActive())
        except libvirt.libvirtError:
            return False
        finally:
            conn.close()

    # ---- network faults --------------------------------------------------------------------
    def cut_off(self, host: object) -> None:
        """Drop every packet between the host's address and any other address."""
        h = self.host(host)
        if not self._table_exists():
            raise OperationFailed(f"lab {self.lab_id} is not up (no nft table)")
        netcut.cut(self.plan.nft_table, h.address)

    def restore(self, host: object) -> None:
        """Undo cut_off."""
        h = self.host(host)
        if self._table_exists():
            netcut.restore(self.plan.nft_table, h.address)

    # ---- install ---------------------------------------------------------------------------
    @staticmethod
    def install() -> int:
        """Run scripts/install-system.sh (idempotent); returns its exit status."""
        return subprocess.call(["bash", str(install_script())])


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return ""


def _version(v: int) -> str:
    return f"{v // 1000000}.{v // 1000 % 1000}.{v % 1000}"


_STATES = {0: "nostate", 1: "running", 2: "blocked", 3: "paused", 4: "shutdown", 5: "shutoff",
           6: "crashed", 7: "pmsuspended"}


def _state_name(code: int) -> str:
    return _STATES.get(code, str(code))

"""`ferry.lab.Lab`: bring lab hosts up and down, boot workload guests, verify them, cut and
shape hosts' links.

One Lab object per lab id (FERRY_LAB_ID). Its state (pids, namespaces, agents, link shapes) is
a JSON file under the lab's directory, so separate processes (the CLI, pytest, the demo) act on
the same lab. Every process the lab starts is tracked by pid plus kernel start time; `down`
stops them by pid, kills whatever is still inside each host's mount namespace, and removes
the hosts' network namespaces, links and the lab bridge (ferry.lab.network).
The lab reaches each libvirtd through its unix socket (`_open`), so status, verify and down
work while a host's link is cut; `connect` gives callers the network path the engine uses.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ferry.common.errors import InvalidInput, OperationFailed
from ferry.lab import network, procs
from ferry.lab import tls as lab_tls
from ferry.lab.accel import AccelChoice, detect_accel
from ferry.lab.agents import LabAgents, agent_available
from ferry.lab.config import libvirtd_conf, qemu_conf
from ferry.lab.guests import Guest, LabGuests, libvirt_module, state_name  # noqa: F401  (Guest: re-exported)
from ferry.lab.images import GuestImages, build_images
from ferry.lab.link import LinkShape, apply_shape, remove_machine_side
from ferry.lab.plan import (
    DEFAULT_HOSTS,
    DEFAULT_ROOT,
    HOST_MOUNTS,
    HostPlan,
    LabPlan,
    check_host_count,
    lab_id_from_env,
)

Progress = Callable[[str], None]
READY_TIMEOUT_S = 90.0  # first start probes QEMU capabilities for 8-16 s, slower with 2 cores busy
CAPS_SUBDIR = Path("qemu") / "capabilities"


def _quiet(_msg: str) -> None:
    pass


def install_script() -> Path:
    """scripts/install-system.sh, found next to the package (source tree / editable install)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent / "scripts" / "install-system.sh"
        if cand.exists():
            return cand
    raise OperationFailed("scripts/install-system.sh not found next to the ferry package")


class Lab(LabAgents, LabGuests):
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
        with self._locked() as state:
            self._delete_legacy_table()
            network.ensure_bridge(self.plan)
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
                network.ensure_host(self.plan, host)
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
                    spawned = []  # all agents start at once, then the lab waits for each
                    for host in self.plan.hosts(hosts):
                        hs = hstates[str(host.index)]
                        agent = hs.get("agent") or {}
                        if procs.is_same_process(agent.get("pid"), agent.get("start")):
                            continue
                        hs["agent"] = self._spawn_agent(host, hs, agent.get("extra_args", []))
                        spawned.append(host)
                    for host in spawned:
                        hs = hstates[str(host.index)]
                        self._wait_agent(host, hs, hs["agent"], progress)
                else:
                    progress("host agent: not available in this installation (ferry.agent has no "
                             "runnable module yet); hosts run without agents")
        progress(f"lab {self.lab_id} up: {hosts} host(s) in {time.monotonic() - t0:.1f} s")
        return self.status()

    def _check_can_run(self) -> None:
        if os.geteuid() != 0:
            raise OperationFailed("the lab needs root (mount/UTS/network namespaces, libvirtd)")
        for tool in ("unshare", "nsenter", "libvirtd", "qemu-system-x86_64", "ip", "tc", "nft"):
            if shutil.which(tool) is None:
                raise OperationFailed(f"{tool} not found: run `ferry lab install` first")

    def _delete_legacy_table(self) -> None:
        """Earlier labs cut hosts off with an nft table in the machine's namespace: remove it."""
        if shutil.which("nft"):
            subprocess.run(["nft", "delete", "table", "inet", self.plan.nft_table], capture_output=True)

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
        libvirt = libvirt_module()
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = ""
        while time.monotonic() < deadline:
            if not procs.alive(hs["pid"]):
                raise OperationFailed(f"{host.name}: libvirtd exited during start-up: "
                                      f"{self._tail(host.dir / 'libvirtd.out')}")
            try:
                with self._open(host, local=False) as conn:
                    conn.getCapabilities()
                    return
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

    # ---- down ------------------------------------------------------------------------------
    def restart_libvirtd(self, host: object, while_down: Callable[[], None] = lambda: None) -> dict:
        """Restart a host's libvirtd as `systemctl restart libvirtd` does on a hypervisor:
        SIGTERM, then a new daemon in the same mount and UTS namespaces, so the guests' QEMU
        processes run on and the new libvirtd reconnects to them. (`up` after a crash is
        different: it kills whatever a dead host left behind, guests included.) `while_down`
        runs between the stop and the start."""
        h = self.host(host)
        with self._locked() as state:
            hs = state.get("hosts", {}).get(str(h.index))
            if not hs or not self._libvirtd_running(hs):
                raise OperationFailed(f"{h.name} is not up (run `ferry lab up`)")
            # Open handles keep the namespaces alive while no process of the host's runs in them.
            fds = [os.open(f"/proc/{hs['pid']}/ns/{kind}", os.O_RDONLY) for kind in ("mnt", "uts")]
            try:
                how = procs.stop(hs["pid"])
                while_down()
                mnt, uts = (f"/proc/{os.getpid()}/fd/{fd}" for fd in fds)
                pid = procs.spawn(procs.libvirtd_restart_command(h, mnt, uts), h.dir / "libvirtd.out")
                hs.update(pid=pid, start=procs.start_time(pid))
                self._write_state(state)
                self._wait_libvirtd(h, hs)
            finally:
                for fd in fds:
                    os.close(fd)
        return {"host": h.name, "stopped": how, "pid": hs["pid"]}

    def down(self, progress: Progress = _quiet) -> dict:
        """Stop agents, guests and libvirtd of every host (by pid); remove the hosts' network
        namespaces and links and the lab bridge."""
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
            for host in self.plan.hosts(4):  # also those a failed up left behind
                if network.netns_exists(host) or network.link_exists(host.veth):
                    remove_machine_side(host)
                    network.remove_host(host)
            network.remove_bridge(self.plan)
            self._delete_legacy_table()
            state["hosts"] = {}
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
        libvirt = libvirt_module()
        try:
            with self._open(host) as conn:
                for dom in conn.listAllDomains():
                    try:
                        persistent = dom.isPersistent()
                        if dom.isActive():
                            dom.destroy()
                        if persistent:
                            dom.undefine()
                    except libvirt.libvirtError:
                        pass
        except libvirt.libvirtError:
            return

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
        libvirt = libvirt_module()
        state = self._read_state()
        hosts = []
        for idx, hs in sorted(state.get("hosts", {}).items()):
            host = self.plan.host(int(idx))
            entry: dict = {"name": host.name, "index": host.index, "address": host.address,
                           "uri": host.uri, "host_uuid": host.host_uuid, "dir": str(host.dir),
                           "libvirtd_pid": hs.get("pid"), "running": self._libvirtd_running(hs),
                           "netns": host.netns, "link": host.veth, "cut_off": network.is_cut(host),
                           "shape": LinkShape.from_dict(hs.get("shape")).describe(), "vms": []}
            agent = hs.get("agent") or {}
            entry["agent"] = {"url": host.agent_url, "pid": agent.get("pid"),
                              "running": procs.is_same_process(agent.get("pid"), agent.get("start")),
                              "extra_args": agent.get("extra_args", []),
                              "error": agent.get("error")} if agent else None
            if entry["running"]:
                try:
                    with self._open(host) as conn:
                        entry["libvirt_version"] = _version(conn.getLibVersion())
                        entry["qemu_version"] = _version(conn.getVersion())
                        entry["hostname"] = conn.getHostname()
                        entry["vms"] = [{"name": d.name(), "state": state_name(d.state()[0])}
                                        for d in conn.listAllDomains()]
                except libvirt.libvirtError as exc:
                    entry["error"] = str(exc)
            hosts.append(entry)
        return {"lab_id": self.lab_id, "dir": str(self.plan.dir), "accel": self.accel.accel,
                "accel_reason": self.accel.reason, "agent_available": agent_available(),
                "hosts": hosts}

    # ---- guest images ---------------------------------------------------------------------
    def images(self, progress: Progress = _quiet) -> GuestImages:
        """The guest kernel and initramfs (built once, cached under <root>/images)."""
        return build_images(self.plan.images_dir, progress)

    # ---- network faults --------------------------------------------------------------------
    def cut_off(self, host: object) -> None:
        """Pull the host's cable: nothing it sends or receives crosses the lab network (its
        QEMU migration streams, libvirtd and agent connections stall as with a real pulled
        cable), while its agent still reaches its own libvirtd locally."""
        network.cut(self.host(host))

    def restore(self, host: object) -> None:
        """Put the cable back (idempotent)."""
        network.restore(self.host(host))

    def link(self, host: object, shape: LinkShape) -> LinkShape:
        """Shape the host's link both ways (LinkShape() clears it); kept until down or reshaped."""
        h = self.host(host)
        if not network.link_exists(h.veth):
            raise OperationFailed(f"{h.name} is not up (no link {h.veth}; run `ferry lab up`)")
        with self._locked() as state:
            hs = state.setdefault("hosts", {}).setdefault(str(h.index), {})
            try:
                apply_shape(h, shape)
            except InvalidInput:
                hs["shape"] = None  # a refused shape leaves the link cleared
                self._write_state(state)
                raise
            hs["shape"] = shape.to_dict()
        return shape

    def run_in_host(self, host: object, argv: list[str], **kwargs) -> subprocess.Popen:
        """Start argv inside the host's network namespace (e.g. iperf3, or a client that must
        reach the agent from the host itself while the host is cut off)."""
        return subprocess.Popen(network.netns_exec(self.host(host), argv), **kwargs)

    # ---- install ---------------------------------------------------------------------------
    @staticmethod
    def install() -> int:
        """Run scripts/install-system.sh (idempotent); returns its exit status."""
        return subprocess.call(["bash", str(install_script())])


def _version(v: int) -> str:
    return f"{v // 1000000}.{v // 1000 % 1000}.{v % 1000}"

"""Processes the lab starts and stops, tracked by pid (never by name).

libvirtd runs in the host's network namespace (made by ferry.lab.network; `nsenter` joins it)
and its own mount + UTS namespace: `unshare` creates them and execs a shell that bind-mounts
the host's own libvirt directories, sets the hostname and execs libvirtd, so the pid we saved
is libvirtd's own. QEMU processes it starts share that mount namespace,
which is how `down` finds every process left in it (by the namespace inode recorded at up).
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

from ferry.lab.plan import HOST_MOUNTS, HostPlan

LIBVIRTD_STOP_WAIT_S = 35.0  # libvirtd 11.3 sometimes hangs up to its own 30 s shutdown limit


def _libvirtd_argv(libvirtd: str) -> list[str]:
    """libvirtd as every lab host runs it, inside the host's mounts."""
    return [libvirtd, "--listen", "--config", "/etc/libvirt/libvirtd.conf", "--pid-file", "/run/libvirt/libvirtd.pid"]


def libvirtd_command(host: HostPlan, libvirtd: str = "libvirtd") -> list[str]:
    """nsenter (network) + unshare (mount, UTS) + shell + exec libvirtd: the command that
    starts one lab host (pure). The host's copy of /run/netns is detached first, so the host
    does not pin other hosts' network namespaces after they are deleted."""
    steps = ["umount -l /run/netns 2>/dev/null || true", "set -e"]
    for sub, target in HOST_MOUNTS:
        steps.append(f"mount --bind {shlex.quote(str(host.dir / sub))} {shlex.quote(target)}")
    steps.append(f"hostname {shlex.quote(host.name)}")
    steps.append("exec " + shlex.join(_libvirtd_argv(libvirtd)))
    return ["nsenter", f"--net=/run/netns/{host.netns}", "--",
            "unshare", "--mount", "--uts", "--propagation", "private", "--",
            "/bin/sh", "-c", "; ".join(steps)]


def libvirtd_restart_command(host: HostPlan, mount_ns_path: str, uts_ns_path: str,
                             libvirtd: str = "libvirtd") -> list[str]:
    """The command that starts a host's libvirtd again inside the namespaces its guests still
    live in (pure): the host's mounts and hostname are already there, so only libvirtd runs."""
    return ["nsenter", f"--net=/run/netns/{host.netns}", f"--mount={mount_ns_path}",
            f"--uts={uts_ns_path}", "--", *_libvirtd_argv(libvirtd)]


def spawn(cmd: list[str], log_path: Path, env: dict[str, str] | None = None) -> int:
    """Start a detached process (own session, output to a log file) and return its pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, env=env)
    # The Popen object is dropped on purpose: the process outlives this one (the CLI exits);
    # `alive` reaps it if it is our child.
    return proc.pid


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def alive(pid: int | None) -> bool:
    """Whether pid runs (zombies count as gone; our own children are reaped)."""
    if not pid:
        return False
    _reap(pid)
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def start_time(pid: int) -> int | None:
    """Kernel start time of pid (clock ticks since boot): tells a reused pid from ours."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def is_same_process(pid: int | None, started: int | None) -> bool:
    return bool(pid) and alive(pid) and (started is None or start_time(pid) == started)


def mount_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def pids_in_mount_ns(ns: str) -> list[int]:
    """Every live process whose mount namespace is `ns` (e.g. "mnt:[4026532..]")."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and mount_ns(int(entry)) == ns and alive(int(entry)):
            out.append(int(entry))
    return sorted(out)


def has_host_mounts(pid: int, host: HostPlan) -> bool:
    """Whether pid sees this host's own etc dir bind-mounted on /etc/libvirt (its namespace).

    mountinfo gives a bind mount's root relative to its filesystem, so compare the tail.
    """
    tail = "/" + "/".join([*host.dir.parts[-2:], "etc"])
    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 4 and fields[4] == "/etc/libvirt" and fields[3].endswith(tail):
                    return True
    except OSError:
        pass
    return False


def same_netns(pid: int, other: int) -> bool:
    """Whether two processes share a network namespace (an agent not yet inside its host's
    namespace would otherwise see the machine's own sockets)."""
    try:
        return os.readlink(f"/proc/{pid}/ns/net") == os.readlink(f"/proc/{other}/ns/net")
    except OSError:
        return False


def listening_on(pid: int, port: int) -> bool:
    """Whether a TCP socket listens on `port` in pid's network namespace (read from
    /proc/<pid>/net/tcp: a local path, so it works while the host's link is cut)."""
    try:
        with open(f"/proc/{pid}/net/tcp") as f:
            next(f, None)
            for line in f:
                fields = line.split()
                if len(fields) > 3 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    return True
    except (OSError, ValueError, IndexError):
        pass
    return False


def signal_pid(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait until all pids are gone or the timeout passes; returns those still alive."""
    deadline = time.monotonic() + timeout
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in left if alive(p)]
    return left


def stop(pid: int, timeout: float = LIBVIRTD_STOP_WAIT_S) -> str:
    """SIGTERM, wait up to `timeout`, then SIGKILL. Returns how it ended."""
    if not alive(pid):
        return "not running"
    signal_pid(pid, signal.SIGTERM)
    if not wait_gone([pid], timeout):
        return "stopped"
    signal_pid(pid, signal.SIGKILL)
    wait_gone([pid], 5)
    return "killed after SIGTERM timeout"

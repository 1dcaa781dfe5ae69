"""A scratch lab (its own id, beside the session lab) comes up with 3 hosts and goes down clean.

Uses lab id FERRY_SCRATCH_LAB_ID (default 7), which must be neither the session lab's
(FERRY_LAB_ID, default 0) nor the agent tests' (1) nor another running lab's; it checks only
its own processes, mounts, namespaces and links.
"""
from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ferry.lab import Lab, procs
from tests.fixtures.lab import lab_skip_reason

pytestmark = pytest.mark.lab

SCRATCH_LAB_ID = int(os.environ.get("FERRY_SCRATCH_LAB_ID", "7"))


def live_pids_in_ns(ns: str) -> list[int]:
    return procs.pids_in_mount_ns(ns)  # zombies excluded: they hold no namespace or mount


def lab_mounts(lab: Lab) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if str(lab.plan.dir) in line]


def tcp_reachable(dst: str, port: int, timeout: float = 1.5) -> bool:
    """From the machine's own namespace (where the engine runs), over the lab bridge."""
    s = socket.socket()
    s.settimeout(timeout)
    try:
        s.connect((dst, port))
        return True
    except OSError as exc:
        return exc.errno == errno.ECONNREFUSED  # reached the host, nothing listening
    finally:
        s.close()


PROBE = """
import errno, socket, sys
s = socket.socket(); s.settimeout(1.5)
try:
    s.connect((sys.argv[1], int(sys.argv[2]))); sys.exit(0)
except OSError as exc:
    sys.exit(0 if exc.errno == errno.ECONNREFUSED else 1)
"""


def reachable_from(lab: Lab, host: int, dst: str, port: int) -> bool:
    """From inside lab host `host`'s network namespace."""
    proc = lab.run_in_host(host, [sys.executable, "-c", PROBE, dst, str(port)])
    return proc.wait(10) == 0


def lab_links(lab: Lab) -> list[str]:
    prefix = f"ferry{lab.lab_id}"
    return sorted(n for n in os.listdir("/sys/class/net") if n.startswith(prefix))


def lab_netns(lab: Lab) -> list[str]:
    d = Path("/run/netns")
    return sorted(n for n in os.listdir(d) if n.startswith(f"ferry{lab.lab_id}-")) if d.exists() else []


@pytest.fixture
def scratch_lab():
    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)
    lab = Lab(SCRATCH_LAB_ID)
    yield lab
    lab.down()


def test_three_host_lab_up_cut_off_and_down_leaves_nothing(scratch_lab):
    lab = scratch_lab
    status = lab.up(3, agents=False)
    hosts = status["hosts"]
    assert [h["name"] for h in hosts] == [f"ferry{SCRATCH_LAB_ID}-h{i}" for i in (1, 2, 3)]
    assert [h["address"] for h in hosts] == [f"198.18.{SCRATCH_LAB_ID}.{i}" for i in (2, 3, 4)]
    lid = SCRATCH_LAB_ID
    assert lab_netns(lab) == [f"ferry{lid}-h1", f"ferry{lid}-h2", f"ferry{lid}-h3"]
    assert lab_links(lab) == [f"ferry{lid}br", f"ferry{lid}h1", f"ferry{lid}h2", f"ferry{lid}h3"]
    assert all(h["running"] for h in hosts)
    assert [h["hostname"] for h in hosts] == [f"ferry{SCRATCH_LAB_ID}-h{i}" for i in (1, 2, 3)]
    assert len({h["host_uuid"] for h in hosts}) == 3
    assert all(h["libvirt_version"].startswith("11.") for h in hosts)

    # Idempotent: a second up keeps the same daemons.
    pids = [h["libvirtd_pid"] for h in hosts]
    assert [h["libvirtd_pid"] for h in lab.up(3, agents=False)["hosts"]] == pids

    # Each libvirtd is in its own mount namespace, with the host's own dirs mounted.
    state = lab._read_state()["hosts"]
    namespaces = [state[str(i)]["mnt_ns"] for i in (1, 2, 3)]
    assert len(set(namespaces)) == 3 and procs.mount_ns(os.getpid()) not in namespaces

    # A guest on host 3, so that down has a QEMU process to clean up.
    guest = lab.boot_guest(3, "scratch-guest", memory_mib=256, fill_mib=32)
    assert lab.console_log(3, guest.name).exists()  # the console log is readable from outside

    # Every host reaches every other, and the machine (engine side) reaches them all.
    h1, h2, h3 = (lab.host(i).address for i in (1, 2, 3))
    assert all(tcp_reachable(a, 16509) for a in (h1, h2, h3))
    assert reachable_from(lab, 1, h2, 16509) and reachable_from(lab, 2, h1, 16509)
    # Cut host 2 off: nobody reaches it, it reaches nobody, but it still reaches itself and
    # the lab still sees its libvirtd (through the unix socket); restore undoes it.
    lab.cut_off(2)
    cut = lab.status()["hosts"][1]
    assert cut["cut_off"] and cut["libvirt_version"].startswith("11.")
    assert not tcp_reachable(h2, 16509)
    assert not reachable_from(lab, 1, h2, 16509)
    assert not reachable_from(lab, 2, h1, 16509)
    assert reachable_from(lab, 2, h2, 16509)
    assert reachable_from(lab, 1, h3, 16509) and tcp_reachable(h3, 16509)
    lab.restore(2)
    assert not lab.status()["hosts"][1]["cut_off"]
    assert tcp_reachable(h2, 16509) and reachable_from(lab, 1, h2, 16509)

    # Host 3's libvirtd restarted as an admin restarts it (systemctl restart): the guest's QEMU
    # runs on, and the new daemon, in the same namespaces, lists the guest running.
    qemu_before = {p for p in procs.pids_in_mount_ns(namespaces[2]) if p != pids[2]}
    restarted = lab.restart_libvirtd(3)
    assert restarted["pid"] != pids[2] and restarted["stopped"] == "stopped", restarted
    assert procs.mount_ns(restarted["pid"]) == namespaces[2]
    assert qemu_before and qemu_before <= set(procs.pids_in_mount_ns(namespaces[2]))
    assert [(c.host, c.state) for c in lab.copies(guest.name)] == [(lab.host(3).name, "running")]
    pids[2] = restarted["pid"]

    # Host 3's libvirtd dies (as after a crash), leaving its QEMU behind: down must still
    # find that QEMU through the host's namespace and stop it.
    assert procs.has_host_mounts(pids[2], lab.host(3)) and not procs.has_host_mounts(pids[2], lab.host(2))
    qemu = [p for p in procs.pids_in_mount_ns(namespaces[2]) if p != pids[2]]
    assert qemu, "no QEMU process in host 3's namespace"
    os.kill(pids[2], signal.SIGKILL)
    procs.wait_gone([pids[2]], 5)

    summary = lab.down()
    assert set(summary) == {f"ferry{SCRATCH_LAB_ID}-h{i}" for i in (1, 2, 3)}
    assert "leftover" in summary[f"ferry{SCRATCH_LAB_ID}-h3"]
    for pid in qemu:
        assert not procs.alive(pid), f"QEMU {pid} still running"
    for pid in pids:
        assert not procs.alive(pid), f"libvirtd {pid} still running"
    for ns in namespaces:
        assert live_pids_in_ns(ns) == [], f"processes left in {ns}"
    assert lab_mounts(lab) == []
    assert lab.hosts() == []
    assert lab.status()["hosts"] == []
    # No namespace, veth or bridge is left, nor the nft table earlier labs used ...
    assert lab_netns(lab) == [] and lab_links(lab) == []
    assert subprocess.run(["nft", "list", "table", "inet", lab.plan.nft_table],
                          capture_output=True).returncode != 0
    # ... and the guard route stays on purpose: a lab address now fails at once, locally,
    # instead of following the machine's default route.
    route = subprocess.run(["ip", "route", "get", h2], capture_output=True, text=True)
    assert route.returncode != 0 and "no route to host" in route.stderr.lower(), route
    assert not tcp_reachable(h2, 16509)

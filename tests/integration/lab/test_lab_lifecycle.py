"""A scratch lab (its own id, beside the session lab) comes up with 3 hosts and goes down clean.

Uses lab id 7, which neither the session lab (FERRY_LAB_ID, default 0) nor the agent tests (1)
use, and checks only its own processes, mounts and namespaces.
"""
from __future__ import annotations

import errno
import os
import signal
import socket

import pytest

from ferry.lab import Lab, procs
from tests.fixtures.lab import lab_skip_reason

pytestmark = pytest.mark.lab

SCRATCH_LAB_ID = 7


def live_pids_in_ns(ns: str) -> list[int]:
    return procs.pids_in_mount_ns(ns)  # zombies excluded: they hold no namespace or mount


def lab_mounts(lab: Lab) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if str(lab.plan.dir) in line]


def tcp_reachable(src: str, dst: str, port: int, timeout: float = 1.5) -> bool:
    s = socket.socket()
    s.settimeout(timeout)
    try:
        s.bind((src, 0))
        s.connect((dst, port))
        return True
    except OSError as exc:
        if exc.errno == errno.ECONNREFUSED:
            return True  # reached the host, nothing listening
        return False
    finally:
        s.close()


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
    assert [h["name"] for h in hosts] == ["ferry7-h1", "ferry7-h2", "ferry7-h3"]
    assert [h["address"] for h in hosts] == ["127.0.7.2", "127.0.7.3", "127.0.7.4"]
    assert all(h["running"] for h in hosts)
    assert [h["hostname"] for h in hosts] == ["ferry7-h1", "ferry7-h2", "ferry7-h3"]
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

    # Cut host 2 off: nobody reaches it, it reaches nobody; restore undoes it.
    h1, h2 = lab.host(1).address, lab.host(2).address
    assert tcp_reachable(h1, h2, 16509)
    lab.cut_off(2)
    assert lab.status()["hosts"][1]["cut_off"]
    assert not tcp_reachable(h1, h2, 16509)
    assert not tcp_reachable(h2, h1, 16509)
    assert tcp_reachable(h1, lab.host(3).address, 16509)
    lab.restore(2)
    assert tcp_reachable(h1, h2, 16509)

    # Host 3's libvirtd dies (as after a crash), leaving its QEMU behind: down must still
    # find that QEMU through the host's namespace and stop it.
    assert procs.has_host_mounts(pids[2], lab.host(3)) and not procs.has_host_mounts(pids[2], lab.host(2))
    qemu = [p for p in procs.pids_in_mount_ns(namespaces[2]) if p != pids[2]]
    assert qemu, "no QEMU process in host 3's namespace"
    os.kill(pids[2], signal.SIGKILL)
    procs.wait_gone([pids[2]], 5)

    summary = lab.down()
    assert set(summary) == {"ferry7-h1", "ferry7-h2", "ferry7-h3"}
    assert "leftover" in summary["ferry7-h3"]
    for pid in qemu:
        assert not procs.alive(pid), f"QEMU {pid} still running"
    for pid in pids:
        assert not procs.alive(pid), f"libvirtd {pid} still running"
    for ns in namespaces:
        assert live_pids_in_ns(ns) == [], f"processes left in {ns}"
    assert lab_mounts(lab) == []
    assert lab.hosts() == []
    assert lab.status()["hosts"] == []
    import subprocess
    assert subprocess.run(["nft", "list", "table", "inet", lab.plan.nft_table],
                          capture_output=True).returncode != 0

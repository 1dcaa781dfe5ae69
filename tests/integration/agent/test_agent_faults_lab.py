"""Agent faults on the real lab (issue 11): a killed source agent's successor adopts the running
migration, and an agent outlives its libvirtd's restart."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ferry.common.jsonrpc import JsonRpcClient, JsonRpcError

pytestmark = pytest.mark.lab

GUEST = "agt-adopt"
TEST_AGENT_PORT = 54399


@pytest.fixture(scope="module")
def guest(agent_lab):
    lab = agent_lab.lab
    lab.destroy_guest(GUEST)
    booted = lab.boot_guest(agent_lab.h1, GUEST, memory_mib=512, fill_mib=128, dirty_mib_s=2)
    yield booted.spec.effective_uuid
    lab.destroy_guest(GUEST)


def host_entry(lab, host) -> dict:
    return next(h for h in lab.status()["hosts"] if h["index"] == host.index)


def migrate_slowly_until_it_moves(agent_lab, src, guest) -> None:
    """8 MiB/s for ~150 MiB of touched memory: about 20 s, long enough to kill an agent mid-way;
    returns once more than 16 MiB have moved."""
    agent_lab.migrate(src, guest, maxBandwidth=8, maxTimePerGiB=0)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = agent_lab.agent(src).call("VM.getMigrationStatus", {"vmID": guest})
        if status["state"] == "running" and status["dataProcessed"] > 16 << 20:
            break
        time.sleep(0.3)
    assert status["state"] == "running", status


def test_restarted_source_agent_adopts_the_running_migration(agent_lab, guest):
    lab = agent_lab.lab
    src = agent_lab.where(guest)
    dst = agent_lab.other(src)
    migrate_slowly_until_it_moves(agent_lab, src, guest)
    os.kill(host_entry(lab, src)["agent"]["pid"], signal.SIGKILL)
    lab.restart_agent(src)
    seen = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and seen is None:
        try:
            status = agent_lab.agent(src).call("VM.getMigrationStatus", {"vmID": guest})
        except JsonRpcError:
            time.sleep(0.2)
            continue
        if status["state"] in ("running", "succeeded", "failed"):
            seen = status
        time.sleep(0.2)
    assert seen is not None and seen["state"] == "running", seen          # not "no migration"
    assert "adopted from libvirt" in seen["message"] and seen["direction"] == "outgoing"
    final = agent_lab.wait_final(src, guest, timeout=180)
    assert final["state"] == "succeeded", final
    assert agent_lab.where(guest) == dst and guest not in agent_lab.vm_ids(src)
    report = lab.verify(GUEST, dst)
    assert report.intact, report.reasons


def test_restarted_destination_agent_adopts_the_incoming_migration(agent_lab, guest):
    lab = agent_lab.lab
    src = agent_lab.where(guest)
    dst = agent_lab.other(src)
    migrate_slowly_until_it_moves(agent_lab, src, guest)
    os.kill(host_entry(lab, dst)["agent"]["pid"], signal.SIGKILL)
    lab.restart_agent(dst)
    incoming = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and incoming is None:
        try:
            answer = agent_lab.agent(dst).call("VM.getMigrationStatus", {"vmID": guest})
            if answer.get("direction") == "incoming":
                incoming = answer
        except JsonRpcError:
            pass
        time.sleep(0.2)
    source_final = agent_lab.wait_final(src, guest, timeout=180)
    assert incoming is not None and incoming["state"] in ("running", "succeeded"), incoming
    assert source_final["state"] == "succeeded", source_final
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answer = agent_lab.agent(dst).call("VM.getMigrationStatus", {"vmID": guest})
        if answer["state"] != "running":
            break
        time.sleep(0.2)
    assert answer["state"] == "succeeded", answer
    assert agent_lab.agent(dst).call("Host.getStats", {})["incomingVmMigrations"] == 0
    assert agent_lab.where(guest) == dst
    report = lab.verify(GUEST, dst)
    assert report.intact, report.reasons


def test_agent_comes_back_by_itself_after_its_libvirtd_restarts(agent_lab, tmp_path: Path):
    """A test agent outside the host's namespace (in --dev mode on loopback) talks to host 3's
    libvirtd over TCP across the lab bridge; the lab restarts that libvirtd (stop by pid,
    `lab.up`); the same agent process answers again."""
    lab = agent_lab.lab
    h3 = lab.host(3)
    log_file = tmp_path / "test-agent.log"
    proc = subprocess.Popen([sys.executable, "-m", "ferry.agent", "run", "--dev", "--address", "127.0.0.1",
                             "--port", str(TEST_AGENT_PORT), "--libvirt-uri", h3.uri, "--log-file", str(log_file)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    client = JsonRpcClient(f"http://127.0.0.1:{TEST_AGENT_PORT}/jsonrpc", timeout=5)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client.call("Host.getStats", {})
                break
            except JsonRpcError:
                assert time.monotonic() < deadline, log_file.read_text()
                time.sleep(0.2)
        pid = host_entry(lab, h3)["libvirtd_pid"]
        stopped_at = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        errors = []
        while time.monotonic() - stopped_at < 40:
            try:
                client.call("Host.getStats", {})
            except JsonRpcError as exc:
                errors.append(exc)
                break
            time.sleep(0.1)
        noticed_after = time.monotonic() - stopped_at
        assert errors and errors[0].data["name"] == "libvirtUnavailable", errors
        assert "libvirt unavailable" in errors[0].message
        t0 = time.monotonic()
        with pytest.raises(JsonRpcError) as err:
            client.call("VM.getStats", {"vmID": "00000000-0000-0000-0000-000000000001"})
        assert err.value.data["name"] == "libvirtUnavailable" and time.monotonic() - t0 < 1.0
        lab.up(3)
        up_at = time.monotonic()
        while True:
            try:
                stats = client.call("Host.getStats", {})
                break
            except JsonRpcError as exc:
                assert exc.data and exc.data.get("name") == "libvirtUnavailable", exc
                assert time.monotonic() - up_at < 30, "agent did not reconnect within 30 s of libvirtd's return"
                time.sleep(0.1)
        back_after = time.monotonic() - up_at
        print(f"\nlibvirtd stopped: 'libvirt unavailable' answered {noticed_after:.2f} s later; the agent "
              f"answered again {back_after:.2f} s after `lab up` returned (outage {time.monotonic() - stopped_at:.1f} s)")
        assert stats["vmCount"] >= 0 and proc.poll() is None          # the same process
        text = log_file.read_text()
        assert "libvirt connection back after" in text
        print("".join(line for line in text.splitlines(keepends=True)
                      if "libvirt connection" in line or "reconnect attempt" in line))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()

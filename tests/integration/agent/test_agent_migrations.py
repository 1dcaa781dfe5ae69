"""Real agents migrating real QEMU guests between two lab hosts (libvirt 11 / QEMU 10)."""
from __future__ import annotations

import json
import time

import libvirt
import libvirt_qemu
import pytest

pytestmark = pytest.mark.lab

GUEST = "agt-guest"


@pytest.fixture(scope="module")
def guest(agent_lab):
    """One small workload guest that fills 128 MiB and dirties 32 MiB/s, booted on host 1."""
    lab = agent_lab.lab
    lab.destroy_guest(GUEST)
    booted = lab.boot_guest(agent_lab.h1, GUEST, memory_mib=512, fill_mib=128, dirty_mib_s=32)
    yield booted.spec.effective_uuid
    lab.destroy_guest(GUEST)


def qmp(host, vm_name, command):
    conn = libvirt.open(host.uri)
    try:
        answer = libvirt_qemu.qemuMonitorCommand(conn.lookupByName(vm_name), json.dumps({"execute": command}), 0)
        return json.loads(answer)["return"]
    finally:
        conn.close()


def assert_intact(agent_lab, host):
    report = agent_lab.lab.verify(GUEST, host)
    assert report.intact, report.reasons


def test_zerocopy_parallel_migration_engages_zero_copy(agent_lab, guest):
    src = agent_lab.where(guest)
    dst = agent_lab.other(src)
    answer = agent_lab.migrate(src, guest, parallel=4, zerocopy=True, maxBandwidth=48)
    assert answer["status"]["message"] == "Migration in progress"
    seen: dict = {}

    def look(status):
        if status["state"] == "running" and status["dataProcessed"] and "caps" not in seen:
            caps = {c["capability"]: c["state"] for c in qmp(src, GUEST, "query-migrate-capabilities")}
            params = qmp(src, GUEST, "query-migrate-parameters")
            seen["caps"], seen["channels"] = caps, params.get("multifd-channels")
        seen.setdefault("progress", []).append(status["progress"])

    status = agent_lab.wait_final(src, guest, on_status=look)
    assert status["state"] == "succeeded", status
    assert seen["caps"]["zero-copy-send"] is True and seen["caps"]["multifd"] is True
    assert seen["channels"] == 4
    assert "VIR_MIGRATE_ZEROCOPY" in status["flags"] and "VIR_MIGRATE_PARALLEL" in status["flags"]
    assert status["typedParams"]["parallel.connections"] == 4
    assert status["progress"] == 100 and seen["progress"] == sorted(seen["progress"])
    assert status["downtime"] is not None and status["totalTime"] > 0 and status["bytesTransferred"] > 0
    assert agent_lab.where(guest) == dst and guest not in agent_lab.vm_ids(src)
    assert_intact(agent_lab, dst)


def test_zerocopy_without_parallel_is_refused_and_vm_keeps_running(agent_lab, guest):
    src = agent_lab.where(guest)
    dst = agent_lab.other(src)
    agent_lab.migrate(src, guest, zerocopy=True)
    status = agent_lab.wait_final(src, guest)
    assert status["state"] == "failed"
    assert "parallel" in status["error"], status["error"]   # libvirt's own message
    assert "VIR_MIGRATE_ZEROCOPY" in status["flags"] and "VIR_MIGRATE_PARALLEL" not in status["flags"]
    assert agent_lab.agent(src).call("VM.getStats", {"vmID": guest})["status"] == "Up"
    assert guest not in agent_lab.vm_ids(dst)
    assert agent_lab.agent(dst).call("Host.getStats", {})["incomingVmMigrations"] == 0


def test_cancel_mid_migration_leaves_vm_on_source(agent_lab, guest):
    src = agent_lab.where(guest)
    dst = agent_lab.other(src)
    agent_lab.migrate(src, guest, maxBandwidth=4)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = agent_lab.agent(src).call("VM.getMigrationStatus", {"vmID": guest})
        if status["state"] == "running" and status["dataProcessed"] > 0:
            break
        time.sleep(0.3)
    assert status["state"] == "running", status
    agent_lab.agent(src).call("VM.migrateCancel", {"vmID": guest})
    status = agent_lab.wait_final(src, guest, timeout=60)
    assert status["state"] == "cancelled", status
    assert status["error"]
    assert agent_lab.where(guest) == src and guest not in agent_lab.vm_ids(dst)
    assert agent_lab.agent(src).call("VM.getStats", {"vmID": guest})["status"] == "Up"
    assert_intact(agent_lab, src)


def test_schedule_ends_in_abort_when_dirtying_beats_the_bandwidth(agent_lab, guest):
    src = agent_lab.where(guest)
    dst = agent_lab.other(src)
    schedule = {"init": [{"name": "setDowntime", "params": ["30"]}],
                "stalling": [{"limit": 1, "action": {"name": "setDowntime", "params": ["40"]}},
                             {"limit": -1, "action": {"name": "abort", "params": []}}]}
    # 32 MiB/s dirtied against a 16 MiB/s cap and 40 ms downtime: it cannot converge.
    agent_lab.migrate(src, guest, maxBandwidth=16, convergenceSchedule=schedule)
    status = agent_lab.wait_final(src, guest, timeout=300)
    assert status["state"] == "aborted", status
    actions = [(a["n"], a["action"]) for a in status["scheduleActions"]]
    assert actions == [(None, "setDowntime(30)"), (2, "setDowntime(40)"), (3, "abort")], actions
    assert agent_lab.where(guest) == src and guest not in agent_lab.vm_ids(dst)
    assert_intact(agent_lab, src)


def test_old_agent_logs_unrecognized_zerocopy_and_migrates_without_it(agent_lab, guest):
    lab = agent_lab.lab
    src = agent_lab.where(guest)
    dst = agent_lab.other(src)
    lab.restart_agent(src, ["--old-agent"])
    try:
        caps = agent_lab.agent(src).call("Host.getCapabilities", {})
        assert "zerocopy_migrations" not in caps and "zerocopy_checks" not in caps
        agent_lab.migrate(src, guest, parallel=2, zerocopy=True, maxBandwidth=0)
        status = agent_lab.wait_final(src, guest)
        assert status["state"] == "succeeded", status
        assert "VIR_MIGRATE_ZEROCOPY" not in status["flags"] and "VIR_MIGRATE_PARALLEL" in status["flags"]
        log_text = (src.dir / "agent.log").read_text()
        assert "parameters ['zerocopy'] were not recognized" in log_text
        assert_intact(agent_lab, dst)
    finally:
        lab.restart_agent(src, [])


def test_long_poll_follows_a_real_migration_and_hears_the_end_while_waiting(agent_lab, guest):
    """VM.getMigrationStatus with waitForChange against real libvirt: every answer is news (a new
    version) or the end, and the end comes back on a call already held, not at its timeout."""
    src = agent_lab.where(guest)
    dst = agent_lab.other(src)
    agent_lab.migrate(src, guest, parallel=2, maxBandwidth=64)
    seen, answers = 0, []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        asked = time.monotonic()
        status = agent_lab.agent(src).call("VM.getMigrationStatus",
                                           {"vmID": guest, "waitForChange": {"version": seen, "timeout": 5}})
        answers.append((status["version"] != seen, time.monotonic() - asked))
        seen = status["version"]
        if status["state"] in ("succeeded", "failed", "cancelled", "aborted"):
            break
    assert status["state"] == "succeeded", status
    assert all(changed for changed, _ in answers)           # no answer came back without news
    assert answers[-1][1] < 4.9                             # the end woke the held call
    assert status["migrationStartedAt"] < status["migrationReturnedAt"] <= status["endedAt"]
    assert agent_lab.where(guest) == dst
    assert_intact(agent_lab, dst)

"""The agent reads QEMU's dirty-sync-missed-zero-copy over QMP during a zero-copy migration and
carries it in VM.getMigrationStatus (recording fake of libvirt and of QEMU's monitor)."""
from __future__ import annotations

from tests.unit.agent.fake_libvirt import iterating_script
from tests.unit.agent.test_agent_api import VM, pair, rpc, wait_final  # noqa: F401 - pair is a fixture

ZEROCOPY = {"dst": "h2", "parallel": 2, "zerocopy": True}


def use_fake_monitor(agent) -> None:
    agent.monitor_command = lambda dom, command: dom.qemu_monitor(command)


def query_migrate_calls(conn) -> list:
    return [args for args in conn.named_calls("qemuMonitorCommand") if args[1] == {"execute": "query-migrate"}]


def test_zero_copy_migration_reports_qemus_missed_syncs_read_over_qmp(pair):
    src, sconn = pair[:2]
    dom = sconn.domains[VM]
    use_fake_monitor(src)
    seen: list = []

    def query_migrate(d):
        # QEMU's count grows while it runs (the kernel copied over loopback); the answer's shape
        # is QEMU 10's: a "ram" object beside status and the rest.
        seen.append(len(seen) + 1)
        return {"return": {"status": "active", "ram": {"transferred": 1, "dirty-sync-missed-zero-copy": 3 * len(seen)}}}

    dom.qmp["query-migrate"] = query_migrate
    dom.migration_script = iterating_script(range(1, 8), pause=0.06)
    rpc(src, "VM.migrate", {"vmID": VM, "params": ZEROCOPY})
    status = wait_final(src)
    assert status["state"] == "succeeded", status
    assert "VIR_MIGRATE_ZEROCOPY" in status["flags"]
    calls = query_migrate_calls(sconn)
    assert calls and all(c[0] == VM for c in calls)
    assert status["dirtySyncMissedZeroCopy"] == 3 * len(seen)    # the last count QEMU gave
    assert status["dirtySyncMissedZeroCopy"] > 0


def test_a_qemu_without_the_stat_leaves_the_key_out_and_the_migration_goes_on(pair):
    src, sconn = pair[:2]
    dom = sconn.domains[VM]
    use_fake_monitor(src)
    dom.qmp["query-migrate"] = {"return": {"status": "active", "ram": {"transferred": 1}}}   # QEMU < 7.1
    dom.migration_script = iterating_script(range(1, 5), pause=0.05)
    rpc(src, "VM.migrate", {"vmID": VM, "params": ZEROCOPY})
    status = wait_final(src)
    assert status["state"] == "succeeded", status
    assert query_migrate_calls(sconn)                 # it was asked ...
    assert "dirtySyncMissedZeroCopy" not in status    # ... and an unknown count is not 0


def test_a_failing_monitor_is_asked_once_and_never_fails_the_migration(pair, caplog):
    src, sconn = pair[:2]
    dom = sconn.domains[VM]
    use_fake_monitor(src)
    dom.qmp_error = "Requested operation is not valid: domain is not running"
    dom.migration_script = iterating_script(range(1, 6), pause=0.05)
    rpc(src, "VM.migrate", {"vmID": VM, "params": ZEROCOPY})
    status = wait_final(src)
    assert status["state"] == "succeeded", status
    assert len(query_migrate_calls(sconn)) == 1
    assert "dirtySyncMissedZeroCopy" not in status
    assert "query-migrate through the QEMU monitor failed" in caplog.text


def test_a_migration_without_zero_copy_never_touches_the_monitor(pair):
    src, sconn = pair[:2]
    use_fake_monitor(src)
    sconn.domains[VM].migration_script = iterating_script(range(1, 5), pause=0.05)
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "h2", "parallel": 2}})
    status = wait_final(src)
    assert status["state"] == "succeeded", status
    assert sconn.named_calls("qemuMonitorCommand") == []   # no 'custom-monitor' taint for nothing
    assert "dirtySyncMissedZeroCopy" not in status


def test_the_status_answer_carries_the_count_while_the_migration_runs(pair):
    src, sconn = pair[:2]
    dom = sconn.domains[VM]
    use_fake_monitor(src)
    dom.qmp["query-migrate"] = {"return": {"ram": {"dirty-sync-missed-zero-copy": 0}}}
    running: list = []

    def script(d):
        iterating_script(range(1, 4), pause=0.05)(d)
        running.append(rpc(src, "VM.getMigrationStatus", {"vmID": VM}))

    dom.migration_script = script
    rpc(src, "VM.migrate", {"vmID": VM, "params": ZEROCOPY})
    assert wait_final(src)["state"] == "succeeded"
    assert running[0]["state"] == "running"
    assert running[0]["dirtySyncMissedZeroCopy"] == 0      # 0 is a count, and it is sent

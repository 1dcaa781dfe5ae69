"""The engine drives real agents on the lab: real QEMU guests, real migrations (issue 5).

Every guest is created and started through the engine; every migration is asked of the engine
and followed through its REST API; QEMU itself is asked (QMP) what it did.
"""
from __future__ import annotations

import pytest

from ferry.engine.audit import (
    FERRY_MIGRATION_PLAN_ADJUSTED,
    VM_CANCEL_MIGRATION,
    VM_MIGRATION_ABORT,
    VM_MIGRATION_DONE,
    VM_MIGRATION_FAILED,
    VM_MIGRATION_START,
    VM_MIGRATION_TRYING_RERUN,
)

pytestmark = [pytest.mark.lab]

MBPS_50_MIBS = 400    # cluster bandwidth CUSTOM 400 Mbps = 50 MiB/s: slow enough to ask QEMU mid-migration


def codes(events: list[dict]) -> list[int]:
    return [e["code"] for e in events]


def running_with_data(m: dict) -> bool:
    f = m.get("figures") or {}
    return m["state"] == "RUNNING" and f.get("agent_state") == "running" and bool(f.get("data_processed"))


def assert_intact(e2e, vm: str, host: str) -> None:
    report = e2e.verify(vm, host)
    assert report.intact, report.reasons


def test_very_large_vms_passes_zerocopy_and_qemu_sends_zero_copy(e2e, e2e_guest):
    """The seed's test: policy Very large VMs with the limitations satisfied -> the agent passed
    VIR_MIGRATE_ZEROCOPY, and the source QEMU had zero-copy-send on during the migration."""
    vm = e2e_guest(1, fill_mib=256)
    with e2e.cluster_settings(bandwidth={"mode": "CUSTOM", "custom_mbps": MBPS_50_MIBS}):
        m = e2e.migrate(vm["name"], to=e2e.hosts[1].name)
        assert m["plan"]["params"]["zerocopy"] is True and m["plan"]["params"]["maxBandwidth"] == 50
        m = e2e.wait(m, until=running_with_data)
        assert m["state"] == "RUNNING", m
        caps = e2e.migration_capabilities(m["source"], vm["name"])
        final = e2e.wait(m)
    assert caps["zero-copy-send"] is True and caps["multifd"] is True
    assert final["state"] == "SUCCEEDED", final
    result = final["result"]
    assert "VIR_MIGRATE_ZEROCOPY" in result["flags"] and "VIR_MIGRATE_PARALLEL" in result["flags"]
    assert result["downtime_ms"] is not None and result["duration_ms"] > 0 and result["bytes"] > 256 * 2**20
    assert final["progress"] == 100
    assert e2e.vm(vm["name"])["host"] == e2e.hosts[1].name
    done = [e for e in e2e.events(migration=final["id"]) if e["code"] == VM_MIGRATION_DONE.code]
    assert len(done) == 1 and "Actual downtime" in done[0]["message"]
    assert_intact(e2e, vm["name"], e2e.hosts[1].name)


def test_parallel_disabled_in_cluster_is_forced_on_and_qemu_uses_multifd(e2e, e2e_guest):
    vm = e2e_guest(2, fill_mib=256)
    assert e2e.client.get("/api/clusters/e2e")["parallel"]["mode"] == "DISABLED"
    with e2e.cluster_settings(bandwidth={"mode": "CUSTOM", "custom_mbps": MBPS_50_MIBS}):
        m = e2e.migrate(vm["name"], to=e2e.hosts[0].name)
        forced = [x for x in m["plan"]["explanation"] if x["field"] == "parallel"]
        assert forced and forced[0]["from"] == "DISABLED" and forced[0]["to"].startswith("AUTO_PARALLEL")
        m = e2e.wait(m, until=running_with_data)
        assert m["state"] == "RUNNING", m
        caps = e2e.migration_capabilities(m["source"], vm["name"])
        channels = e2e.qmp(m["source"], vm["name"], "query-migrate-parameters")["multifd-channels"]
        final = e2e.wait(m)
    assert caps["multifd"] is True and channels >= 2
    assert final["state"] == "SUCCEEDED", final
    assert final["result"]["typed_params"]["parallel.connections"] == channels
    adjusted = [e for e in e2e.events(migration=final["id"]) if e["code"] == FERRY_MIGRATION_PLAN_ADJUSTED.code]
    assert adjusted and "parallel DISABLED → AUTO_PARALLEL" in adjusted[0]["message"]
    assert_intact(e2e, vm["name"], e2e.hosts[0].name)


def test_encryption_turns_zerocopy_off_and_asks_for_tls(e2e, e2e_guest):
    vm = e2e_guest(1, fill_mib=64, overrides={"encrypted": True})
    plan = e2e.client.post(f"/api/vms/{vm['name']}/plan", {"to": e2e.hosts[1].name})
    assert "zerocopy" not in plan["params"] and plan["params"]["encrypted"] is True
    assert "VIR_MIGRATE_TLS" in plan["libvirt_flags"] and "VIR_MIGRATE_ZEROCOPY" not in plan["libvirt_flags"]
    why = [x for x in plan["explanation"] if x["field"] == "zerocopy"]
    assert why and why[0]["to"] == "off" and "encryption" in why[0]["reason"]
    # The agent really passes what the plan says: ask for it, with the destination pinned.
    final = e2e.wait(e2e.migrate(vm["name"], to=e2e.hosts[1].name))
    flags = final["attempts"][-1]["flags"]
    assert "VIR_MIGRATE_TLS" in flags and "VIR_MIGRATE_ZEROCOPY" not in flags
    # Every lab host is enrolled with the engine CA at `lab up` (ferry.lab.tls): the encrypted
    # migration must succeed, without zero-copy.
    assert final["state"] == "SUCCEEDED", final
    assert_intact(e2e, vm["name"], e2e.hosts[1].name)


def test_old_agent_gets_zerocopy_and_ignores_it_then_unsupported_agent_is_not_sent_it(e2e, e2e_guest):
    lab = e2e.lab
    src, dst = e2e.hosts[0], e2e.hosts[1]
    vm = e2e_guest(1, fill_mib=64)
    lab.restart_agent(src, ["--old-agent"])
    try:
        assert e2e.refresh(src)["zerocopy"] == "UNKNOWN"
        m = e2e.migrate(vm["name"], to=dst.name)
        assert m["plan"]["params"]["zerocopy"] is True   # sent anyway (the seed: "API call mismatch is logged")
        final = e2e.wait(m)
        assert final["state"] == "SUCCEEDED", final
        assert "zerocopy" in final["result"]["unrecognized_params"]
        assert "VIR_MIGRATE_ZEROCOPY" not in final["result"]["flags"]
        assert "VIR_MIGRATE_PARALLEL" in final["result"]["flags"]
        assert "parameters ['zerocopy'] were not recognized" in (src.dir / "agent.log").read_text()
        assert_intact(e2e, vm["name"], dst.name)
    finally:
        lab.restart_agent(src, [])
        e2e.refresh(src)

    reason = "e2e: kernel without MSG_ZEROCOPY on this host"
    lab.restart_agent(dst, ["--disable-zerocopy", reason])
    try:
        host = e2e.refresh(dst)
        assert host["zerocopy"] == "NO"
        m = e2e.migrate(vm["name"], to=src.name)      # back: the VM now runs on dst
        assert m["source"] == dst.name and "zerocopy" not in m["plan"]["params"]
        final = e2e.wait(m)
        assert final["state"] == "SUCCEEDED", final
        assert "VIR_MIGRATE_ZEROCOPY" not in final["result"]["flags"]
        adjusted = [e["message"] for e in e2e.events(migration=final["id"])
                    if e["code"] == FERRY_MIGRATION_PLAN_ADJUSTED.code]
        assert adjusted and "zerocopy not sent" in adjusted[0] and "reports zero-copy unsupported" in adjusted[0]
        assert reason in adjusted[0]
        assert_intact(e2e, vm["name"], src.name)
    finally:
        lab.restart_agent(dst, [])
        e2e.refresh(dst)


def test_cancel_mid_migration_leaves_vm_on_source(e2e, e2e_guest, e2e_cli):
    vm = e2e_guest(1, fill_mib=256)
    with e2e.cluster_settings(bandwidth={"mode": "CUSTOM", "custom_mbps": 80}):   # 10 MiB/s
        m = e2e.wait(e2e.migrate(vm["name"], to=e2e.hosts[1].name), until=running_with_data)
        assert m["state"] == "RUNNING", m
        out = e2e_cli("migrate", "cancel", m["id"], "--wait").output
        final = e2e.wait(m, timeout=60)
    assert final["state"] == "CANCELLED", final
    assert "cancelled" in out
    record = e2e.vm(vm["name"])
    assert record["host"] == e2e.hosts[0].name and record["status"] == "UP"
    assert e2e.lab.find_vm(vm["name"]).name == e2e.hosts[0].name
    events = e2e.events(migration=final["id"])
    assert codes(events)[0] == VM_MIGRATION_START.code and VM_CANCEL_MIGRATION.code in codes(events)
    assert VM_MIGRATION_DONE.code not in codes(events)
    assert_intact(e2e, vm["name"], e2e.hosts[0].name)


def test_destination_qemu_killed_mid_migration_reruns_on_the_third_host(e2e, e2e_guest):
    import os
    import signal

    vm = e2e_guest(1, fill_mib=256)
    with e2e.cluster_settings(bandwidth={"mode": "CUSTOM", "custom_mbps": 80}):   # 10 MiB/s
        m = e2e.wait(e2e.migrate(vm["name"]), until=running_with_data)      # the engine picks the host
        assert m["state"] == "RUNNING", m
        first = m["destination"]
        pid = e2e.qemu_pid(first, vm["name"])
        # The rerun is planned after the failure: give it the full bandwidth.
        e2e.client.patch("/api/clusters/e2e", {"bandwidth": {"mode": "AUTO"}})
        os.kill(pid, signal.SIGKILL)
        final = e2e.wait(m, timeout=180)
    assert final["state"] == "SUCCEEDED", final
    third = ({h.name for h in e2e.hosts} - {e2e.hosts[0].name, first}).pop()
    assert final["destination"] == third
    assert [a["destination"] for a in final["attempts"]] == [first, third]
    assert final["attempts"][0]["agent_state"] == "failed"
    events = e2e.events(migration=final["id"])
    assert codes(events).count(VM_MIGRATION_START.code) == 2
    rerun = [e for e in events if e["code"] == VM_MIGRATION_TRYING_RERUN.code]
    assert len(rerun) == 1 and first in rerun[0]["message"]
    assert codes(events)[-1] == VM_MIGRATION_DONE.code and VM_MIGRATION_FAILED.code not in codes(events)
    assert e2e.vm(vm["name"])["host"] == third
    assert_intact(e2e, vm["name"], third)


def test_minimal_downtime_steps_then_abort_when_dirtying_beats_the_bandwidth(e2e, e2e_guest):
    # 128 MiB/s dirtied in a 16 MiB working set against 8 MiB/s (128 Mbps shared by the CLUSTER
    # policy's 2 migrations, facts §5 step 8): no downtime step up to 500 ms can ever be enough.
    vm = e2e_guest(1, fill_mib=16, dirty_mib_s=128, overrides={"policy": "Minimal downtime"})
    with e2e.cluster_settings(policy="Minimal downtime", bandwidth={"mode": "CUSTOM", "custom_mbps": 128}):
        m = e2e.migrate(vm["name"], to=e2e.hosts[1].name)
        assert m["plan"]["params"]["maxBandwidth"] == 8 and "zerocopy" not in m["plan"]["params"]
        downtimes_seen: list[int] = []

        def watch(cur: dict) -> bool:
            d = (cur.get("figures") or {}).get("max_downtime_ms")
            if d and (not downtimes_seen or downtimes_seen[-1] != d):
                downtimes_seen.append(d)
            return False

        final = e2e.wait(m, until=watch, timeout=300)
    assert final["state"] == "ABORTED", final
    actions = [a["action"] for a in final["result"]["schedule_actions"]]
    assert actions == ["setDowntime(100)", "setDowntime(150)", "setDowntime(200)", "setDowntime(300)",
                       "setDowntime(400)", "setDowntime(500)", "abort"], actions
    assert downtimes_seen == sorted(downtimes_seen) and downtimes_seen[0] == 100
    events = e2e.events(migration=final["id"])
    assert VM_MIGRATION_ABORT.code in codes(events) and VM_MIGRATION_DONE.code not in codes(events)
    record = e2e.vm(vm["name"])
    assert record["host"] == e2e.hosts[0].name and record["status"] == "UP"
    assert_intact(e2e, vm["name"], e2e.hosts[0].name)


def test_two_migrations_at_once_respect_the_plans_per_host_limit(e2e, e2e_guest):
    """Both VMs leave host 1 at the same time; with zero-copy (parallel) the plan allows one
    outgoing migration per host, so the agent holds the second until the first is done."""
    a = e2e_guest(1, fill_mib=128)
    b = e2e_guest(1, fill_mib=128)
    states: dict[str, set] = {a["name"]: set(), b["name"]: set()}
    with e2e.cluster_settings(bandwidth={"mode": "CUSTOM", "custom_mbps": MBPS_50_MIBS}):
        ma = e2e.migrate(a["name"], to=e2e.hosts[1].name)
        mb = e2e.migrate(b["name"], to=e2e.hosts[2].name)
        assert ma["plan"]["params"]["outgoingLimit"] == 1 and mb["plan"]["params"]["incomingLimit"] == 1

        def both_seen(m: dict) -> bool:
            other = e2e.client.get(f"/api/migrations/{mb['id']}")
            for rec in (m, other):
                states[rec["vm"]].add((rec.get("figures") or {}).get("agent_state"))
            return False

        fa = e2e.wait(ma, until=both_seen, timeout=180)
        fb = e2e.wait(mb, timeout=180)
    assert fa["state"] == fb["state"] == "SUCCEEDED", (fa, fb)
    assert "pending" in states[b["name"]] or "waiting" in states[b["name"]], states
    assert e2e.vm(a["name"])["host"] == e2e.hosts[1].name and e2e.vm(b["name"])["host"] == e2e.hosts[2].name
    assert_intact(e2e, a["name"], e2e.hosts[1].name)
    assert_intact(e2e, b["name"], e2e.hosts[2].name)


def test_host_whose_agent_cannot_be_reached_is_down_and_not_chosen(e2e, e2e_guest):
    vm = e2e_guest(1, fill_mib=32)
    h3 = e2e.hosts[2]
    e2e.lab.cut_off(h3)
    try:
        assert e2e.refresh(h3)["status"] == "DOWN"
        for _ in range(3):     # the engine's own choice never lands on it
            plan = e2e.client.post(f"/api/vms/{vm['name']}/plan", {})
            assert plan["destination"] == e2e.hosts[1].name
    finally:
        e2e.lab.restore(h3)
    assert e2e.refresh(h3)["status"] == "UP"

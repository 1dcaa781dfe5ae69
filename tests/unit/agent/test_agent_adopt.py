"""A restarted agent adopts the migrations libvirt runs (issue 11: it answered "no migration")."""
import time

import libvirt

from ferry.agent.adopted import INCOMING, OUTGOING, job_kind, outcome_of
from tests.unit.agent.fake_libvirt import FakeConnection, GiB, domain_xml
from tests.unit.agent.test_agent_api import VM, make_agent, rpc, wait_final

RUNNING_OUT = {"type": libvirt.VIR_DOMAIN_JOB_UNBOUNDED, "operation": libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT,
               "time_elapsed": 12_000, "data_total": GiB, "data_remaining": GiB // 4, "data_processed": GiB,
               "memory_iteration": 3}


def restarted_agent_with_a_running_migration():
    conn = FakeConnection()
    dom = conn.add_domain(domain_xml())
    dom.job_stats = dict(RUNNING_OUT)
    agent, _ = make_agent(conn)
    assert agent.adopt_running_jobs() == [VM]
    return agent, conn, dom


def test_job_kind_and_outcome_rules():
    lv = libvirt
    assert job_kind(lv, RUNNING_OUT) == OUTGOING
    assert job_kind(lv, {**RUNNING_OUT, "operation": lv.VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN}) == INCOMING
    assert job_kind(lv, {**RUNNING_OUT, "operation": lv.VIR_DOMAIN_JOB_OPERATION_SAVE}) is None
    assert job_kind(lv, {"type": lv.VIR_DOMAIN_JOB_NONE}) is None
    assert job_kind(lv, {**RUNNING_OUT, "type": lv.VIR_DOMAIN_JOB_COMPLETED}) is None
    assert job_kind(lv, None) is None
    assert outcome_of(lv, {"type": lv.VIR_DOMAIN_JOB_COMPLETED}, still_here=False)[0] == "succeeded"
    assert outcome_of(lv, None, still_here=False)[0] == "succeeded"          # it left this host
    assert outcome_of(lv, None, still_here=True)[0] == "failed"
    assert outcome_of(lv, {"type": lv.VIR_DOMAIN_JOB_CANCELLED}, still_here=True)[0] == "cancelled"
    assert outcome_of(lv, {"type": lv.VIR_DOMAIN_JOB_FAILED}, still_here=True)[0] == "failed"


def test_adopted_migration_is_reported_running_then_succeeded():
    agent, conn, dom = restarted_agent_with_a_running_migration()
    status = rpc(agent, "VM.getMigrationStatus", {"vmID": VM})
    assert status["state"] == "running" and status["direction"] == "outgoing", status
    assert "adopted from libvirt" in status["message"]
    assert status["progress"] == 75 and status["migrationStartedAt"] < time.time() - 11
    assert rpc(agent, "VM.getStats", {"vmID": VM})["status"] == "Migration Source"
    assert rpc(agent, "Host.getStats", {})["outgoingVmMigrations"] == 1
    # libvirt's job ends: the VM left (transient: gone), with the completion event.
    dom.job_stats = {"type": libvirt.VIR_DOMAIN_JOB_NONE}
    dom.running = False
    conn.domains.pop(VM)
    conn.fire_job_completed(dom, {"type": libvirt.VIR_DOMAIN_JOB_COMPLETED, "data_total": GiB,
                                  "data_remaining": 0, "downtime": 55, "time_elapsed": 15_000})
    status = wait_final(agent)
    assert status["state"] == "succeeded", status
    assert status["downtime"] == 55 and status["progress"] == 100
    assert rpc(agent, "Host.getStats", {})["outgoingVmMigrations"] == 0


def test_adopted_migration_that_ends_with_the_vm_here_is_failed():
    agent, conn, dom = restarted_agent_with_a_running_migration()
    dom.completed_job_stats = {"type": libvirt.VIR_DOMAIN_JOB_FAILED, "errmsg": "operation failed: job 'migration out' failed"}
    dom.job_stats = {"type": libvirt.VIR_DOMAIN_JOB_NONE}
    status = wait_final(agent)
    assert status["state"] == "failed" and "job 'migration out' failed" in status["error"], status


def test_adopted_migration_can_be_cancelled():
    agent, conn, dom = restarted_agent_with_a_running_migration()
    rpc(agent, "VM.migrateCancel", {"vmID": VM})
    assert conn.named_calls("abortJob") == [(VM,)]
    dom.completed_job_stats = {"type": libvirt.VIR_DOMAIN_JOB_CANCELLED}
    dom.job_stats = {"type": libvirt.VIR_DOMAIN_JOB_NONE}
    assert wait_final(agent)["state"] == "cancelled"


def test_incoming_migration_is_adopted_as_expected_incoming():
    conn = FakeConnection()
    dom = conn.add_domain(domain_xml(), persistent=True)
    dom.job_stats = {**RUNNING_OUT, "operation": libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN}
    agent, _ = make_agent(conn)
    assert agent.adopt_running_jobs() == [VM]
    assert rpc(agent, "VM.getMigrationStatus", {"vmID": VM})["direction"] == "incoming"
    assert rpc(agent, "Host.getStats", {})["incomingVmMigrations"] == 1
    conn.fire_lifecycle(dom, libvirt.VIR_DOMAIN_EVENT_RESUMED, libvirt.VIR_DOMAIN_EVENT_RESUMED_MIGRATED)
    assert rpc(agent, "VM.getMigrationStatus", {"vmID": VM})["state"] == "succeeded"
    assert agent.incoming_slots.taken == 0


def test_nothing_to_adopt_and_no_double_adoption():
    agent, conn, dom = restarted_agent_with_a_running_migration()
    assert agent.adopt_running_jobs() == []          # already followed
    other, _ = make_agent()
    other.conn.add_domain(domain_xml())
    assert other.adopt_running_jobs() == []          # no job running
    dom.job_stats = {"type": libvirt.VIR_DOMAIN_JOB_NONE}
    conn.domains.pop(VM)
    wait_final(agent)


def test_incoming_whose_job_query_waits_behind_the_migration_is_adopted_from_its_state(monkeypatch):
    """On the lab the destination's jobStats waited for the whole incoming migration."""
    import threading

    from ferry.agent import adopted

    monkeypatch.setattr(adopted, "INCOMING_QUERY_WAIT_S", 0.1)
    conn = FakeConnection()
    dom = conn.add_domain(domain_xml(), persistent=True)
    dom.paused, dom.pause_reason = True, libvirt.VIR_DOMAIN_PAUSED_MIGRATION
    gate = threading.Event()
    dom.jobStats = lambda flags=0: gate.wait(5) and {}
    try:
        agent, _ = make_agent(conn)
        assert agent.adopt_running_jobs() == [VM]
        assert rpc(agent, "VM.getMigrationStatus", {"vmID": VM})["direction"] == "incoming"
        # a running domain whose query is merely slow is not taken for an incoming one
        other = FakeConnection()
        slow = other.add_domain(domain_xml())
        slow.jobStats = lambda flags=0: gate.wait(5) and {}
        assert make_agent(other)[0].adopt_running_jobs() == []
    finally:
        gate.set()


def test_incoming_whose_job_query_is_refused_is_adopted_from_its_state():
    """libvirt 11 on the lab's destination: "migration statistics are available only on the source host"."""
    conn = FakeConnection()
    dom = conn.add_domain(domain_xml(), persistent=True)
    dom.paused, dom.pause_reason = True, libvirt.VIR_DOMAIN_PAUSED_MIGRATION

    def refused(flags=0):
        raise libvirt.libvirtError("Operation not supported: migration statistics are available only on "
                                   "the source host")
    dom.jobStats = refused
    agent, _ = make_agent(conn)
    assert agent.adopt_running_jobs() == [VM]
    assert rpc(agent, "Host.getStats", {})["incomingVmMigrations"] == 1
    other = FakeConnection()
    running = other.add_domain(domain_xml())
    running.jobStats = refused                      # running, not paused for a migration: nothing
    assert make_agent(other)[0].adopt_running_jobs() == []

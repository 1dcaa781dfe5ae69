"""Paused VMs migrate and stay paused (issue 13 item 4; Vdsm's rule), except on an I/O error."""
import libvirt
import pytest

from ferry.common.jsonrpc import JsonRpcError
from tests.unit.agent.fake_libvirt import domain_xml, iterating_script
from tests.unit.agent.test_agent_api import VM, pair, rpc, wait_final  # noqa: F401 - pair is a fixture


def test_a_paused_vm_migrates_with_the_paused_flag(pair):
    src, sconn = pair[:2]
    dom = sconn.domains[VM]
    dom.suspend()
    assert rpc(src, "VM.getStats", {"vmID": VM})["status"] == "Paused"
    dom.migration_script = iterating_script([1, 2])
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "127.0.1.3"}})
    status = wait_final(src)
    assert status["state"] == "succeeded", status
    assert "VIR_MIGRATE_PAUSED" in status["flags"]
    assert any("stays paused" in n for n in status["notes"])
    flags = sconn.named_calls("migrateToURI3")[0][3]
    assert flags & libvirt.VIR_MIGRATE_PAUSED and flags & libvirt.VIR_MIGRATE_LIVE


def test_a_running_vm_migrates_without_the_paused_flag(pair):
    src, sconn = pair[:2]
    sconn.domains[VM].migration_script = iterating_script([1, 2])
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "127.0.1.3"}})
    status = wait_final(src)
    assert status["state"] == "succeeded" and "VIR_MIGRATE_PAUSED" not in status["flags"]
    assert not sconn.named_calls("migrateToURI3")[0][3] & libvirt.VIR_MIGRATE_PAUSED


def test_a_vm_paused_on_an_io_error_is_refused(pair):
    src, sconn = pair[:2]
    dom = sconn.domains[VM]
    dom.paused, dom.pause_reason = True, libvirt.VIR_DOMAIN_PAUSED_IOERROR
    with pytest.raises(JsonRpcError) as err:
        rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "127.0.1.3"}})
    assert err.value.name == "vmNotRunning" and "I/O error" in err.value.message
    assert sconn.named_calls("migrateToURI3") == []


def test_incoming_paused_vm_ends_the_incoming_migration(pair):
    """A paused VM arrives without a RESUMED event: libvirt's SUSPENDED_PAUSED ends it."""
    dst, dconn = pair[2], pair[3]
    rpc(dst, "VM.migrationCreate", {"vmID": VM})
    dom = dconn.add_domain(domain_xml(), persistent=True)
    dconn.fire_lifecycle(dom, libvirt.VIR_DOMAIN_EVENT_STARTED, libvirt.VIR_DOMAIN_EVENT_STARTED_MIGRATED)
    assert dst.incoming_slots.taken == 1
    dom.paused = True
    dconn.fire_lifecycle(dom, libvirt.VIR_DOMAIN_EVENT_SUSPENDED, libvirt.VIR_DOMAIN_EVENT_SUSPENDED_PAUSED)
    assert dst.incoming_slots.taken == 0
    assert rpc(dst, "VM.getMigrationStatus", {"vmID": VM})["state"] == "succeeded"
    assert rpc(dst, "VM.getStats", {"vmID": VM})["status"] == "Paused"


def test_a_persistent_vm_leaves_no_shut_off_definition_on_the_source(pair):
    """Issue 11 "No stale state": every former source kept a shut-off definition."""
    src, sconn = pair[:2]
    sconn.domains.clear()
    dom = sconn.add_domain(domain_xml(), persistent=True)     # it had migrated here once
    dom.migration_script = iterating_script([1, 2])
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "127.0.1.3"}})
    assert wait_final(src)["state"] == "succeeded"
    assert VM not in sconn.domains and sconn.named_calls("undefine") == [(VM,)]


def test_a_failed_migration_keeps_the_definition(pair):
    src, sconn = pair[:2]
    sconn.domains.clear()
    dom = sconn.add_domain(domain_xml(), persistent=True)
    dom.migration_script = iterating_script([1, 2], fail_message="internal error: qemu unexpectedly closed")
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "127.0.1.3"}})
    assert wait_final(src)["state"] == "failed"
    assert VM in sconn.domains and sconn.named_calls("undefine") == []

"""The agent's verbs over a recording fake libvirt connection, through the JSON-RPC layer."""
import json
import logging
import threading
import time

import libvirt
import pytest

from ferry.agent import capabilities as caps
from ferry.agent.api import Agent
from ferry.agent.config import AgentConfig
from ferry.agent.libvirt_edge import EventHub
from ferry.agent.server import make_server
from ferry.common.jsonrpc import JsonRpcClient, JsonRpcError, handle_request
from ferry.engine.policies import BUILTIN_BY_NAME
from tests.unit.agent.fake_libvirt import FakeConnection, domain_xml, iterating_script

VM = "11111111-2222-3333-4444-555555555555"
GOOD_FACTS = caps.ZerocopyFacts(binding_has_flag=True, libvirt_version=11_003_000,
                                qemu_migration_capabilities=("multifd", "zero-copy-send"), msg_zerocopy=True,
                                optmem_max=131072)


class Direct:
    """A JSON-RPC 'client' that calls another in-process agent through the same request handler."""

    def __init__(self, agent):
        self.agent = agent
        self.calls = []

    def call(self, method, params):
        self.calls.append((method, params))
        response = handle_request(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
                                  self.agent.methods())
        if "error" in response:
            e = response["error"]
            raise JsonRpcError(e["code"], e["message"], e.get("data"))
        return response["result"]


def make_agent(conn=None, facts=GOOD_FACTS, destination=None, **config):
    conn = conn or FakeConnection()
    events = EventHub(conn, libvirt)
    events.register()
    cfg = AgentConfig(**{"status_interval": 0.05, "migrate_limit_retry": 0.05, **config})
    return Agent(conn, libvirt, events, cfg, destination=destination, zerocopy_facts=lambda: facts), conn


@pytest.fixture
def pair():
    """(source agent, its fake conn, destination agent, its fake conn, the Direct client to dst)."""
    dst, dconn = make_agent(FakeConnection("fake-h2"))
    client = Direct(dst)
    src, sconn = make_agent(destination=lambda address: client)
    sconn.add_domain(domain_xml())
    return src, sconn, dst, dconn, client


def rpc(agent, method, params):
    return Direct(agent).call(method, params)


def wait_final(agent, vm=VM, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = rpc(agent, "VM.getMigrationStatus", {"vmID": vm})
        if status["state"] in ("succeeded", "failed", "cancelled", "aborted"):
            return status
        time.sleep(0.02)
    raise AssertionError(f"migration did not end: {status}")


# ---- errors ------------------------------------------------------------------------------------

def test_unknown_vm(pair):
    src = pair[0]
    for verb in ("VM.getStats", "VM.migrate", "VM.destroy", "VM.migrateCancel", "VM.getMigrationStatus"):
        with pytest.raises(JsonRpcError) as err:
            rpc(src, verb, {"vmID": "99999999-0000-0000-0000-000000000000", "params": {"dst": "h"}})
        assert err.value.code == 1 and err.value.name == "noVM", verb


def test_already_migrating(pair):
    src, sconn = pair[:2]
    release = threading.Event()
    sconn.domains[VM].migration_script = lambda dom: release.wait(5)
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "127.0.1.3"}})
    with pytest.raises(JsonRpcError) as err:
        rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "127.0.1.3"}})
    assert err.value.code == 101 and "already migrating" in err.value.message
    release.set()
    assert wait_final(src)["state"] == "succeeded"


def test_not_running(pair):
    src, sconn = pair[:2]
    sconn.domains[VM].running = False
    with pytest.raises(JsonRpcError) as err:
        rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "h"}})
    assert err.value.code == 102 and "not running" in err.value.message


@pytest.mark.parametrize("params, field", [
    ({"dst": "h", "parallel": "four"}, "parallel"),
    ({"dst": "h", "parallel": 300}, "parallel"),
    ({"dst": "h", "maxBandwidth": -1}, "maxBandwidth"),
    ({"dst": "h", "zerocopy": 1}, "zerocopy"),
    ({"parallel": 2}, "dst"),
    ({"dst": "h", "convergenceSchedule": {"init": [{"name": "nap"}]}}, "convergenceSchedule.init[0].name"),
])
def test_bad_type_or_range_names_the_field(pair, params, field):
    with pytest.raises(JsonRpcError) as err:
        rpc(pair[0], "VM.migrate", {"vmID": VM, "params": params})
    assert err.value.code == -32602
    assert err.value.data["field"] == field and field in err.value.message


def test_missing_vm_id_and_unknown_method(pair):
    with pytest.raises(JsonRpcError) as err:
        rpc(pair[0], "VM.getStats", {})
    assert err.value.data["field"] == "vmID"
    response = handle_request(b'{"jsonrpc": "2.0", "id": 7, "method": "VM.fly", "params": {}}', pair[0].methods())
    assert response["error"]["code"] == -32601 and response["id"] == 7
    assert handle_request(b"{nope", {})["error"]["code"] == -32700
    assert handle_request(b'{"id": 1}', {})["error"]["code"] == -32600


# ---- migration ---------------------------------------------------------------------------------

def test_migrate_zerocopy_parallel_calls_libvirt_with_the_flags(pair):
    src, sconn, dst, dconn, client = pair
    sconn.domains[VM].migration_script = iterating_script([1, 2, 3])
    answer = rpc(src, "VM.migrate", {"vmID": VM, "params": {
        "dst": "127.0.1.3:54321", "dstqemu": "127.0.1.3", "parallel": 4, "zerocopy": True,
        "maxBandwidth": 500, "incomingLimit": 1, "outgoingLimit": 1}})
    assert answer == {"status": {"code": 0, "message": "Migration in progress"}, "progress": 0}
    status = wait_final(src)
    assert status["state"] == "succeeded", status
    (call,) = sconn.named_calls("migrateToURI3")
    _, duri, typed, flags = call
    assert duri == "qemu+tls://127.0.1.3/system"
    assert flags == (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER | libvirt.VIR_MIGRATE_PERSIST_DEST
                     | libvirt.VIR_MIGRATE_PARALLEL | libvirt.VIR_MIGRATE_ZEROCOPY)
    assert typed["parallel.connections"] == 4 and typed["bandwidth"] == 500
    assert typed["migrate_uri"] == "tcp://127.0.1.3" and typed["destination_xml"].startswith("<domain")
    assert status["flags"] == ["VIR_MIGRATE_LIVE", "VIR_MIGRATE_PEER2PEER", "VIR_MIGRATE_PERSIST_DEST",
                               "VIR_MIGRATE_PARALLEL", "VIR_MIGRATE_ZEROCOPY"]
    assert (status["progress"], status["downtime"], status["totalTime"]) == (100, 42, 2500)
    assert status["bytesTransferred"] == (1 << 30) + 12345
    # The destination was asked first with the caller's incoming limit, and its slot freed later.
    assert client.calls[0][0] == "VM.migrationCreate" and client.calls[0][1]["incomingLimit"] == 1
    assert src.outgoing.taken == 0


def test_zerocopy_unavailable_is_logged_and_migration_goes_on(caplog):
    facts = caps.ZerocopyFacts(**{**GOOD_FACTS.__dict__, "qemu_migration_capabilities": ("multifd",)})
    dst, _ = make_agent(FakeConnection("h2"))
    src, sconn = make_agent(facts=facts, destination=lambda a: Direct(dst))
    sconn.add_domain(domain_xml())
    with caplog.at_level(logging.INFO):
        rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "h2", "parallel": 2, "zerocopy": True}})
        status = wait_final(src)
    assert status["state"] == "succeeded"
    assert "VIR_MIGRATE_ZEROCOPY" not in status["flags"] and "VIR_MIGRATE_PARALLEL" in status["flags"]
    assert status["notes"] == ["zero-copy not available, not enabling"]
    assert "zero-copy not available, not enabling" in caplog.text


def test_old_agent_ignores_zerocopy_and_says_so(caplog):
    dst, _ = make_agent(FakeConnection("h2"))
    src, sconn = make_agent(destination=lambda a: Direct(dst), old_agent=True)
    sconn.add_domain(domain_xml())
    caps_answer = rpc(src, "Host.getCapabilities", {})
    assert "zerocopy_migrations" not in caps_answer and "zerocopy_checks" not in caps_answer
    with caplog.at_level(logging.INFO):
        rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "h2", "parallel": 2, "zerocopy": True}})
        status = wait_final(src)
    assert status["state"] == "succeeded" and "VIR_MIGRATE_ZEROCOPY" not in status["flags"]
    assert status["unrecognizedParams"] == ["zerocopy"]
    assert "parameters ['zerocopy'] were not recognized" in caplog.text


def test_libvirt_refusal_is_reported_vm_keeps_running_destination_cleaned(pair):
    src, sconn, dst, dconn, client = pair
    sconn.refuse_migration = "argument unsupported: zero-copy is only available for parallel migration"
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "h2", "zerocopy": True}})
    status = wait_final(src)
    assert status["state"] == "failed"
    assert status["error"] == sconn.refuse_migration and sconn.refuse_migration in status["message"]
    assert any("only available for parallel" in w for w in status["warnings"])
    assert rpc(src, "VM.getStats", {"vmID": VM})["status"] == "Up"
    assert [c[0] for c in client.calls] == ["VM.migrationCreate", "VM.destroy"]
    assert dst.incoming_slots.taken == 0 and rpc(dst, "Host.getStats", {})["incomingVmMigrations"] == 0


def test_cancel_mid_migration(pair):
    src, sconn = pair[:2]
    sconn.domains[VM].migration_script = iterating_script(range(1, 200), pause=0.02)
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "h2"}})
    time.sleep(0.2)
    running = rpc(src, "VM.getMigrationStatus", {"vmID": VM})
    assert running["state"] == "running" and rpc(src, "VM.getStats", {"vmID": VM})["status"] == "Migration Source"
    rpc(src, "VM.migrateCancel", {"vmID": VM})
    status = wait_final(src)
    assert status["state"] == "cancelled" and "canceled by client" in status["error"]
    assert rpc(src, "VM.getStats", {"vmID": VM})["status"] == "Up"
    with pytest.raises(JsonRpcError) as err:
        rpc(src, "VM.migrateCancel", {"vmID": VM})
    assert err.value.code == 82


def test_very_large_vms_schedule_from_iteration_events(pair):
    src, sconn = pair[:2]
    schedule = BUILTIN_BY_NAME["very large vms"].schedule().to_wire()
    sconn.domains[VM].migration_script = iterating_script(range(3, 40), pause=0.03)
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "h2", "convergenceSchedule": schedule}})
    status = wait_final(src)
    assert status["state"] == "aborted"
    downtimes = [args[1] for args in sconn.named_calls("migrateSetMaxDowntime")]
    assert downtimes == [300, 400, 500, 700, 1000, 1500, 5000]
    assert len(sconn.named_calls("abortJob")) == 1
    assert [(a["n"], a["action"]) for a in status["scheduleActions"]] == [
        (None, "setDowntime(300)"), (2, "setDowntime(400)"), (3, "setDowntime(500)"), (4, "setDowntime(700)"),
        (5, "setDowntime(1000)"), (7, "setDowntime(1500)"), (8, "setDowntime(5000)"), (9, "abort")]
    assert status["maxDowntime"] == 5000
    assert rpc(src, "VM.getStats", {"vmID": VM})["status"] == "Up"


def test_progress_is_monotonic_while_polled(pair):
    src, sconn = pair[:2]
    # Remaining data goes down, up again (re-dirtied) and down.
    remaining = {1: 900, 2: 500, 3: 800, 4: 300, 5: 100, 6: 600, 7: 10}
    sconn.domains[VM].migration_script = iterating_script(list(remaining), total=1000,
                                                          step_remaining=remaining.get, pause=0.12)
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "h2"}})
    seen = []
    while True:
        status = rpc(src, "VM.getMigrationStatus", {"vmID": VM})
        seen.append(status["progress"])
        if status["state"] != "running" and status["state"] != "pending":
            break
        time.sleep(0.03)
    assert seen == sorted(seen) and seen[-1] == 100
    assert 70 in seen or 90 in seen   # intermediate values were reported, not only 0 and 100


def test_expected_downtime_of_a_running_job_does_not_mean_done(pair):
    """libvirt reports QEMU's expected downtime while the job runs; only the completed job's
    downtime means the guest switched over, so progress must not reach 100 before that."""
    src, sconn = pair[:2]
    remaining = {1: 900, 2: 700, 3: 500}
    sconn.domains[VM].migration_script = iterating_script(list(remaining), total=1000, step_remaining=remaining.get,
                                                          pause=0.15, expected_downtime_ms=300)
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "h2"}})
    running = []
    while True:
        status = rpc(src, "VM.getMigrationStatus", {"vmID": VM})
        if status["state"] not in ("running", "pending"):
            break
        running.append((status["progress"], status["downtime"]))
        time.sleep(0.03)
    assert running and max(p for p, _ in running) <= 50
    assert all(d is None for _, d in running)
    assert status["state"] == "succeeded" and status["progress"] == 100 and status["downtime"] == 42


def test_destination_full_answers_migrate_limit_and_source_retries_until_cancelled(pair):
    src, sconn, dst, dconn, client = pair
    assert rpc(dst, "VM.migrationCreate", {"vmID": "a" * 8, "incomingLimit": 1})
    with pytest.raises(JsonRpcError) as err:
        rpc(dst, "VM.migrationCreate", {"vmID": "b" * 8, "incomingLimit": 1})
    assert err.value.code == 48 and err.value.name == "migrateLimit"
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "h2", "incomingLimit": 1}})
    time.sleep(0.3)
    status = rpc(src, "VM.getMigrationStatus", {"vmID": VM})
    assert status["state"] == "waiting" and "retrying" in status["message"]
    assert sum(1 for c in client.calls if c[0] == "VM.migrationCreate") >= 3
    rpc(src, "VM.migrateCancel", {"vmID": VM})
    assert wait_final(src)["state"] == "cancelled"
    assert sconn.named_calls("migrateToURI3") == [] and src.outgoing.taken == 0


def test_destination_busy_then_free(pair):
    src, sconn, dst, dconn, client = pair
    rpc(dst, "VM.migrationCreate", {"vmID": "a" * 8, "incomingLimit": 1})
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "h2", "incomingLimit": 1}})
    time.sleep(0.2)
    rpc(dst, "VM.destroy", {"vmID": "a" * 8, "incomingOnly": True})   # the other incoming ends
    assert wait_final(src)["state"] == "succeeded"


def test_incoming_slot_released_when_the_vm_resumes(pair):
    dst, dconn = pair[2], pair[3]
    rpc(dst, "VM.migrationCreate", {"vmID": VM})
    assert rpc(dst, "Host.getStats", {})["incomingVmMigrations"] == 1
    dom = dconn.add_domain(domain_xml(), persistent=True)
    dconn.fire_lifecycle(dom, libvirt.VIR_DOMAIN_EVENT_STARTED, libvirt.VIR_DOMAIN_EVENT_STARTED_MIGRATED)
    assert rpc(dst, "VM.getStats", {"vmID": VM})["status"] == "Migration Destination"
    dconn.fire_lifecycle(dom, libvirt.VIR_DOMAIN_EVENT_RESUMED, libvirt.VIR_DOMAIN_EVENT_RESUMED_MIGRATED)
    assert dst.incoming_slots.taken == 0
    assert rpc(dst, "VM.getStats", {"vmID": VM})["status"] == "Up"
    rpc(dst, "VM.destroy", {"vmID": VM})
    assert [c[0] for c in dconn.calls if c[0] in ("destroy", "undefine")] == ["destroy", "undefine"]


def test_change_max_bandwidth(pair):
    src, sconn = pair[:2]
    release = threading.Event()
    sconn.domains[VM].migration_script = lambda dom: release.wait(5)
    with pytest.raises(JsonRpcError) as err:
        rpc(src, "VM.migrateChangeParams", {"vmID": VM, "params": {"maxBandwidth": 100}})
    assert err.value.code == 82
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "h2"}})
    with pytest.raises(JsonRpcError) as err:
        rpc(src, "VM.migrateChangeParams", {"vmID": VM, "params": {"maxBandwidth": 0}})
    assert err.value.data["field"] == "maxBandwidth"
    rpc(src, "VM.migrateChangeParams", {"vmID": VM, "params": {"maxBandwidth": 100}})
    release.set()
    wait_final(src)
    assert [a[1] for a in sconn.named_calls("migrateSetMaxSpeed")] == [100]


# ---- VMs and host ------------------------------------------------------------------------------

def test_create_from_spec_and_xml(tmp_path):
    agent, conn = make_agent()
    answer = rpc(agent, "VM.create", {"spec": {"name": "g1", "memory_mib": 256, "vcpus": 1,
                                               "kernel": "/boot/vmlinuz"}})
    assert answer["name"] == "g1" and answer["status"] == "Up"
    xml = conn.named_calls("createXML")[0][0]
    assert "<kernel>/boot/vmlinuz</kernel>" in xml
    rpc(agent, "VM.create", {"xml": domain_xml("g2", "22222222-2222-3333-4444-555555555555")})
    assert sorted(v["name"] for v in rpc(agent, "Host.getVMList", {})["vms"]) == ["g1", "g2"]
    with pytest.raises(JsonRpcError) as err:
        rpc(agent, "VM.create", {"xml": domain_xml("g2", "22222222-2222-3333-4444-555555555555")})
    assert err.value.code == 4
    for params, field in (({"spec": {"name": "g3", "memory_mib": "lots", "vcpus": 1, "kernel": "/k"}}, "memory_mib"),
                          ({"xml": "<domain"}, "xml"), ({}, "spec")):
        with pytest.raises(JsonRpcError) as err:
            rpc(agent, "VM.create", params)
        assert err.value.data["field"] == field


def test_capabilities_report_checks_and_hard_limit_warnings():
    agent, conn = make_agent()
    conn.add_domain(domain_xml("pinned", hard_limit_kib=8192))
    answer = rpc(agent, "Host.getCapabilities", {})
    assert answer["zerocopy_migrations"] is True
    assert answer["libvirtVersion"] == "11.3.0" and answer["qemuVersion"] == "10.0.2"
    warn = [c for c in answer["zerocopy_checks"] if c["result"] == "warn"]
    assert [c["check"] for c in warn] == ["memtune_hard_limit:pinned"] and "8192 KiB" in warn[0]["reason"]


def test_real_http_round_trip():
    agent, conn = make_agent()
    conn.add_domain(domain_xml())
    server = make_server("127.0.0.1", 0, agent.methods())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = JsonRpcClient(f"http://127.0.0.1:{server.server_address[1]}", timeout=5)
        assert client.call("VM.getStats", {"vmID": VM})["status"] == "Up"
        with pytest.raises(JsonRpcError) as err:
            client.call("VM.getStats", {"vmID": "nope"})
        assert err.value.code == 1 and err.value.name == "noVM"
    finally:
        server.shutdown()
    with pytest.raises(JsonRpcError) as err:
        JsonRpcClient("http://127.0.0.1:9", timeout=1).call("Host.getStats", {})
    assert err.value.code == -32000

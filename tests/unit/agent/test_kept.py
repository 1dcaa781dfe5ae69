"""Answers within a deadline, else the last fresh one (ferry.agent.kept), and the verbs using it."""
import threading
import time

import pytest

from ferry.agent.kept import KeptAnswers
from tests.unit.agent.fake_libvirt import domain_xml
from tests.unit.agent.test_agent_api import VM, make_agent, rpc


def test_fresh_when_in_time_last_one_when_late_then_the_late_one():
    kept = KeptAnswers(deadline_s=0.1)
    assert kept.get("k", lambda: 1) == (1, None)
    gate = threading.Event()

    def slow():
        gate.wait(5)
        return 2

    t0 = time.monotonic()
    value, stale = kept.get("k", slow)
    assert value == 1 and stale is not None and stale >= 0 and time.monotonic() - t0 < 0.5
    calls = []
    value, _ = kept.get("k", lambda: calls.append(1) or 3)      # joins the worker in flight
    assert value == 1 and calls == []
    gate.set()
    time.sleep(0.05)
    assert kept.get("k", lambda: 4) == (4, None)                 # the late answer was kept, then a new one


def test_errors_of_fresh_answers_are_raised_and_keys_are_separate():
    kept = KeptAnswers(deadline_s=0.1)
    with pytest.raises(KeyError):
        kept.get("a", lambda: {}["missing"])
    assert kept.get("b", lambda: "b") == ("b", None)
    assert kept.get("a", lambda: "a") == ("a", None)


def test_host_verbs_answer_in_time_while_libvirt_holds_the_domain_list():
    """At the end of a migration libvirt locks the domain while it stops QEMU; listings wait."""
    agent, conn = make_agent()
    conn.add_domain(domain_xml())
    assert rpc(agent, "Host.getStats", {})["vmCount"] == 1
    assert "staleSeconds" not in rpc(agent, "VM.getStats", {"vmID": VM})
    gate = threading.Event()
    real_list, real_info = conn.listAllDomains, conn.domains[VM].info

    def held_list(flags=0):
        gate.wait(5)
        return real_list(flags)

    def held_info():
        gate.wait(5)
        return real_info()

    conn.listAllDomains, conn.domains[VM].info = held_list, held_info
    try:
        for verb, params in (("Host.getStats", {}), ("Host.getVMList", {}), ("VM.getStats", {"vmID": VM})):
            t0 = time.monotonic()
            answer = rpc(agent, verb, params)
            assert time.monotonic() - t0 < 0.8, verb
            assert answer["staleSeconds"] >= 0, verb
        assert rpc(agent, "Host.getVMList", {})["vms"][0]["vmID"] == VM
    finally:
        gate.set()


def test_change_params_answers_in_time_while_libvirt_holds_the_domain():
    from tests.unit.agent.test_agent_api import Direct

    dst, _ = make_agent()
    src, conn = make_agent(destination=lambda address: Direct(dst))
    dom = conn.add_domain(domain_xml())
    release, gate = threading.Event(), threading.Event()
    dom.migration_script = lambda d: release.wait(5)
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "127.0.1.3"}})
    real = dom.migrateSetMaxSpeed
    dom.migrateSetMaxSpeed = lambda bw, flags=0: gate.wait(5) and real(bw, flags)
    try:
        t0 = time.monotonic()
        answer = rpc(src, "VM.migrateChangeParams", {"vmID": VM, "params": {"maxBandwidth": 30}})
        assert time.monotonic() - t0 < 0.9 and "requested" in answer["status"]["message"]
    finally:
        gate.set()
        release.set()


def test_change_params_on_a_migration_that_just_ended_is_not_in_progress():
    import libvirt

    from ferry.common.jsonrpc import JsonRpcError
    from tests.unit.agent.test_agent_api import Direct

    dst, _ = make_agent()
    src, conn = make_agent(destination=lambda address: Direct(dst))
    dom = conn.add_domain(domain_xml())
    release = threading.Event()
    dom.migration_script = lambda d: release.wait(5)
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "127.0.1.3"}})

    def gone(bw, flags=0):
        err = libvirt.libvirtError("Domain not found: no domain with matching uuid")
        err.err = (libvirt.VIR_ERR_NO_DOMAIN, 0, "Domain not found", 2, None, None, None, 0, 0)
        raise err
    dom.migrateSetMaxSpeed = gone
    try:
        with pytest.raises(JsonRpcError) as err:
            rpc(src, "VM.migrateChangeParams", {"vmID": VM, "params": {"maxBandwidth": 30}})
        assert err.value.name == "migCancelErr" and "ended" in err.value.message
    finally:
        release.set()

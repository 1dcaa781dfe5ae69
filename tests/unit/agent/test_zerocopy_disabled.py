"""`ferry agent run --disable-zerocopy REASON`: the host reports zero-copy unsupported, says why,
and never passes VIR_MIGRATE_ZEROCOPY even when asked (the engine must not be trusted blindly)."""
from ferry.agent import capabilities as caps
from tests.unit.agent.fake_libvirt import FakeConnection, domain_xml
from tests.unit.agent.test_agent_api import VM, Direct, make_agent, rpc, wait_final

REASON = "kernel 5.10 loses MSG_ZEROCOPY completions"


def test_disabled_host_reports_unsupported_with_the_reason_first():
    agent, _ = make_agent(zerocopy_disabled=REASON)
    answer = rpc(agent, "Host.getCapabilities", {})
    assert answer["zerocopy_migrations"] is False
    first = answer["zerocopy_checks"][0]
    assert first == {"check": "admin_disabled", "result": caps.FAIL,
                     "reason": f"zero-copy turned off on this host: {REASON}"}
    # the real checks are still reported after it
    assert {c["check"] for c in answer["zerocopy_checks"][1:]} >= {"libvirt_binding", "kernel_msg_zerocopy"}


def test_same_host_without_the_option_supports_zerocopy():
    agent, _ = make_agent()
    assert rpc(agent, "Host.getCapabilities", {})["zerocopy_migrations"] is True


def test_disabled_host_migrates_without_zerocopy_even_when_asked():
    dst, _ = make_agent(FakeConnection("h2"))
    src, sconn = make_agent(destination=lambda a: Direct(dst), zerocopy_disabled=REASON)
    sconn.add_domain(domain_xml())
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "h2", "parallel": 2, "zerocopy": True}})
    status = wait_final(src)
    assert status["state"] == "succeeded"
    assert "VIR_MIGRATE_ZEROCOPY" not in status["flags"] and "VIR_MIGRATE_PARALLEL" in status["flags"]

"""Ferry's Adaptive policy on real migrations (issue 17 item 2): it goes beyond oVirt's fixed
schedules, so these tests say what it does that they do not: converge a guest that dirties
nearly as fast as the cap within the policy's downtime bound, and abort a doomed one early,
with the reason, instead of running through a schedule."""
from __future__ import annotations

import pytest

from ferry.bench.policy_bench import policy_params
from ferry.engine.policies import ADAPTIVE_ID, ADAPTIVE_MAX_DOWNTIME_MS, BUILTIN_BY_ID

pytestmark = pytest.mark.lab

CAP = 40   # MiB/s, as in the policies benchmark
ADAPTIVE = BUILTIN_BY_ID[ADAPTIVE_ID]


def boot(agent_lab, name, dirty):
    lab = agent_lab.lab
    lab.destroy_guest(name)
    return lab.boot_guest(agent_lab.h1, name, memory_mib=512, fill_mib=320, dirty_mib_s=dirty).spec.effective_uuid


def measured_rate(agent_lab, host, vm_id) -> float:
    """The dirty rate the engine would measure before the start (VM.getDirtyRate)."""
    result = agent_lab.agent(host).call("VM.getDirtyRate", {"vmID": vm_id, "seconds": 4})
    return result["estimate"]["estimateMiBs"]


def run(agent_lab, vm_id, *, parallel=None):
    src = agent_lab.where(vm_id)
    dst = agent_lab.other(src)
    rate = measured_rate(agent_lab, src, vm_id)
    params, plan = policy_params(ADAPTIVE, src, dst, cap_mib_s=CAP, parallel=parallel, dirty_rate_mibs=rate)
    assert "adaptive" in params and "convergenceSchedule" in params     # and the fallback for old agents
    agent_lab.agent(src).call("VM.migrate", {"vmID": vm_id, "params": params})
    status = agent_lab.wait_final(src, vm_id, timeout=240)
    actions = [(a["action"], a.get("reason")) for a in status["scheduleActions"]]
    print(f"measured {rate} MiB/s; {status['state']} after {status.get('totalTime')} ms, downtime "
          f"{status.get('downtime')} ms, postcopy {status.get('postcopy')}; actions {actions}; {status['message']}")
    return src, dst, params, status


def test_adaptive_beyond_ovirt_converges_a_guest_dirtying_near_the_cap_within_its_downtime_bound(agent_lab):
    vm_id = boot(agent_lab, "agt-adaptive-ok", dirty=32)
    try:
        src, dst, params, status = run(agent_lab, vm_id)
        assert params["adaptive"]["allowPostcopy"] is True
        assert status["state"] == "succeeded", status
        if not status["postcopy"]:
            assert status["downtime"] is not None and status["downtime"] <= ADAPTIVE_MAX_DOWNTIME_MS, status
        assert all(a["action"] != "abort" for a in status["scheduleActions"])
        assert agent_lab.where(vm_id) == dst
        report = agent_lab.lab.verify("agt-adaptive-ok", dst)
        assert report.intact, report.reasons
    finally:
        agent_lab.lab.destroy_guest("agt-adaptive-ok")


def test_adaptive_beyond_ovirt_aborts_a_doomed_parallel_migration_early_with_the_reason(agent_lab):
    vm_id = boot(agent_lab, "agt-adaptive-doomed", dirty=150)
    try:
        src, dst, params, status = run(agent_lab, vm_id, parallel=2)
        assert params["adaptive"]["allowPostcopy"] is False and params["parallel"] == 2
        assert status["state"] == "aborted", status
        assert "no strategy within bounds can finish" in status["message"], status["message"]
        assert "post-copy not possible: parallel connections (2) and QEMU 10.0.2 refuses" in status["message"]
        # early: the iteration-based schedules take ~25 s to abort this guest's kind (benchmarks)
        assert status["totalTime"] is not None and status["totalTime"] <= 12_000, status
        assert agent_lab.where(vm_id) == src and vm_id not in agent_lab.vm_ids(dst)
        report = agent_lab.lab.verify("agt-adaptive-doomed", src)
        assert report.intact, report.reasons
    finally:
        agent_lab.lab.destroy_guest("agt-adaptive-doomed")

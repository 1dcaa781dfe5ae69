"""A schedule whose last downtime step lets the migration converge, and whose next item is
abort, on real QEMU: the switch-over's final bitmap sync comes as one more iteration event,
and the abort it would trigger must not cut the finishing migration (ferry.agent.switch_over).
Ferry deliberately differs from Vdsm here, whose 10 s polls rarely land in that window."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.lab

NAME = "agt-switch-over"
# 100 ms at the cap cannot hold what this guest dirties; 5 s holds it all: the step converges.
LAST_STEP_THEN_ABORT = {"init": [{"name": "setDowntime", "params": ["100"]}],
                        "stalling": [{"limit": 1, "action": {"name": "setDowntime", "params": ["5000"]}},
                                     {"limit": -1, "action": {"name": "abort", "params": []}}]}


def test_beyond_vdsm_an_abort_due_at_the_final_sync_does_not_cut_a_converging_migration(agent_lab):
    lab = agent_lab.lab
    lab.destroy_guest(NAME)
    vm_id = lab.boot_guest(agent_lab.h1, NAME, memory_mib=1024, fill_mib=384, dirty_mib_s=40).spec.effective_uuid
    try:
        src = agent_lab.where(vm_id)
        dst = agent_lab.other(src)
        agent_lab.migrate(src, vm_id, maxBandwidth=40, convergenceSchedule=LAST_STEP_THEN_ABORT)
        status = agent_lab.wait_final(src, vm_id, timeout=240)
        actions = status["scheduleActions"]
        print(f"{status['state']} after {status.get('totalTime')} ms, downtime {status.get('downtime')} ms; "
              f"actions {[(a['n'], a['action'], a.get('deferred') or a.get('reason')) for a in actions]}")
        assert status["state"] == "succeeded", status
        assert [a["action"] for a in actions][:2] == ["setDowntime(100)", "setDowntime(5000)"], actions
        # the abort either never came due, or came due at the final sync and waited
        assert all("deferred" in a for a in actions if a["action"] == "abort"), actions
        assert status["downtime"] is not None and status["downtime"] <= 5000 + 1000, status
        assert agent_lab.where(vm_id) == dst and vm_id not in agent_lab.vm_ids(src)
        report = lab.verify(NAME, dst)
        assert report.intact, report.reasons
    finally:
        lab.destroy_guest(NAME)

"""An abort that lands in the switch-over waits for its outcome (ferry.agent.switch_over).

QEMU stops the guest to finish and reports the final bitmap sync as a new pass, which libvirt
turns into an iteration: a schedule's `abort` after its last downtime step fired right then on
a migration that was converging (the lab's 2048 MiB "Suspend workload if needed" runs). Vdsm,
polling every 10 s, rarely sees that iteration; Ferry hears it at once, so Ferry deliberately
looks at the source's state first (a difference from Vdsm, which aborts whenever its turn comes).
"""
import threading
import time

import libvirt
import pytest

from ferry.agent.switch_over import PAUSED_BY_OWNER, PAUSED_FOR_MIGRATION, PAUSED_FOR_POSTCOPY, RUNNING, check_abort
from tests.unit.agent.fake_libvirt import GiB
from tests.unit.agent.test_agent_api import VM, pair, rpc, wait_final  # noqa: F401 - pair is a fixture

LAST_STEP_THEN_ABORT = {"init": [], "stalling": [
    {"limit": 1, "action": {"name": "setDowntime", "params": ["5000"]}},
    {"limit": -1, "action": {"name": "abort", "params": []}}]}


@pytest.mark.parametrize("state,paused_at_start,now", [
    (RUNNING, False, True), (RUNNING, True, True),
    (PAUSED_BY_OWNER, True, True), (PAUSED_BY_OWNER, False, True),
    (PAUSED_FOR_MIGRATION, False, False), (PAUSED_FOR_MIGRATION, True, False),
    (PAUSED_FOR_POSTCOPY, False, False), (PAUSED_FOR_POSTCOPY, True, False),
])
def test_an_abort_runs_now_unless_the_source_paused_the_guest_to_finish(state, paused_at_start, now):
    check = check_abort(state, paused_at_start=paused_at_start)
    assert check.now is now and check.reason
    if state == PAUSED_FOR_MIGRATION:
        assert "switch-over is under way" in check.reason


def test_reasons_name_what_was_seen():
    assert "paused before the migration began" in check_abort(PAUSED_BY_OWNER, paused_at_start=True).reason
    assert "another reason" in check_abort(PAUSED_BY_OWNER, paused_at_start=False).reason
    assert "pre-copy goes on" in check_abort(RUNNING, paused_at_start=False).reason
    assert "post-copy" in check_abort(PAUSED_FOR_POSTCOPY, paused_at_start=False).reason


def switch_over_script(*, completes: bool):
    """Three passes (the last downtime step at the third), then the switch-over: the guest
    paused for migration and the final sync reported as iteration 4; then completion, or the
    guest resumes here (QEMU gave up on it)."""
    def stats(it, remaining):
        return {"type": libvirt.VIR_DOMAIN_JOB_UNBOUNDED, "data_total": GiB, "data_processed": GiB - remaining,
                "data_remaining": remaining, "memory_total": GiB, "memory_remaining": remaining,
                "memory_bps": 100 << 20, "memory_dirty_rate": 1000, "memory_page_size": 4096,
                "memory_iteration": it, "time_elapsed": it * 100}

    def script(dom):
        conn = dom.conn
        for it in (1, 2, 3):
            dom.job_stats = stats(it, GiB // (2 * it))
            conn.fire_iteration(dom, it)
            time.sleep(0.15)
        dom.paused, dom.pause_reason = True, libvirt.VIR_DOMAIN_PAUSED_MIGRATION
        dom.job_stats = stats(4, 8 << 20)
        conn.fire_iteration(dom, 4)
        time.sleep(0.4)                       # several polls see the guest paused to finish
        assert not dom.aborted.is_set(), "abortJob during the switch-over"
        dom.paused = False
        if completes:
            conn.fire_job_completed(dom, {**stats(4, 0), "type": libvirt.VIR_DOMAIN_JOB_COMPLETED, "downtime": 900})
            return
        if dom.aborted.wait(3):
            dom.job_stats = {"type": libvirt.VIR_DOMAIN_JOB_NONE}
            raise libvirt.libvirtError("operation aborted: migration out: canceled by client")
        raise libvirt.libvirtError("the deferred abort never came")
    return script


def migrate(src):
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "127.0.1.3", "convergenceSchedule": LAST_STEP_THEN_ABORT}})
    return wait_final(src)


def test_beyond_vdsm_an_abort_in_the_switch_over_waits_and_the_migration_completes(pair):
    src, sconn = pair[:2]
    sconn.domains[VM].migration_script = switch_over_script(completes=True)
    status = migrate(src)
    assert status["state"] == "succeeded", status
    assert sconn.named_calls("abortJob") == []
    abort = status["scheduleActions"][-1]
    assert abort["action"] == "abort" and "switch-over is under way" in abort["deferred"], status["scheduleActions"]


def test_a_deferred_abort_runs_at_the_next_poll_once_the_guest_runs_here_again(pair):
    src, sconn = pair[:2]
    sconn.domains[VM].migration_script = switch_over_script(completes=False)
    status = migrate(src)
    assert status["state"] == "aborted" and status["message"] == "Migration aborted by the convergence schedule"
    assert len(sconn.named_calls("abortJob")) == 1
    first, then = status["scheduleActions"][-2:]
    assert "deferred" in first and then["action"] == "abort" and then["ok"] is True
    assert "did not finish" in then["reason"], then
    assert sconn.domains[VM].running        # the VM stays where it was


def test_a_vm_paused_before_the_migration_is_aborted_at_once(pair):
    src, sconn = pair[:2]
    dom = sconn.domains[VM]
    dom.suspend()
    aborted_while_paused = threading.Event()

    def script(d):
        for it in (1, 2, 3, 4, 5):
            d.job_stats = {"type": libvirt.VIR_DOMAIN_JOB_UNBOUNDED, "data_total": GiB, "data_remaining": GiB // 2,
                           "memory_total": GiB, "memory_remaining": GiB // 2, "memory_iteration": it,
                           "memory_bps": 100 << 20}
            d.conn.fire_iteration(d, it)
            if d.aborted.wait(0.3):
                aborted_while_paused.set()
                raise libvirt.libvirtError("operation aborted: migration out: canceled by client")
    dom.migration_script = script
    status = migrate(src)
    assert status["state"] == "aborted", status
    assert aborted_while_paused.is_set() and "deferred" not in status["scheduleActions"][-1]

"""The agent runs Ferry's adaptive convergence (beyond oVirt) instead of the fallback schedule
sent beside it, with the recording fake of libvirt."""
from __future__ import annotations

import threading
import time

import libvirt

from tests.unit.agent.fake_libvirt import iterating_script
from tests.unit.agent.test_agent_api import VM, pair, rpc, wait_final  # noqa: F401 - pair is a fixture

MiB = 1 << 20
# Values no adaptive decision would pick, so a fallback step that ran would show.
FALLBACK = {"init": [{"name": "setDowntime", "params": ["111"]}], "stalling": [
    {"limit": 1, "action": {"name": "setDowntime", "params": ["777"]}},
    {"limit": 2, "action": {"name": "setDowntime", "params": ["888"]}},
    {"limit": -1, "action": {"name": "abort", "params": []}}]}


def migrate(src, *, adaptive, **params):
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "127.0.1.3", "autoConverge": True,
                                                   "convergenceSchedule": FALLBACK, "adaptive": adaptive,
                                                   **params}})
    return wait_final(src)


def steady_script(*, remaining_mib, dirty_mibs, bw_mibs, iterations=(1, 2, 3, 4, 5, 6), pause=0.08,
                  until=None, completed_downtime=120, throttle=lambda it: 0):
    """A migration whose figures stay put (a guest dirtying at `dirty_mibs`); ends when aborted,
    or with success once `until()` holds or the iterations run out."""
    def script(dom):
        for it in iterations:
            dom.job_stats = {"type": libvirt.VIR_DOMAIN_JOB_UNBOUNDED, "data_total": 1024 * MiB,
                             "data_processed": 100 * MiB, "data_remaining": int(remaining_mib * MiB),
                             "memory_total": 1024 * MiB, "memory_remaining": int(remaining_mib * MiB),
                             "memory_bps": int(bw_mibs * MiB), "memory_dirty_rate": int(dirty_mibs * MiB / 4096),
                             "memory_page_size": 4096, "memory_iteration": it, "time_elapsed": it * 1000,
                             "auto_converge_throttle": throttle(it)}
            dom.conn.fire_iteration(dom, it)
            deadline = time.monotonic() + pause
            while time.monotonic() < deadline and not dom.aborted.is_set():
                time.sleep(0.01)
            if dom.aborted.is_set():
                raise libvirt.libvirtError("operation aborted: migration out: canceled by client")
            if until and until():
                break
        done = {"type": libvirt.VIR_DOMAIN_JOB_COMPLETED, "data_total": 1024 * MiB, "data_remaining": 0,
                "time_elapsed": 3000}
        if completed_downtime is not None:
            done["downtime"] = completed_downtime
        dom.conn.fire_job_completed(dom, done)
    return script


def names(status):
    return [a["action"] for a in status["scheduleActions"]]


def test_adaptive_beyond_ovirt_raises_downtime_to_the_need_and_skips_the_fallback_schedule(pair):
    src, sconn = pair[:2]
    sconn.domains[VM].migration_script = iterating_script(range(1, 8), pause=0.08)
    status = migrate(src, adaptive={"maxDowntimeMs": 2000})
    assert status["state"] == "succeeded", status
    acts = names(status)
    assert acts[0] == "setDowntime(300)"                     # the adaptive initial limit, not 111
    assert not {"setDowntime(111)", "setDowntime(777)", "setDowntime(888)", "abort"} & set(acts)
    raised = [a for a in status["scheduleActions"][1:] if a["action"].startswith("setDowntime")]
    assert raised and all(300 < int(a["action"][12:-1]) <= 1850 for a in raised)
    assert "needs" in raised[0]["reason"]
    downtimes = [args[1] for args in sconn.named_calls("migrateSetMaxDowntime")]
    assert downtimes[0] == 300 and max(downtimes) <= 1850
    assert status["maxDowntime"] == downtimes[-1]


def test_adaptive_beyond_ovirt_aborts_a_doomed_parallel_migration_early_naming_why(pair):
    src, sconn = pair[:2]
    dom = sconn.domains[VM]
    src.monitor_command = lambda d, command: {"return": {}}
    dom.migration_script = steady_script(remaining_mib=900, dirty_mibs=400, bw_mibs=40, iterations=range(1, 40))
    status = migrate(src, adaptive={"maxDowntimeMs": 2000, "dirtyRateMiBs": 400, "allowPostcopy": True},
                     parallel=2)
    assert status["state"] == "aborted", status
    assert status["message"].startswith("Migration aborted by adaptive convergence: no strategy within bounds")
    assert "post-copy not possible: parallel connections (2) and QEMU 10.0.2 refuses" in status["message"]
    assert status["error"].startswith("adaptive: ")
    assert names(status) == ["setDowntime(300)", "abort"]       # at once, no schedule run through
    assert sconn.named_calls("migrateStartPostCopy") == []
    assert len(sconn.named_calls("abortJob")) == 1
    assert dom.running                                           # the VM stays where it was


def test_adaptive_switches_to_postcopy_where_this_migration_allows_it(pair):
    src, sconn = pair[:2]
    dom = sconn.domains[VM]
    src.monitor_command = lambda d, command: {"return": {}}
    dom.migration_script = steady_script(remaining_mib=900, dirty_mibs=400, bw_mibs=40, iterations=range(1, 40),
                                         until=lambda: dom.paused)
    status = migrate(src, adaptive={"maxDowntimeMs": 2000, "dirtyRateMiBs": 400})
    assert status["state"] == "succeeded", status
    assert names(status) == ["setDowntime(300)", "postcopy"]
    assert status["postcopy"] is True
    flags = sconn.named_calls("migrateToURI3")[0][3]
    assert flags & libvirt.VIR_MIGRATE_POSTCOPY


def test_a_postcopy_migration_reports_qemus_switch_over_downtime_which_libvirt_lacks(pair):
    src, sconn = pair[:2]
    dom = sconn.domains[VM]
    asked: list = []

    def monitor(d, command):
        asked.append(command)
        state = "postcopy-active" if dom.paused else "active"
        return {"return": {"status": state, "downtime": 7} if dom.paused else {"status": state,
                                                                              "expected-downtime": 300}}

    src.monitor_command = monitor
    # libvirt's completed stats of a post-copy migration carry no downtime (lab: QEMU 10.0.2)
    dom.migration_script = steady_script(remaining_mib=900, dirty_mibs=400, bw_mibs=40, iterations=range(1, 40),
                                         until=lambda: dom.paused and asked, completed_downtime=None)
    status = migrate(src, adaptive={"maxDowntimeMs": 2000, "dirtyRateMiBs": 400})
    assert status["state"] == "succeeded" and status["postcopy"] is True, status
    assert asked == [{"execute": "query-migrate"}]     # read once, after the switch
    assert status["postcopyDowntime"] == 7
    assert status["downtime"] == 7


def test_libvirts_downtime_wins_where_it_reports_one(pair):
    src, sconn = pair[:2]
    dom = sconn.domains[VM]
    src.monitor_command = lambda d, command: {"return": {"status": "postcopy-active", "downtime": 7}}
    dom.migration_script = steady_script(remaining_mib=900, dirty_mibs=400, bw_mibs=40, iterations=range(1, 40),
                                         until=lambda: dom.paused)
    status = migrate(src, adaptive={"maxDowntimeMs": 2000, "dirtyRateMiBs": 400})
    assert status["state"] == "succeeded" and status["postcopy"] is True, status
    assert status["downtime"] == 120


def test_adaptive_raises_the_throttle_through_the_qemu_monitor(pair):
    src, sconn = pair[:2]
    dom = sconn.domains[VM]
    sent: list = []
    called = threading.Event()

    def monitor(d, command):
        sent.append((d.UUIDString(), command))
        called.set()
        return {"return": {}}

    src.monitor_command = monitor
    # 1 GiB guest (64 s bound): 150 MiB/s against 40 MiB/s needs increment 30 (see test_adaptive)
    dom.migration_script = steady_script(remaining_mib=300, dirty_mibs=150, bw_mibs=40, iterations=range(2, 40),
                                         until=called.is_set)
    status = migrate(src, adaptive={"maxDowntimeMs": 2000}, parallel=2)
    assert status["state"] == "succeeded", status
    assert sent == [(VM, {"execute": "migrate-set-parameters", "arguments": {"cpu-throttle-increment": 30}})]
    assert names(status) == ["setDowntime(300)", "setThrottle(increment 30%)"]


def test_the_highest_throttle_the_job_stats_showed_is_in_the_status(pair):
    src, sconn = pair[:2]
    dom = sconn.domains[VM]
    dom.migration_script = steady_script(remaining_mib=10, dirty_mibs=5, bw_mibs=40, iterations=range(1, 6),
                                         pause=0.3, throttle=lambda it: {3: 20, 4: 40, 5: 30}.get(it, 0))
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "127.0.1.3", "autoConverge": True}})
    status = wait_final(src)
    assert status["state"] == "succeeded", status
    assert status["autoConvergeThrottleMax"] == 40


def test_a_migration_qemu_never_throttled_leaves_the_throttle_out(pair):
    src, sconn = pair[:2]
    sconn.domains[VM].migration_script = steady_script(remaining_mib=10, dirty_mibs=5, bw_mibs=40,
                                                       iterations=range(1, 4))
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "127.0.1.3"}})
    status = wait_final(src)
    assert status["state"] == "succeeded" and "autoConvergeThrottleMax" not in status, status


def test_a_monitor_that_fails_is_recorded_and_the_controller_moves_on(pair):
    src, sconn = pair[:2]
    dom = sconn.domains[VM]

    def monitor(d, command):
        raise libvirt.libvirtError("Operation not supported: QEMU monitor")

    src.monitor_command = monitor
    dom.migration_script = steady_script(remaining_mib=300, dirty_mibs=150, bw_mibs=40, iterations=range(2, 40))
    status = migrate(src, adaptive={"maxDowntimeMs": 2000}, parallel=2)
    assert status["state"] == "aborted", status
    throttle = status["scheduleActions"][1]
    assert (throttle["action"], throttle["ok"]) == ("setThrottle(increment 30%)", False)
    assert "QEMU monitor" in throttle["error"]
    assert names(status)[-1] == "abort"


def test_without_adaptive_the_schedule_runs_as_before(pair):
    src, sconn = pair[:2]
    sconn.domains[VM].migration_script = iterating_script(range(1, 8), pause=0.05)
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "127.0.1.3", "convergenceSchedule": FALLBACK}})
    status = wait_final(src)
    assert names(status)[:3] == ["setDowntime(111)", "setDowntime(777)", "setDowntime(888)"]


def test_bad_adaptive_bounds_are_refused_naming_the_field(pair):
    src = pair[0]
    from ferry.common.jsonrpc import JsonRpcError
    from tests.unit.agent.test_agent_api import Direct
    try:
        Direct(src).call("VM.migrate", {"vmID": VM, "params": {"dst": "127.0.1.3",
                                                               "adaptive": {"maxDowntimeMs": 0}}})
    except JsonRpcError as exc:
        assert "adaptive.maxDowntimeMs" in exc.message
    else:
        raise AssertionError("accepted a 0 ms maximum downtime")

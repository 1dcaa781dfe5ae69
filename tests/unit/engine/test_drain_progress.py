"""A drain's forecast, ETA and progress view (ferry.engine.drain_progress)."""
from __future__ import annotations

from ferry.engine.drain_progress import MIB, UNCAPPED_MIBS, drain_eta, progress_view, vm_forecast


def test_eta_is_the_makespan_of_list_scheduling_over_the_slots():
    assert drain_eta([], [4, 2, 3], slots=1) == 9
    assert drain_eta([], [4, 2, 3], slots=2) == 5      # 4 | 2 then 3
    assert drain_eta([1.0], [4, 2], slots=2) == 4      # running ends at 1, then 2 -> 3; 4 on the other
    assert drain_eta([], [], slots=2) == 0


def test_largest_first_can_end_the_whole_drain_sooner_the_documented_trade_off():
    # shortest first: two VMs out after 1 s, the last at 7 s; largest first: all out at 6 s
    assert drain_eta([], [1, 1, 6], slots=2) == 7 and drain_eta([], [6, 1, 1], slots=2) == 6


def test_a_vm_that_never_converges_gives_no_eta():
    assert drain_eta([2.0], [None], slots=2) is None
    assert drain_eta([None], [1.0], slots=2) is None


def test_forecast_of_an_idle_vm_is_its_touched_memory_over_the_cap():
    f = vm_forecast(512, {"fill_mib": 200, "dirty_mib_s": 0}, {"maxBandwidth": 100})
    assert f["outcome"] == "converge" and f["mib"] == 200
    assert 2.0 < f["seconds"] < 4.0      # 2 s of copy + the fixed libvirt cost


def test_forecast_without_a_cap_uses_the_lab_throughput_and_all_memory_when_the_workload_is_unknown():
    f = vm_forecast(340, None, {})
    assert f["mib"] == 340 and abs(f["seconds"] - (1 + 1.5)) < 0.1
    assert UNCAPPED_MIBS == 340


def test_a_dirtying_vm_forecasts_longer_than_an_idle_one_and_the_schedule_can_abort_it():
    idle = vm_forecast(512, {"fill_mib": 256, "dirty_mib_s": 0}, {"maxBandwidth": 50})
    busy = vm_forecast(512, {"fill_mib": 256, "dirty_mib_s": 32}, {"maxBandwidth": 50})
    assert busy["seconds"] > idle["seconds"]
    never = vm_forecast(512, {"fill_mib": 256, "dirty_mib_s": 200}, {
        "maxBandwidth": 50, "convergenceSchedule": {"init": [{"name": "setDowntime", "params": ["100"]}],
                                                    "stalling": [{"limit": 1, "action": {"name": "abort",
                                                                                         "params": []}}]}})
    assert never["outcome"] == "abort"


def _drain(items, state="ACTIVE"):
    return {"id": "d1", "host": "h1", "state": state, "order": "shortest", "reason": "", "items": items}


def test_progress_counts_done_running_and_bytes_and_gives_one_line_per_running_migration():
    items = [
        {"vm": "a", "state": "done", "bytes": 100 * MIB, "forecast_s": 2.0, "forecast_mib": 100, "outgoing_limit": 2},
        {"vm": "b", "state": "migrating", "migration_id": "m2", "destination": "h2", "forecast_s": 10.0,
         "forecast_mib": 300, "outgoing_limit": 2, "paused": True},
        {"vm": "c", "state": "queued", "forecast_s": 5.0, "forecast_mib": 200, "outgoing_limit": 2},
    ]
    m2 = {"state": "RUNNING", "progress": 40, "figures": {"data_processed": 120 * MIB, "time_elapsed_ms": 4000}}
    view = progress_view(_drain(items), "PREPARING_FOR_MAINTENANCE", {"m2": m2})
    assert (view["vms_total"], view["vms_done"], view["vms_running"], view["vms_queued"]) == (3, 1, 1, 1)
    assert view["bytes_done"] == 220 * MIB and view["bytes_expected"] == 600 * MIB
    (line,) = view["running"]
    assert line["vm"] == "b" and line["destination"] == "h2" and line["progress"] == 40
    assert line["eta_seconds"] == 6.0 and line["paused_vm"] is True
    assert view["eta_seconds"] == 6.0     # c (5 s) runs beside b (6 s left) on the second slot


def test_a_stuck_or_paused_drain_has_no_eta_and_names_the_stuck_vm():
    items = [{"vm": "a", "state": "failed", "reason": "failed on 3 hosts", "forecast_s": 1.0}]
    view = progress_view(_drain(items), "PREPARING_FOR_MAINTENANCE", {})
    assert view["eta_seconds"] is None and view["stuck"] == [{"vm": "a", "state": "failed",
                                                              "reason": "failed on 3 hosts"}]
    view = progress_view(_drain([{"vm": "a", "state": "queued", "forecast_s": 1.0}], "PAUSED"), "X", {})
    assert view["eta_seconds"] is None


def test_the_eta_learns_the_real_pace_from_the_vms_already_moved():
    from ferry.engine.drain_progress import calibration

    items = [{"vm": "a", "state": "done", "forecast_s": 2.0, "duration_s": 6.0, "outgoing_limit": 1},
             {"vm": "b", "state": "queued", "forecast_s": 3.0, "outgoing_limit": 1}]
    assert calibration(items) == 3.0
    assert calibration([{"vm": "a", "state": "queued", "forecast_s": 2.0}]) == 1.0
    view = progress_view(_drain(items), "PREPARING_FOR_MAINTENANCE", {})
    assert view["eta_seconds"] == 9.0 and view["eta_calibration"] == 3.0

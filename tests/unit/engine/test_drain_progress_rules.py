"""The rules of a drain's progress record, one per test (ferry.engine.drain_progress).

What the maintenance view and `ferry host drain --follow` read: which plan fields the per-VM
forecast takes, how the schedule's wire form becomes the forecast's, which items count as done,
queued and stuck, what a running line shows, and to what precision each figure is given.
"""
from __future__ import annotations

import pytest

from ferry.engine import drain_progress
from ferry.engine.drain_progress import (
    MIB,
    UNCAPPED_MIBS,
    _stalling,
    calibration,
    drain_eta,
    progress_view,
    vm_forecast,
)
from ferry.forecast import ForecastInputs
from ferry.forecast.model import Forecast, Step


def test_the_schedule_wire_form_becomes_init_downtime_and_neutral_stalling_items():
    schedule = {
        "init": [{"name": "setDowntime", "params": ["150"]}, {"name": "other", "params": ["9"]}],
        "stalling": [
            {"limit": 1, "action": {"name": "setDowntime", "params": ["200"]}},
            {"limit": 2, "action": {"name": "other", "params": ["5"]}},          # not a forecast action
            {"limit": 3, "action": {"name": "abort", "params": ["1"]}},          # params read only for setDowntime
            {"limit": 4, "action": {"name": "setDowntime", "params": ["300", "7"]}},  # the first param
            {"action": {"name": "postcopy", "params": []}},                      # no limit: the last item, -1
            {"limit": 5},                                                        # no action: skipped
        ],
    }
    assert _stalling(schedule) == (150, ((1, "setDowntime", 200), (3, "abort", None), (4, "setDowntime", 300),
                                         (-1, "postcopy", None)))


def test_a_schedule_without_a_downtime_in_init_has_no_init_downtime():
    assert _stalling({"init": [{"name": "setDowntime", "params": []}], "stalling": []}) == (None, ())
    assert _stalling({"init": [{"name": "other", "params": ["9"]}]}) == (None, ())
    assert _stalling({"stalling": [{"limit": 2, "action": {"name": "setDowntime"}}]}) == (
        None, ((2, "setDowntime", None),))
    assert _stalling(None) == (None, ()) and _stalling({}) == (None, ())


class _Spy:
    def __init__(self, result):
        self.inputs, self.result = [], result

    def __call__(self, inputs):
        self.inputs.append(inputs)
        return self.result


def _result(total_seconds, steps=()):
    inp = ForecastInputs(memory_mib=1, touched_mib=1, dirty_rate_mibs=0, bandwidth_mibs=1)
    return Forecast("converge", total_seconds, 0.0, len(steps), None, None, inp, steps=tuple(steps))


def test_the_vm_forecast_takes_cap_schedule_auto_converge_and_parallel_from_the_plan(monkeypatch):
    spy = _Spy(_result(1.0))
    monkeypatch.setattr(drain_progress, "forecast", spy)
    schedule = {"init": [{"name": "setDowntime", "params": ["150"]}],
                "stalling": [{"limit": 2, "action": {"name": "abort", "params": []}}]}
    vm_forecast(1024, {"fill_mib": 300, "dirty_mib_s": 12},
                {"maxBandwidth": 100, "convergenceSchedule": schedule, "autoConverge": True, "parallel": 4})
    assert spy.inputs[-1] == ForecastInputs(memory_mib=1024.0, touched_mib=300.0, dirty_rate_mibs=12.0,
                                            bandwidth_mibs=100.0, init_downtime_ms=150,
                                            stalling=((2, "abort", None),), auto_converge=True, parallel=4)
    vm_forecast(1024, {}, {})
    assert spy.inputs[-1] == ForecastInputs(memory_mib=1024.0, touched_mib=1024.0, dirty_rate_mibs=0.0,
                                            bandwidth_mibs=UNCAPPED_MIBS, init_downtime_ms=None, stalling=(),
                                            auto_converge=False, parallel=0)


@pytest.mark.parametrize(("cap", "bandwidth"), [(1, 1.0), (0, UNCAPPED_MIBS), (-5, UNCAPPED_MIBS),
                                                ("100", UNCAPPED_MIBS), (None, UNCAPPED_MIBS),
                                                (1000, UNCAPPED_MIBS)])
def test_the_forecast_bandwidth_is_a_positive_cap_at_most_the_lab_throughput(monkeypatch, cap, bandwidth):
    spy = _Spy(_result(1.0))
    monkeypatch.setattr(drain_progress, "forecast", spy)
    vm_forecast(64, None, {"maxBandwidth": cap})
    assert spy.inputs[-1].bandwidth_mibs == bandwidth


def test_the_vm_forecast_counts_what_is_sent_without_the_aborted_iteration_and_rounds(monkeypatch):
    steps = [Step(1, 1.26, 1.0, 0.0, 300), Step(2, 5.0, 1.0, 0.0, 300, fires="abort")]
    monkeypatch.setattr(drain_progress, "forecast", _Spy(_result(1.23456, steps)))
    assert vm_forecast(64, None, {}) == {"seconds": 1.23, "mib": 1.3, "outcome": "converge"}
    monkeypatch.setattr(drain_progress, "forecast", _Spy(_result(None, steps[:1])))
    assert vm_forecast(64, None, {})["seconds"] is None


def test_the_drain_eta_is_given_to_a_tenth_of_a_second_and_running_time_never_goes_negative():
    assert drain_eta([], [1.26], slots=1) == 1.3
    assert drain_eta([-3.0], [1.0], slots=1) == 1.0       # an overdue VM frees its slot now, not 3 s ago
    assert drain_eta([0.5], [1.0], slots=1) == 1.5
    # two running on two slots and one queued: it waits for the first to end
    assert drain_eta([2.0, 3.0], [1.0], slots=2) == 3.0
    assert drain_eta([2.0], [], slots=0) == 2.0


def test_calibration_uses_only_finished_vms_with_both_times():
    assert calibration([{"state": "done", "duration_s": 6.0, "forecast_s": 2.0},
                        {"state": "done", "duration_s": 0, "forecast_s": 4.0},       # no real time
                        {"state": "done", "duration_s": 5.0, "forecast_s": None}]) == 3.0
    assert calibration([{"state": "done", "duration_s": 0.5, "forecast_s": 0.5}]) == 1.0
    assert calibration([{"state": "done", "duration_s": 0.5, "forecast_s": 0.25}]) == 2.0
    assert calibration([{"state": "done", "duration_s": 0, "forecast_s": 2.0}]) == 1.0


def _drain(items, state="ACTIVE"):
    return {"id": "d7", "host": "h1", "state": state, "order": "largest", "reason": "maintenance",
            "items": items, "created_at": "t0", "finished_at": "t1"}


def test_the_progress_record_names_every_field_the_view_reads():
    items = [
        {"vm": "a", "state": "done", "bytes": 10 * MIB, "forecast_s": 3.0, "duration_s": 1.0, "forecast_mib": 100,
         "outgoing_limit": 3},
        {"vm": "g", "state": "gone", "bytes": 50 * MIB, "forecast_mib": 40, "outgoing_limit": 3},
        {"vm": "r", "state": "migrating", "migration_id": "m1", "destination": "h3", "forecast_s": 3.78,
         "forecast_mib": 10, "outgoing_limit": 3},
        {"vm": "s", "state": "migrating", "forecast_s": None, "outgoing_limit": 3},
        {"vm": "b", "state": "blocked", "reason": "no host", "forecast_mib": 20, "outgoing_limit": 3},
    ]
    migrations = {"m1": {"state": "RUNNING", "progress": 30, "figures": {"data_processed": 7 * MIB}}}
    view = progress_view(_drain(items), "PREPARING_FOR_MAINTENANCE", migrations)
    assert view == {
        "host": "h1", "host_status": "PREPARING_FOR_MAINTENANCE", "drain_id": "d7", "state": "ACTIVE",
        "order": "largest", "reason": "maintenance",
        "vms_total": 5, "vms_done": 2, "vms_running": 2, "vms_queued": 1,
        "bytes_done": 67 * MIB, "bytes_expected": 130 * MIB,   # a gone VM's forecast is not expected
        "eta_seconds": None,                       # a blocked VM: no ETA
        "eta_calibration": 0.33,                   # 1 s real for 3 s forecast
        "running": [
            # 3.78 s forecast * 1/3 = 1.26 s; not started (no elapsed time): all of it left
            {"vm": "r", "migration_id": "m1", "destination": "h3", "state": "RUNNING", "progress": 30,
             "bytes": 7 * MIB, "eta_seconds": 1.3, "paused_vm": False},
            # no migration record yet: no state, 0% and 0 bytes, no forecast: no ETA
            {"vm": "s", "migration_id": None, "destination": None, "state": None, "progress": 0,
             "bytes": 0, "eta_seconds": None, "paused_vm": False},
        ],
        "stuck": [{"vm": "b", "state": "blocked", "reason": "no host"}],
        "items": items, "created_at": "t0", "finished_at": "t1",
    }


def test_a_running_migration_has_at_least_half_a_second_left_and_counts_elapsed_ms():
    items = [{"vm": "r", "state": "migrating", "migration_id": "m1", "forecast_s": 10.0},
             {"vm": "o", "state": "migrating", "migration_id": "m2", "forecast_s": 2.0}]
    migrations = {"m1": {"figures": {"time_elapsed_ms": 4500}}, "m2": {"figures": {"time_elapsed_ms": 9000}}}
    lines = progress_view(_drain(items), "X", migrations)["running"]
    assert [line["eta_seconds"] for line in lines] == [5.5, 0.5]
    migrations = {"m1": {"figures": {"time_elapsed_ms": 0}}, "m2": {"figures": {"time_elapsed_ms": 1}}}
    lines = progress_view(_drain(items), "X", migrations)["running"]
    assert [line["eta_seconds"] for line in lines] == [10.0, 2.0]


def test_slots_are_the_smallest_outgoing_limit_and_one_when_unset():
    queued = [{"vm": v, "state": "queued", "forecast_s": 1.0} for v in "abc"]
    assert progress_view(_drain(queued), "X", {})["eta_seconds"] == 3.0
    two = [{**q, "outgoing_limit": 2 + i} for i, q in enumerate(queued)]
    assert progress_view(_drain(two), "X", {})["eta_seconds"] == 2.0
    assert progress_view(_drain([]), "X", {})["eta_seconds"] == 0.0


def test_queued_forecasts_are_scaled_by_the_calibration_before_the_eta():
    items = [{"vm": "a", "state": "done", "forecast_s": 2.0, "duration_s": 1.0},
             {"vm": "q", "state": "queued", "forecast_s": 0.8922}]
    # 0.8922 * 0.5 = 0.4461 -> 0.45 (to the hundredth) -> 0.5 s (to the tenth)
    assert progress_view(_drain(items), "X", {})["eta_seconds"] == 0.5
    items = [{"vm": "q", "state": "queued", "forecast_s": 2.5}]
    assert progress_view(_drain(items), "X", {})["eta_seconds"] == 2.5
    items = [{"vm": "q", "state": "queued", "forecast_s": None}]
    assert progress_view(_drain(items), "X", {})["eta_seconds"] is None


def test_a_running_line_scales_its_forecast_by_the_calibration():
    items = [{"vm": "a", "state": "done", "forecast_s": 2.0, "duration_s": 4.0},
             {"vm": "r", "state": "migrating", "migration_id": "m1", "forecast_s": 3.0}]
    view = progress_view(_drain(items), "X", {"m1": {"figures": {"time_elapsed_ms": 1000}}})
    assert view["running"][0]["eta_seconds"] == 5.0      # 3 s * 2 - 1 s elapsed


def test_a_migration_not_started_yet_shows_its_forecast_as_is_even_under_half_a_second():
    items = [{"vm": "r", "state": "migrating", "migration_id": "m1", "forecast_s": 0.3}]
    assert progress_view(_drain(items), "X", {"m1": {"figures": {}}})["running"][0]["eta_seconds"] == 0.3


def test_the_time_left_subtracts_the_elapsed_milliseconds_exactly():
    items = [{"vm": "r", "state": "migrating", "migration_id": "m1", "forecast_s": 2.35}]
    # 0 ms elapsed: 2.35 s left (2.4 to the tenth; 1 ms less would read 2.3)
    assert progress_view(_drain(items), "X", {"m1": {"figures": {"time_elapsed_ms": 0}}})["running"][0][
        "eta_seconds"] == 2.4
    items = [{"vm": "r", "state": "migrating", "migration_id": "m1", "forecast_s": 200.0}]
    assert progress_view(_drain(items), "X", {"m1": {"figures": {"time_elapsed_ms": 100000}}})["running"][0][
        "eta_seconds"] == 100.0


def test_a_finished_vm_without_a_byte_count_adds_nothing_to_the_bytes_done():
    items = [{"vm": "a", "state": "done"}, {"vm": "b", "state": "gone", "bytes": None}]
    assert progress_view(_drain(items), "X", {})["bytes_done"] == 0

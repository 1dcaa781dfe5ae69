"""The forecast model's wire forms and input checks, one rule per test (ferry.forecast.model).

A stored forecast is rerun from its `inputs` (from_wire(to_wire(x)) == x), so every field must
go out under its name and come back; a missing key means the model's default. Bad inputs are
refused with InvalidInput naming the field.
"""
import pytest

from ferry.common.errors import InvalidInput
from ferry.forecast.model import Forecast, ForecastInputs, Step

FULL = ForecastInputs(memory_mib=1024, touched_mib=512, dirty_rate_mibs=20, bandwidth_mibs=100,
                      bandwidth_source="measured", parallel=2, init_downtime_ms=150,
                      stalling=((1, "setDowntime", 200), (-1, "abort", None)), auto_converge=True,
                      throttle_initial_pct=30, throttle_increment_pct=15, fixed_cost_s=2.0, switchover_ms=5.0,
                      dirty_rate_low_mibs=10, dirty_rate_high_mibs=30, bandwidth_spread=0.2, postcopy_allowed=False,
                      max_seconds=60, dirty_pattern="random", check_chunk_s=0.1, switchover_syncs=2,
                      final_bandwidth_mibs=400, link_mibs=1000)
FULL_WIRE = {
    "memoryMiB": 1024, "touchedMiB": 512, "dirtyRateMiBs": 20, "dirtyRateRangeMiBs": {"low": 10, "high": 30},
    "bandwidthMiBs": 100, "bandwidthSource": "measured", "bandwidthSpread": 0.2, "parallel": 2,
    "initDowntimeMs": 150.0,
    "stalling": [{"limit": 1, "action": "setDowntime", "value": 200}, {"limit": -1, "action": "abort", "value": None}],
    "autoConverge": True, "throttleInitialPct": 30, "throttleIncrementPct": 15, "fixedCostSeconds": 2.0,
    "switchoverMs": 5.0, "postcopyAllowed": False, "maxSeconds": 60, "dirtyPattern": "random",
    "checkChunkSeconds": 0.1, "switchoverSyncs": 2, "finalBandwidthMiBs": 400, "linkMiBs": 1000,
}


def test_every_input_goes_on_the_wire_under_its_name():
    assert FULL.to_wire() == FULL_WIRE


def test_a_stored_forecasts_inputs_come_back_whole():
    assert ForecastInputs.from_wire(FULL_WIRE) == FULL


def test_a_key_missing_from_stored_inputs_means_the_models_default():
    assert ForecastInputs.from_wire({"memoryMiB": 64, "touchedMiB": 32, "dirtyRateMiBs": 1, "bandwidthMiBs": 10}) == \
        ForecastInputs(memory_mib=64, touched_mib=32, dirty_rate_mibs=1, bandwidth_mibs=10)


def test_a_step_goes_on_the_wire_to_the_thousandth():
    s = Step(3, 1.23456, 2.34567, 3.45678, 300, fires="setDowntime", throttle_pct=20, dirty_rate_mibs=4.56789)
    assert s.to_wire() == {"iteration": 3, "sendMiB": 1.235, "seconds": 2.346, "remainingMiB": 3.457,
                           "downtimeLimitMs": 300, "fires": "setDowntime", "throttlePct": 20, "dirtyRateMiBs": 4.568}


def test_a_forecast_goes_on_the_wire_to_the_thousandth_and_unknowns_stay_null():
    f = Forecast("converge", 1.23456, 2.34567, 4, 0.12345, 9.87654, FULL, downtime_low_ms=1.00049,
                 downtime_high_ms=None)
    w = f.to_wire()
    assert (w["totalSeconds"], w["downtimeMs"], w["range"], w["downtimeRangeMs"]) == (
        1.235, 2.346, {"low": 0.123, "high": 9.877}, {"low": 1.0, "high": None})
    none = Forecast("never", None, None, 0, None, None, FULL).to_wire()
    assert (none["totalSeconds"], none["downtimeMs"], none["range"]) == (None, None, {"low": None, "high": None})


def _refused(field, reason=None, **kw):
    base = dict(memory_mib=64, touched_mib=32, dirty_rate_mibs=1, bandwidth_mibs=10)
    with pytest.raises(InvalidInput) as e:
        ForecastInputs(**{**base, **kw})
    assert e.value.field == field
    if reason is not None:
        assert e.value.reason == reason


def test_input_errors_name_the_field_and_the_reason():
    _refused("dirty_pattern", "must be linear or random, got 'bursty'", dirty_pattern="bursty")
    _refused("touched_mib", "must be >= 0, got -1", touched_mib=-1)
    _refused("touched_mib", "must be a number, got 'x'", touched_mib="x")
    _refused("memory_mib", "must be > 0, got 0", memory_mib=0)
    _refused("touched_mib", "cannot exceed memory_mib (64), got 65", touched_mib=65)
    _refused("max_seconds", "must be > 0, got 0", max_seconds=0)
    _refused("dirty_rate_low_mibs", "must be >= 0, got -1", dirty_rate_low_mibs=-1)


def test_no_touched_memory_a_zero_low_rate_and_zero_costs_are_valid_inputs():
    ok = ForecastInputs(memory_mib=64, touched_mib=0, dirty_rate_mibs=0, bandwidth_mibs=10, dirty_rate_low_mibs=0,
                        dirty_rate_high_mibs=0, fixed_cost_s=0, switchover_ms=0)
    assert ok.touched_mib == 0 and ok.dirty_low == 0


def test_stalling_items_must_be_triples_with_a_limit_of_minus_one_or_more():
    _refused("stalling[0]", "must be (limit, action, value), got [1, 'abort', None]", stalling=([1, "abort", None],))
    _refused("stalling[0]", stalling=((1, "abort"),))
    _refused("stalling[0].limit", "must be an integer >= -1, got -2", stalling=((-2, "abort", None),))
    _refused("stalling[0].limit", "must be an integer >= -1, got True", stalling=((True, "abort", None),))
    _refused("stalling[1].action", "must be one of setDowntime, abort, postcopy, got 'pause'",
             stalling=((1, "abort", None), (2, "pause", None)))
    _refused("stalling[0].value", "only setDowntime takes a value, got 5", stalling=((1, "abort", 5),))
    assert ForecastInputs(memory_mib=64, touched_mib=32, dirty_rate_mibs=1, bandwidth_mibs=10,
                          stalling=((-1, "postcopy", None),)).stalling == ((-1, "postcopy", None),)


def test_the_dirty_rate_range_may_touch_the_central_rate_but_not_cross_it():
    ok = ForecastInputs(memory_mib=64, touched_mib=32, dirty_rate_mibs=5, bandwidth_mibs=10, dirty_rate_low_mibs=5,
                        dirty_rate_high_mibs=5)
    assert (ok.dirty_low, ok.dirty_high) == (5, 5)
    _refused("dirty_rate_low_mibs", "must not exceed dirty_rate_mibs", dirty_rate_low_mibs=1.5)
    _refused("dirty_rate_high_mibs", "must not be below dirty_rate_mibs", dirty_rate_high_mibs=0.5)


def test_the_bandwidth_spread_is_in_0_to_1_excluded():
    _refused("bandwidth_spread", "must be in [0, 1), got 1", bandwidth_spread=1)
    _refused("bandwidth_spread", "must be in [0, 1), got 1.5", bandwidth_spread=1.5)
    _refused("bandwidth_spread", "must be in [0, 1), got -0.1", bandwidth_spread=-0.1)


def test_costs_syncs_parallel_downtime_and_throttle_are_checked_by_name():
    _refused("fixed_cost_s", "must be >= 0, got -1", fixed_cost_s=-1)
    _refused("switchover_ms", "must be >= 0, got -1", switchover_ms=-1)
    _refused("check_chunk_s", "must be > 0, got 0", check_chunk_s=0)
    _refused("link_mibs", "must be > 0, got 0", link_mibs=0)
    _refused("switchover_syncs", "must be 0, 1 or 2, got 3", switchover_syncs=3)
    _refused("switchover_syncs", "must be 0, 1 or 2, got True", switchover_syncs=True)
    _refused("parallel", "must be an integer >= 0 (0 = one connection), got True", parallel=True)
    _refused("parallel", "must be an integer >= 0 (0 = one connection), got -1", parallel=-1)
    _refused("init_downtime_ms", "must be > 0, got 0", init_downtime_ms=0)
    _refused("throttle_initial_pct", "must be an integer 1..99, got True", throttle_initial_pct=True)
    _refused("throttle_increment_pct", "must be an integer 1..99, got 0", throttle_increment_pct=0)
    _refused("throttle_increment_pct", "must be an integer 1..99, got 100", throttle_increment_pct=100)
    ok = ForecastInputs(memory_mib=64, touched_mib=32, dirty_rate_mibs=1, bandwidth_mibs=10, switchover_syncs=1,
                        throttle_initial_pct=1, throttle_increment_pct=99, max_seconds=0.5, dirty_rate_high_mibs=1)
    assert (ok.switchover_syncs, ok.throttle_initial_pct, ok.throttle_increment_pct) == (1, 1, 99)


def test_the_max_seconds_bound_must_be_positive_and_the_rate_bounds_may_be_zero():
    _refused("max_seconds", "must be > 0, got -1", max_seconds=-1)
    _refused("max_seconds", "must be a number, got 'x'", max_seconds="x")
    _refused("dirty_rate_high_mibs", "must be >= 0, got -1", dirty_rate_high_mibs=-1)
    ok = ForecastInputs(memory_mib=64, touched_mib=32, dirty_rate_mibs=0, bandwidth_mibs=10, dirty_rate_low_mibs=0,
                        dirty_rate_high_mibs=0)
    assert ok.dirty_high == 0

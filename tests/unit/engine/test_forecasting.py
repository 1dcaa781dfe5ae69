"""ferry.engine.forecasting: a plan and measured figures -> the forecast model's inputs.

Each input the issue names (schedule, cap, parallel, auto-converge, memory, touched memory,
dirty rate, the pair's measured bandwidth, link speed) is checked to reach the model, and the
end-to-end cases are hand-computed."""
from __future__ import annotations

from dataclasses import replace

import pytest

from ferry.common.errors import InvalidInput
from ferry.engine import forecasting as fx
from ferry.engine.scenario import parse_scenario
from ferry.forecast import ABORT, CONVERGE, SET_DOWNTIME, bias


def plan(policy="Minimal downtime", bandwidth="CUSTOM:800", parallel="DISABLED", links=(None, None), **vm):
    src = {"name": "h1", "link_speed_mbps": links[0]}
    dst = {"name": "h2", "link_speed_mbps": links[1]}
    return parse_scenario({"cluster": {"policy": policy, "bandwidth": bandwidth, "parallel": parallel},
                           "vm": {"vcpus": 4, **vm}, "source": src, "destination": dst}).plan()


def test_schedule_of_minimal_downtime_reaches_the_model_as_the_agent_runs_it():
    init, items = fx.schedule_items(plan().params.effective_schedule())
    assert init == 100.0
    assert items == ((1, SET_DOWNTIME, 150), (2, SET_DOWNTIME, 200), (3, SET_DOWNTIME, 300),
                     (4, SET_DOWNTIME, 400), (6, SET_DOWNTIME, 500), (-1, ABORT, None))


def test_legacy_sends_no_schedule_so_the_agents_legacy_steps_are_forecast():
    inp = fx.forecast_inputs(plan("Legacy"), fx.Measured(memory_mib=1024))
    assert inp.init_downtime_ms == 101.0
    assert inp.stalling[-1] == (-1, ABORT, None) and inp.stalling[-2] == (42, SET_DOWNTIME, 500)


def test_the_plans_cap_is_the_bandwidth_when_nothing_lower_is_known():
    inp = fx.forecast_inputs(plan(bandwidth="CUSTOM:800"), fx.Measured(memory_mib=1024))
    assert (inp.bandwidth_mibs, inp.bandwidth_source) == (50.0, "cap")   # 800 Mbps / 8 / 2 migrations


def test_a_lower_measured_figure_wins_over_the_cap_and_brings_its_spread():
    m = fx.Measured(memory_mib=1024, measured_bandwidth_mibs=30.0, bandwidth_spread=0.2)
    inp = fx.forecast_inputs(plan(bandwidth="CUSTOM:800"), m)
    assert (inp.bandwidth_mibs, inp.bandwidth_source, inp.bandwidth_spread) == (30.0, "measured", 0.2)


def test_the_spread_of_a_measured_figure_is_not_used_when_the_cap_wins():
    m = fx.Measured(memory_mib=1024, measured_bandwidth_mibs=500.0, bandwidth_spread=0.4)
    inp = fx.forecast_inputs(plan(bandwidth="CUSTOM:800"), m)
    assert inp.bandwidth_source == "cap" and inp.bandwidth_spread == 0.10


def test_a_slow_link_wins_over_a_higher_cap():
    m = fx.Measured(memory_mib=1024, link_mibs=fx.link_mibs(100, 1000))
    inp = fx.forecast_inputs(plan(bandwidth="CUSTOM:80000"), m)
    assert inp.bandwidth_source == "link" and inp.bandwidth_mibs == pytest.approx(11.92, abs=0.01)


def test_no_cap_and_nothing_measured_is_an_error_naming_bandwidth():
    p = plan()
    unlimited = replace(p, params=replace(p.params, max_bandwidth=0))
    with pytest.raises(InvalidInput) as err:
        fx.forecast_inputs(unlimited, fx.Measured(memory_mib=1024))
    assert err.value.field == "bandwidth"


def test_cap_not_sent_means_the_agents_default_52():
    p = plan()
    default = replace(p, params=replace(p.params, max_bandwidth=None))
    assert fx.forecast_inputs(default, fx.Measured(memory_mib=1024)).bandwidth_mibs == 52.0


def test_parallel_connections_and_no_postcopy_with_them():
    inp = fx.forecast_inputs(plan("Post-copy migration", parallel="CUSTOM:4"), fx.Measured(memory_mib=1024))
    assert inp.parallel == 4 and inp.postcopy_allowed is False
    assert all(action != "postcopy" for _l, action, _v in inp.stalling)   # the planner dropped it
    plain = fx.forecast_inputs(plan("Post-copy migration"), fx.Measured(memory_mib=1024))
    assert plain.parallel == 0 and plain.postcopy_allowed is True
    assert (-1, "postcopy", None) in plain.stalling


def test_auto_converge_follows_the_plan():
    assert fx.forecast_inputs(plan("Minimal downtime"), fx.Measured(memory_mib=64)).auto_converge is True
    assert fx.forecast_inputs(plan("Legacy"), fx.Measured(memory_mib=64)).auto_converge is False


def test_touched_memory_defaults_to_all_of_it_and_is_capped_at_it():
    assert fx.forecast_inputs(plan(), fx.Measured(memory_mib=512)).touched_mib == 512
    assert fx.forecast_inputs(plan(), fx.Measured(memory_mib=512, touched_mib=700)).touched_mib == 512
    assert fx.forecast_inputs(plan(), fx.Measured(memory_mib=512, touched_mib=200)).touched_mib == 200


def test_idle_guest_takes_touched_over_bandwidth_plus_the_fixed_cost():
    fc = fx.plan_forecast(plan(bandwidth="CUSTOM:800"), fx.Measured(memory_mib=1024, touched_mib=500))
    assert fc.outcome == CONVERGE and fc.total_seconds == pytest.approx(500 / 50 + 1.5)


def test_dirty_rate_above_bandwidth_aborts_at_minimal_downtimes_abort_step():
    m = fx.Measured(memory_mib=1024, touched_mib=1000, dirty_rate_mibs=60)
    fc = fx.plan_forecast(plan(bandwidth="CUSTOM:800"), m)
    assert fc.outcome == ABORT and fc.steps[-1].fires == "abort"
    # one item per iteration: 150@2, 200@3, 300@4, 400@5, 500@7, abort@8 (throttle slows but
    # the throttled rate stays above nothing the 500 ms limit can hold)
    assert fc.steps[-1].iteration == 8


def test_forecast_wire_carries_the_reason_and_where_the_figures_came_from():
    m = fx.Measured(memory_mib=64, dirty_reason="page sampling", bandwidth_samples=3)
    wire = fx.forecast_wire(fx.plan_forecast(plan(), m), m)
    assert set(wire) >= {"outcome", "totalSeconds", "downtimeMs", "iterations", "range", "inputs", "steps", "reason"}
    assert wire["inputs"]["dirtyRateReason"] == "page sampling" and wire["inputs"]["bandwidthSamples"] == 3


def test_measured_from_an_agents_answer_uses_its_corrected_estimate():
    answer = {"vmID": "u", "seconds": 2, "mode": "page-sampling", "dirtyRateMiBs": 40.0,
              "estimate": {"measuredMiBs": 40.0, "estimateMiBs": 44.0, "lowMiBs": 34.5, "highMiBs": 56.3,
                           "reason": "why"},
              "memoryMiB": 512.0, "touchedMiB": 390.5, "touchedSource": "qemu-vmrss"}
    m = fx.measured_from_dirty_rate(answer, memory_mib=999, link_mibs=100.0)
    assert (m.memory_mib, m.touched_mib, m.dirty_rate_mibs, m.dirty_rate_low_mibs, m.dirty_rate_high_mibs) == (
        512.0, 390.5, 44.0, 34.5, 56.3)
    assert m.dirty_reason == "why" and m.link_mibs == 100.0


def test_an_answer_without_estimate_is_corrected_here_from_mode_and_window():
    m = fx.measured_from_dirty_rate({"seconds": 4, "mode": "page-sampling", "dirtyRateMiBs": 40.0},
                                    memory_mib=512)
    want = bias.correct(40.0, bias.PAGE_SAMPLING, 4)
    assert m.dirty_rate_mibs == pytest.approx(want.estimate) and m.memory_mib == 512 and m.touched_mib is None


def test_a_malformed_answer_names_the_field():
    with pytest.raises(InvalidInput) as err:
        fx.measured_from_dirty_rate({"estimate": {"estimateMiBs": "fast", "lowMiBs": 1, "highMiBs": 2}},
                                    memory_mib=512)
    assert err.value.field == "estimate.estimateMiBs"


def test_link_mibs_needs_both_hosts():
    assert fx.link_mibs(10000, None) is None and fx.link_mibs(None, None) is None
    assert fx.link_mibs(10000, 25000) == pytest.approx(1192.09, abs=0.01)


def row(mibs=400.0, connections=0, cap=10000):
    """A pair_throughput row as ThroughputRepository.list gives it."""
    return {"source": "h1", "destination": "h2", "connections": connections, "capMiBs": cap, "mibs": mibs}


def test_pair_samples_keep_only_what_says_what_the_pair_reaches():
    rows = [row(mibs=400), row(mibs=420),
            row(connections=4, mibs=1200),                    # another connection count
            row(mibs=39.5, cap=40),                           # ran at its own cap
            row(mibs=0)]
    assert fx.pair_samples(rows, parallel=None) == [400.0, 420.0]
    assert fx.pair_samples(rows, parallel=4) == [1200.0]
    assert fx.pair_samples([row(mibs=50, cap=None)], parallel=None) == [50.0]   # uncapped


def test_a_migration_gives_the_pair_table_its_throughput_cap_and_connections():
    plan = {"params": {"maxBandwidth": 40, "parallel": 4}}
    assert fx.throughput_sample(plan, {"throughput_mibps": 38.2, "parallel_connections": 4}) == {
        "connections": 4, "cap_mibs": 40, "mibs": 38.2}
    assert fx.throughput_sample({"params": {"maxBandwidth": 0}}, {"throughput_mibps": 900}) == {
        "connections": 0, "cap_mibs": None, "mibs": 900.0}
    assert fx.throughput_sample(plan, {"throughput_mibps": None}) is None
    assert fx.throughput_sample(plan, {"throughput_mibps": 0}) is None


def test_a_sample_without_a_cap_sent_is_judged_against_the_agents_default():
    sample = fx.throughput_sample({"params": {}}, {"throughput_mibps": 50})
    assert sample["cap_mibs"] == 52            # the agent's default when none is sent
    assert fx.pair_samples([{**sample, "capMiBs": sample["cap_mibs"]}], parallel=None) == []


def test_a_kept_measurement_serves_only_while_fresh():
    kept = {"dirtyRateMiBs": 25.0, "touchedMiB": 400.0, "dirtyPattern": "random", "at": 1000.0}
    assert fx.fresh_premigration(kept, 1000.0 + fx.MEASURED_MAX_AGE_S) == kept
    assert fx.fresh_premigration(kept, 1000.0 + fx.MEASURED_MAX_AGE_S + 1) is None
    assert fx.fresh_premigration(kept, 999.0) is None            # from the future: a clock jump
    assert fx.fresh_premigration({"dirtyRateMiBs": 1}, 1000.0) is None
    assert fx.fresh_premigration(None, 1000.0) is None


def test_calibration_is_the_robust_median():
    assert fx.calibration([400.0, 420.0, 410.0]) == (410.0, pytest.approx(10 / 410))
    assert fx.calibration([]) == (None, None)


def test_the_pair_sample_is_qemus_transfer_rate_and_partial_figures_give_none():
    plan_ = {"params": {"maxBandwidth": 0}}
    full = {"throughput_mibps": 228.5, "transfer_mibps": 278.0, "figures_complete": True}
    assert fx.throughput_sample(plan_, full)["mibs"] == 278.0
    assert fx.throughput_sample(plan_, {**full, "figures_complete": False}) is None
    older = {"throughput_mibps": 228.5}    # a result recorded before these keys: bytes / time
    assert fx.throughput_sample(plan_, older)["mibs"] == 228.5


def test_legacy_is_forecast_with_the_agents_max_time_per_gib():
    """No schedule sent: the agent aborts after Vdsm's 64 s/GiB, (64 x 512 + 1023) // 1024 = 32 s
    for 512 MiB; a schedule's own abort is the limit otherwise; maxTimePerGiB in the call wins."""
    p = plan("Legacy")
    assert fx.forecast_inputs(p, fx.Measured(memory_mib=512)).max_seconds == 32.0
    assert fx.forecast_inputs(p, fx.Measured(memory_mib=1000)).max_seconds == 63.0   # 62.5 rounded up
    assert fx.forecast_inputs(plan(), fx.Measured(memory_mib=512)).max_seconds is None
    given = replace(p, params=replace(p.params, max_time_per_gib=10))
    assert fx.time_limit_s(given.params, 2048) == 20.0
    assert fx.time_limit_s(replace(p.params, max_time_per_gib=0), 2048) is None


def test_a_legacy_guest_that_cannot_finish_in_time_is_forecast_to_abort_at_the_limit():
    """512 MiB, touched 404, r = 24 at a 30 MiB/s cap (the lab's case): the passes shrink too
    slowly to end within 32 s; the agent aborts at 32 s, + 0.15 s before QEMU's clock."""
    p = plan("Legacy", bandwidth="CUSTOM:480")   # 480 Mbps / 8 / 2 migrations = 30 MiB/s
    m = fx.Measured(memory_mib=512, touched_mib=404, dirty_rate_mibs=24)
    f = fx.plan_forecast(p, m)
    assert f.outcome == ABORT and f.total_seconds == pytest.approx(32.15)


def test_the_final_floor_sets_only_the_final_copys_speed():
    """A parallel plan at a 100 MiB/s cap with the pair's one-connection 270 MiB/s: the passes
    run at the cap, the final copy at 270 (under the 10 Gbit/s link, 1192 MiB/s); without it the
    final copy is forecast at the cap."""
    p = plan(bandwidth="CUSTOM:1600", parallel="CUSTOM:4")
    inp = fx.forecast_inputs(p, fx.Measured(memory_mib=1024, final_floor_mibs=270.0, link_mibs=1192.0))
    assert (inp.bandwidth_mibs, inp.bandwidth_source, inp.final_bandwidth_mibs) == (100.0, "cap", 270.0)
    assert inp.link_mibs == 1192.0      # the downtime range's low: the left-over at the link's speed
    assert fx.forecast_inputs(p, fx.Measured(memory_mib=1024)).final_bandwidth_mibs is None

"""The pre-copy model pinned on hand-computed cases (issue 14 item 6) and on its properties."""
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferry.common.errors import InvalidInput
from ferry.forecast import ABORT, CONVERGE, POSTCOPY, ForecastInputs, forecast
from ferry.forecast.model import simulate

# oVirt's "Minimal downtime" schedule in the neutral form (limit, action, value)
MINIMAL_DOWNTIME = ((1, "setDowntime", 150), (2, "setDowntime", 200), (3, "setDowntime", 300),
                    (4, "setDowntime", 400), (6, "setDowntime", 500), (-1, "abort", None))


def inputs(**kw):
    base = {"memory_mib": 1024, "touched_mib": 800, "dirty_rate_mibs": 0, "bandwidth_mibs": 100}
    return ForecastInputs(**{**base, **kw})


def test_idle_guest_takes_touched_over_bandwidth_plus_fixed_cost():
    f = forecast(inputs())
    assert f.outcome == CONVERGE
    assert f.total_seconds == pytest.approx(800 / 100 + 1.5)
    assert f.iterations == 1 and f.downtime_ms == 0
    assert forecast(inputs(fixed_cost_s=0.25)).total_seconds == pytest.approx(8.25)


def test_dirty_rate_above_bandwidth_without_auto_converge_aborts_at_the_schedules_abort_step():
    """touched 320 MiB, r = 50 > B = 40 MiB/s: every iteration resends all 320 MiB in 8 s.
    Items fire at n = 2 (150), 3 (200), 4 (300), 5 (400), 7 (500: limit 6 < 7), abort at n = 8:
    8 iterations of 8 s = 64 s, + the part of the 1.5 s fixed cost before QEMU's clock (0.1 of
    it: an abort is a cancel, with no confirm step) = 64.15 s."""
    f = forecast(inputs(memory_mib=512, touched_mib=320, dirty_rate_mibs=50, bandwidth_mibs=40,
                        init_downtime_ms=100, stalling=MINIMAL_DOWNTIME))
    assert f.outcome == ABORT
    assert f.total_seconds == pytest.approx(64.15)
    assert f.iterations == 8 and f.downtime_ms is None
    fired = {s.iteration: s.fires for s in f.steps if s.fires}
    assert fired == {2: "setDowntime(150)", 3: "setDowntime(200)", 4: "setDowntime(300)",
                     5: "setDowntime(400)", 7: "setDowntime(500)", 8: "abort"}
    assert [s.downtime_limit_ms for s in f.steps] == [100, 100, 150, 200, 300, 400, 400, 500, 500]


def test_iteration_by_iteration_against_a_hand_calculation():
    """touched 1000 MiB, r = 20 MiB/s, B = 100 MiB/s, init 300 ms, stalling (0 -> setDowntime 50):
    it 0: send 1000 in 10 s, left 200 (30 MiB fits 300 ms: no);
    it 1: setDowntime(50) fires (limit 0 < 1): threshold 5 MiB; send 200 in 2 s, left 40;
    it 2: send 40 in 0.4 s, left 8 > 5;
    it 3: send 8 in 0.08 s, left 1.6 <= 5: converge, downtime 1.6 / 100 = 16 ms;
    total 10 + 2 + 0.4 + 0.08 + 0.016 + 1.5 = 13.996 s."""
    f = forecast(inputs(memory_mib=2048, touched_mib=1000, dirty_rate_mibs=20, init_downtime_ms=300,
                        stalling=((0, "setDowntime", 50),)))
    got = [(s.iteration, s.send_mib, s.seconds, s.remaining_mib, s.downtime_limit_ms, s.fires) for s in f.steps]
    want = [(0, 1000, 10, 200, 300, None), (1, 200, 2, 40, 50, "setDowntime(50)"),
            (2, 40, 0.4, 8, 50, None), (3, 8, 0.08, 1.6, 50, None)]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g[0] == w[0] and g[5] == w[5] and g[4] == w[4]
        assert g[1:4] == pytest.approx(w[1:4])
    assert f.outcome == CONVERGE and f.iterations == 4
    assert f.downtime_ms == pytest.approx(16)
    assert f.total_seconds == pytest.approx(13.996)


def test_without_a_schedule_qemus_300_ms_default_limit_applies():
    # left after it 0 = 20 * 10 = 200; it 1: 2 s, left 40 > 30; it 2: 0.4 s, left 8 <= 30
    f = forecast(inputs(touched_mib=1000, dirty_rate_mibs=20))
    assert [s.downtime_limit_ms for s in f.steps] == [300, 300, 300]
    assert f.downtime_ms == pytest.approx(80)


def test_postcopy_last_item_gives_outcome_postcopy():
    """touched 320, r = 50 > B = 40: 150 ms fires at n = 2, postcopy at n = 3 after 3 x 8 s;
    post-copy then pulls the 320 MiB left once: 8 s; total 24 + 8 + 1.5 = 33.5 s."""
    sched = ((1, "setDowntime", 150), (-1, "postcopy", None), (-1, "abort", None))
    f = forecast(inputs(memory_mib=512, touched_mib=320, dirty_rate_mibs=50, bandwidth_mibs=40, stalling=sched))
    assert f.outcome == POSTCOPY
    assert f.total_seconds == pytest.approx(33.5)
    assert f.steps[-1].fires == "postcopy" and f.steps[-1].iteration == 3


def test_postcopy_not_allowed_is_skipped_and_the_next_item_aborts():
    sched = ((1, "setDowntime", 150), (-1, "postcopy", None), (-1, "abort", None))
    f = forecast(inputs(memory_mib=512, touched_mib=320, dirty_rate_mibs=50, bandwidth_mibs=40, stalling=sched,
                        postcopy_allowed=False, parallel=4))
    assert f.outcome == ABORT
    assert f.total_seconds == pytest.approx(4 * 8 + 0.15)
    assert "skipped" in f.steps[3].fires


def test_auto_converge_turns_a_non_converging_case_into_a_converging_one():
    base = {"memory_mib": 1024, "touched_mib": 400, "dirty_rate_mibs": 60, "bandwidth_mibs": 50}
    without = forecast(inputs(**base))
    assert without.outcome == ABORT and without.total_seconds is None   # nothing ever stops it
    assert "never converges" in without.reason
    with_ac = forecast(inputs(**base, auto_converge=True))
    assert with_ac.outcome == CONVERGE
    throttles = [s.throttle_pct for s in with_ac.steps]
    # QEMU: every second iteration dirtying > 50% of what it sent: 20%, then +10% each time
    assert throttles[:2] == [0, 0] and throttles[2] == 20
    assert sorted(set(throttles)) == [0] + list(range(20, max(throttles) + 1, 10))
    for s in with_ac.steps:
        assert s.dirty_rate_mibs == pytest.approx(60 * (1 - s.throttle_pct / 100))


def test_throttle_initial_and_increment_are_inputs():
    base = {"memory_mib": 1024, "touched_mib": 400, "dirty_rate_mibs": 60, "bandwidth_mibs": 50,
            "auto_converge": True}
    fast = forecast(inputs(**base, throttle_initial_pct=50, throttle_increment_pct=25))
    slow = forecast(inputs(**base))
    assert fast.steps[2].throttle_pct == 50
    assert fast.total_seconds < slow.total_seconds


def test_time_limit_aborts():
    f = forecast(inputs(touched_mib=400, dirty_rate_mibs=60, bandwidth_mibs=50, max_seconds=30))
    assert f.outcome == ABORT and "time limit" in f.reason
    # passes of 8 s: the agent aborts at 30 s, 6 s into the fourth, + the 0.15 s before QEMU
    assert f.total_seconds == pytest.approx(30 + 0.15)
    assert f.steps[-1].fires == "abort (time limit)" and f.steps[-1].seconds == pytest.approx(6)


def test_closed_form_of_the_geometric_series_matches_while_nothing_is_capped():
    """peers.md: T = (M/B)(1 - rho^(n+1)) / (1 - rho), rho = r/B, for iterations 0..n."""
    m, b, r = 2000.0, 100.0, 40.0
    run = simulate(inputs(memory_mib=4096, touched_mib=m, dirty_rate_mibs=r, bandwidth_mibs=b,
                          init_downtime_ms=10), r, b)
    n = run.steps[-1].iteration
    rho = r / b
    closed = (m / b) * (1 - rho ** (n + 1)) / (1 - rho)
    assert sum(s.seconds for s in run.steps) == pytest.approx(closed)
    assert run.seconds == pytest.approx(closed + run.steps[-1].remaining_mib / b)


def test_range_holds_the_central_figure_and_widens_with_the_dirty_rate_bounds():
    narrow = forecast(inputs(touched_mib=1000, dirty_rate_mibs=40))
    wide = forecast(inputs(touched_mib=1000, dirty_rate_mibs=40, dirty_rate_low_mibs=20, dirty_rate_high_mibs=60))
    for f in (narrow, wide):
        assert f.low <= f.total_seconds <= f.high
    assert wide.low < narrow.low and wide.high > narrow.high
    exact = forecast(inputs(touched_mib=1000, dirty_rate_mibs=40, bandwidth_spread=0))
    assert exact.low == exact.high == exact.total_seconds


def test_range_high_is_open_when_the_worst_case_never_ends():
    f = forecast(inputs(touched_mib=400, dirty_rate_mibs=45, dirty_rate_high_mibs=70, bandwidth_mibs=50))
    assert f.outcome == CONVERGE and f.high is None and f.low <= f.total_seconds


def test_to_wire_is_the_issue_14_object():
    f = forecast(inputs(touched_mib=1000, dirty_rate_mibs=20, stalling=MINIMAL_DOWNTIME))
    wire = f.to_wire()
    assert set(wire) == {"outcome", "totalSeconds", "downtimeMs", "downtimeRangeMs", "iterations", "range",
                         "inputs", "steps"}
    assert set(wire["range"]) == {"low", "high"}
    assert wire["outcome"] == "converge" and wire["iterations"] == len(wire["steps"])
    assert wire["inputs"]["touchedMiB"] == 1000 and wire["inputs"]["stalling"][0] == {
        "limit": 1, "action": "setDowntime", "value": 150}
    assert wire["steps"][0]["sendMiB"] == 1000


@pytest.mark.parametrize(("field", "kw"), [
    ("memory_mib", {"memory_mib": 0}),
    ("touched_mib", {"touched_mib": 2000}),
    ("dirty_rate_mibs", {"dirty_rate_mibs": -1}),
    ("bandwidth_mibs", {"bandwidth_mibs": "fast"}),
    ("parallel", {"parallel": -2}),
    ("stalling[0].action", {"stalling": ((1, "pause", None),)}),
    ("stalling[0].value", {"stalling": ((1, "setDowntime", 0),)}),
    ("stalling[0].limit", {"stalling": ((-5, "abort", None),)}),
    ("dirty_rate_high_mibs", {"dirty_rate_mibs": 10, "dirty_rate_high_mibs": 5}),
    ("throttle_initial_pct", {"throttle_initial_pct": 0}),
])
def test_bad_inputs_name_the_field(field, kw):
    with pytest.raises(InvalidInput) as err:
        inputs(**kw)
    assert err.value.field == field


sizes = st.floats(min_value=16, max_value=65536)
rates = st.floats(min_value=0, max_value=2000)
bws = st.floats(min_value=10, max_value=5000)


@settings(max_examples=200, deadline=None)
@given(sizes, st.floats(min_value=1.01, max_value=4), rates, bws, st.booleans())
def test_total_time_grows_with_touched_memory(touched, factor, rate, bw, ac):
    small = forecast(ForecastInputs(memory_mib=touched * 4, touched_mib=touched, dirty_rate_mibs=rate,
                                    bandwidth_mibs=bw, stalling=MINIMAL_DOWNTIME, auto_converge=ac))
    big = forecast(ForecastInputs(memory_mib=touched * 4, touched_mib=touched * factor, dirty_rate_mibs=rate,
                                  bandwidth_mibs=bw, stalling=MINIMAL_DOWNTIME, auto_converge=ac))
    if small.outcome == big.outcome == CONVERGE and rate == 0:
        assert big.total_seconds > small.total_seconds
    if small.outcome == big.outcome == ABORT and rate >= bw and not ac:
        assert big.total_seconds > small.total_seconds


@settings(max_examples=200, deadline=None)
@given(sizes, rates, bws, st.floats(min_value=1.01, max_value=4))
def test_total_time_falls_with_bandwidth_for_an_idle_guest(touched, rate, bw, factor):
    slow = forecast(ForecastInputs(memory_mib=touched, touched_mib=touched, dirty_rate_mibs=0, bandwidth_mibs=bw))
    fast = forecast(ForecastInputs(memory_mib=touched, touched_mib=touched, dirty_rate_mibs=0,
                                   bandwidth_mibs=bw * factor))
    assert fast.total_seconds < slow.total_seconds


@settings(max_examples=300, deadline=None)
@given(sizes, st.floats(min_value=1.0, max_value=5.0), bws, st.integers(min_value=1, max_value=200))
def test_never_converges_when_dirty_rate_at_or_above_bandwidth_without_throttling_and_small_downtimes(
        touched, ratio, bw, downtime_ms):
    # the limits stay below what a full resend needs: touched / bw seconds
    cap_ms = max(1, min(downtime_ms, int(1000 * touched / bw * 0.99)))
    sched = ((1, "setDowntime", cap_ms), (3, "setDowntime", cap_ms), (-1, "abort", None))
    f = forecast(ForecastInputs(memory_mib=touched, touched_mib=touched, dirty_rate_mibs=bw * ratio,
                                bandwidth_mibs=bw, init_downtime_ms=cap_ms, stalling=sched))
    assert f.outcome != CONVERGE


@settings(max_examples=300, deadline=None)
@given(sizes, rates, bws, st.booleans(), st.sampled_from([(), MINIMAL_DOWNTIME,
                                                           ((1, "postcopy", None), (-1, "abort", None))]))
def test_every_forecast_is_well_formed(touched, rate, bw, ac, sched):
    f = forecast(ForecastInputs(memory_mib=touched, touched_mib=touched, dirty_rate_mibs=rate, bandwidth_mibs=bw,
                                auto_converge=ac, stalling=sched))
    assert f.outcome in (CONVERGE, ABORT, POSTCOPY)
    assert all(s.send_mib <= touched + 1e-9 for s in f.steps)   # never more than the touched memory
    if f.total_seconds is not None:
        assert f.total_seconds >= touched / bw + 1.5 - 1e-9 or f.outcome == ABORT
        assert f.low is not None and f.low <= f.total_seconds
        assert f.high is None or f.total_seconds <= f.high
    if f.outcome == CONVERGE:
        assert f.downtime_ms <= f.steps[-1].downtime_limit_ms + 1e-9
    assert not math.isnan(f.iterations)


def test_random_writer_dirties_distinct_pages_only():
    """touched 320 MiB, random writes at 32 MiB/s, B = 40: iteration 0 takes 8 s and writes 256 MiB,
    which leave 320 (1 - e^-0.8) = 176.22 MiB distinct pages dirty (linear: 256)."""
    kw = {"memory_mib": 512, "touched_mib": 320, "dirty_rate_mibs": 32, "bandwidth_mibs": 40}
    rnd = forecast(ForecastInputs(**kw, dirty_pattern="random"))
    lin = forecast(ForecastInputs(**kw))
    assert rnd.steps[0].remaining_mib == pytest.approx(320 * (1 - math.exp(-0.8)))
    assert lin.steps[0].remaining_mib == pytest.approx(256)
    assert rnd.steps[1].seconds == pytest.approx(rnd.steps[0].remaining_mib / 40)
    assert rnd.total_seconds < lin.total_seconds
    with pytest.raises(InvalidInput):
        ForecastInputs(**kw, dirty_pattern="bursty")


# ---- QEMU's convergence check within a pass, the switch-over's own iterations, the final copy ----

def _inp(**kw):
    from ferry.forecast.model import ForecastInputs
    base = dict(memory_mib=1024, touched_mib=400, dirty_rate_mibs=0.0, bandwidth_mibs=40.0, init_downtime_ms=500)
    return ForecastInputs(**{**base, **kw})


def test_in_pass_check_an_idle_guest_switches_over_with_what_the_limit_holds():
    from ferry.forecast.model import forecast
    # T = 40 MiB/s * 0.5 s = 20 MiB; the check comes every 0.1 s * 40 = 4 MiB, on average 2 MiB
    # under T: 18 MiB are left for the final copy, so 382 MiB go live and downtime is 18/40 s
    fc = forecast(_inp(check_chunk_s=0.1))
    assert fc.steps[0].seconds == pytest.approx(382 / 40)
    assert fc.downtime_ms == pytest.approx(450.0) and fc.total_seconds == pytest.approx(400 / 40 + 1.5)


def test_in_pass_check_a_dirtying_guest_converges_only_when_a_pass_dirties_less_than_half_a_chunk():
    from ferry.forecast.model import forecast
    # linear writer, 8 MiB/s at 40 MiB/s (ratio 0.2): what is pending above the 18 MiB left at a
    # check shrinks 5x per pass: 382 -> 76.4 -> 15.28 -> 3.056 -> 0.611 MiB dirtied; converges at
    # the first pass dirtying <= 2 MiB (the half chunk), pass 4 (18 + 0.611 <= 20)
    fc = forecast(_inp(check_chunk_s=0.1, dirty_rate_mibs=8.0))
    assert [round(s.remaining_mib - 18, 3) for s in fc.steps] == [76.4, 15.28, 3.056, 0.611]
    assert fc.outcome == "converge" and fc.iterations == 4
    # the first model (check at the pass's end) converges as soon as a pass dirties <= 20 MiB
    assert forecast(_inp(dirty_rate_mibs=8.0)).iterations == 2


def test_an_abort_due_on_the_switchovers_own_iterations_cancels_it():
    from ferry.forecast.model import ABORT, CONVERGE, forecast
    # idle: converges after iteration 0; the agent then sees iterations 1 and 2 (the converging
    # check's bitmap sync, the completion's); an abort item with limit -1 fires on iteration 1
    doomed = _inp(check_chunk_s=0.1, switchover_syncs=2, stalling=((-1, "abort", None),))
    fc = forecast(doomed)
    assert fc.outcome == ABORT and "switch-over" in fc.reason
    later = _inp(check_chunk_s=0.1, switchover_syncs=2, stalling=((2, "abort", None),))   # fires on 3
    assert forecast(later).outcome == CONVERGE
    assert forecast(_inp(stalling=((-1, "abort", None),))).outcome == CONVERGE   # the first model


def test_the_final_copy_runs_at_the_free_bandwidth_not_the_cap():
    from ferry.forecast.model import forecast
    fc = forecast(_inp(check_chunk_s=0.1, final_bandwidth_mibs=900.0))
    assert fc.downtime_ms == pytest.approx(18 / 900 * 1000)
    assert fc.total_seconds == pytest.approx(382 / 40 + 18 / 900 + 1.5)


@pytest.mark.parametrize("field, value", [("check_chunk_s", 0), ("switchover_syncs", 3),
                                          ("switchover_syncs", True), ("final_bandwidth_mibs", -1)])
def test_new_inputs_are_checked(field, value):
    from ferry.common.errors import InvalidInput
    with pytest.raises(InvalidInput) as err:
        _inp(**{field: value})
    assert err.value.field == field


def test_inputs_read_back_from_their_wire_form():
    from ferry.forecast.model import ForecastInputs
    inp = _inp(check_chunk_s=0.1, switchover_syncs=2, final_bandwidth_mibs=900.0, dirty_rate_mibs=8.0,
               dirty_rate_low_mibs=6.0, dirty_rate_high_mibs=12.0, stalling=((1, "setDowntime", 700), (-1, "abort", None)),
               auto_converge=True, parallel=4, postcopy_allowed=False, dirty_pattern="random")
    assert ForecastInputs.from_wire(inp.to_wire()) == inp


def test_downtime_range_runs_from_the_left_over_at_the_link_speed_to_the_limit_in_force():
    """The hand case above (left 1.6 MiB, limit 50 ms, B = 100), spread 0.1, final copy at the
    pair's 400 MiB/s, link 1600 MiB/s: low = 1.6 / 1600 = 1 ms; high = 50 / 0.9 = 55.556 ms;
    the central 1.6 / 400 = 4 ms lies between. With no link known the low is 0 (the switch-over
    cost)."""
    f = forecast(inputs(memory_mib=2048, touched_mib=1000, dirty_rate_mibs=20, init_downtime_ms=300,
                        stalling=((0, "setDowntime", 50),), final_bandwidth_mibs=400, link_mibs=1600))
    assert f.downtime_ms == pytest.approx(4)
    assert f.downtime_low_ms == pytest.approx(1.0)
    assert f.downtime_high_ms == pytest.approx(50 / 0.9)
    assert f.to_wire()["downtimeRangeMs"] == {"low": 1.0, "high": 55.556}
    assert forecast(replace(f.inputs, link_mibs=None)).downtime_low_ms == 0


def test_downtime_range_adds_the_switchover_cost_and_is_none_for_an_abort():
    f = forecast(inputs(memory_mib=2048, touched_mib=1000, dirty_rate_mibs=20, init_downtime_ms=300,
                        stalling=((0, "setDowntime", 50),), switchover_ms=10))
    assert f.downtime_low_ms == pytest.approx(10)
    assert f.downtime_high_ms == pytest.approx(50 / 0.9 + 10)
    aborted = forecast(inputs(memory_mib=512, touched_mib=320, dirty_rate_mibs=50, bandwidth_mibs=40,
                              init_downtime_ms=100, stalling=MINIMAL_DOWNTIME))
    assert aborted.downtime_low_ms is None and aborted.downtime_high_ms is None


def test_postcopy_downtime_range_is_the_switchover_up_to_the_limit():
    """Post-copy stops the guest only to hand over (no RAM): low = switchover_ms = 0; the limit
    in force when it fires, 200 ms, / 0.9 is the high."""
    sched = ((1, "setDowntime", 150), (2, "setDowntime", 200), (-1, "postcopy", None))
    f = forecast(inputs(memory_mib=512, touched_mib=320, dirty_rate_mibs=50, bandwidth_mibs=40, stalling=sched))
    assert f.outcome == POSTCOPY
    assert (f.downtime_low_ms, f.downtime_high_ms) == (0, pytest.approx(200 / 0.9))


def test_an_abort_pays_only_the_fixed_cost_before_qemus_clock_a_converged_one_all_of_it():
    converged = forecast(inputs(fixed_cost_s=2.0))
    assert converged.total_seconds == pytest.approx(8 + 2.0)
    aborted = forecast(inputs(touched_mib=400, dirty_rate_mibs=60, bandwidth_mibs=50, max_seconds=30,
                              fixed_cost_s=2.0))
    assert aborted.total_seconds == pytest.approx(30 + 0.2)

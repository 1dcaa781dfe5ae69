"""The model's runs step by step, one rule per test (ferry.forecast.model.simulate and friends).

Each case is small enough to follow by hand: sizes in MiB, rates in MiB/s, so a pass of 100 MiB at
100 MiB/s takes 1 s, and a 300 ms limit at 100 MiB/s lets 30 MiB go in the pause.
"""
import pytest

from ferry.forecast.model import (
    ABORT,
    CONVERGE,
    MAX_ITERATIONS,
    POSTCOPY,
    RANDOM,
    ForecastInputs,
    Run,
    State,
    Step,
    dirtied,
    downtime_range,
    forecast,
    in_pass_unsent,
    simulate,
)


def _inp(**kw):
    return ForecastInputs(**{**dict(memory_mib=100, touched_mib=100, dirty_rate_mibs=0, bandwidth_mibs=100), **kw})


MID = State(iteration=1, send_mib=50, downtime_ms=300, throttle_pct=20, fire_now=True)


def test_a_due_abort_ends_the_run_at_once_with_what_was_left():
    run = simulate(_inp(), 10, 100, State(**{**MID.__dict__, "pending": ((0, "abort", None),)}))
    assert run == Run(ABORT, 0.0, None, (Step(1, 50, 0.0, 50, 300, "abort", 20, 0.0),),
                      "the schedule aborts at iteration 1")


def test_a_due_postcopy_pulls_the_rest_once_and_pays_the_switchover():
    run = simulate(_inp(switchover_ms=7), 10, 100, State(**{**MID.__dict__, "pending": ((0, "postcopy", None),)}))
    assert run == Run(POSTCOPY, 0.5, 7, (Step(1, 50, 0.5, 0.0, 300, "postcopy", 20, 0.0),),
                      "the schedule switches to post-copy at iteration 1")


def test_a_postcopy_that_is_not_allowed_is_skipped_and_says_so():
    run = simulate(_inp(postcopy_allowed=False), 0, 100, State(**{**MID.__dict__, "pending": ((0, "postcopy", None),)}))
    assert run.outcome == CONVERGE and run.steps[0].fires == "postcopy (not allowed here: skipped)"


def test_an_item_fires_only_when_the_state_says_it_has_not_yet():
    state = State(**{**MID.__dict__, "pending": ((0, "abort", None),), "fire_now": False})
    assert simulate(_inp(), 0, 100, state).outcome == CONVERGE


def test_the_time_limit_aborts_a_pass_that_ends_exactly_on_it():
    run = simulate(_inp(max_seconds=1.0), 10, 100)
    assert run == Run(ABORT, 1.0, None, (Step(0, 100, 1.0, 100, 300.0, "abort (time limit)", 0, 10.0),),
                      "over the time limit of 1 s (during iteration 0)")


def test_what_is_left_exactly_at_the_threshold_converges():
    run = simulate(_inp(), 30, 100)          # 30 MiB dirtied in the 1 s pass: 30 MiB fit in 300 ms
    assert run == Run(CONVERGE, 1.3, 300.0, (Step(0, 100, 1.0, 30.0, 300.0, None, 0, 30.0),),
                      "converges after iteration 0")


def test_the_final_copy_is_never_slower_than_the_passes_even_below_1_mibs():
    run = simulate(_inp(memory_mib=1, touched_mib=1, init_downtime_ms=1000), 0.1, 0.5)
    assert run.outcome == CONVERGE and run.seconds == pytest.approx(2 + 0.2 / 0.5)


def test_an_abort_due_on_the_switchovers_own_sync_cancels_the_converging_migration():
    run = simulate(_inp(stalling=((0, "abort", None),), switchover_syncs=1), 10, 100)
    # the 1 s pass and the final copy of the 10 MiB left (0.1 s) ran before the cancel
    assert (run.outcome, run.seconds, run.downtime_ms) == (ABORT, pytest.approx(1.1), None)
    assert run.reason == ("converges after iteration 0, but the schedule's abort fires on iteration 1, which the "
                          "switch-over's own bitmap sync starts")


def test_a_guest_throttled_to_the_maximum_never_converges_when_nothing_else_can_end_it():
    run = simulate(_inp(auto_converge=True), 100000, 10, State(throttle_pct=99))
    assert (run.outcome, run.seconds, len(run.steps)) == (ABORT, None, 1)
    assert run.reason == "never converges: the data does not shrink and nothing in the schedule ends it"


def test_auto_converge_counts_a_pass_as_high_only_over_half_of_what_it_sent():
    # left exactly half of the pass: not high, so the second high pass never comes
    run = simulate(_inp(auto_converge=True), 50, 100, State(high_count=1))
    assert [s.throttle_pct for s in run.steps] == [0, 0]
    run = simulate(_inp(auto_converge=True), 50.5, 100, State(high_count=1))
    assert [s.throttle_pct for s in run.steps][:2] == [0, 20]


def test_auto_converge_measures_high_on_what_the_pass_sent_before_the_check():
    # check every 0.1 s: 25 MiB unsent at the check, 75 MiB sent; at 60 MiB/s 45 MiB came back (> 37.5)
    run = simulate(_inp(auto_converge=True, check_chunk_s=0.1), 60, 100, State(high_count=1))
    assert run.steps[1].throttle_pct == 20
    # at 50 MiB/s 37.5 came back: exactly half, not high
    run = simulate(_inp(auto_converge=True, check_chunk_s=0.1), 50, 100, State(high_count=1))
    assert all(s.throttle_pct == 0 for s in run.steps)


def test_a_run_that_never_ends_within_the_model_guard_says_so():
    run = simulate(_inp(max_seconds=1e12), 200, 100)
    assert (run.outcome, run.seconds, run.downtime_ms, len(run.steps)) == (ABORT, None, None, MAX_ITERATIONS)
    assert run.reason == f"no end within {MAX_ITERATIONS} iterations"


def test_nothing_is_dirty_in_an_empty_working_set():
    assert dirtied(0, 10, RANDOM) == 0 and dirtied(0, 10) == 0
    assert dirtied(0.5, 10) == 0.5


def test_a_check_more_than_a_pass_apart_leaves_nothing_unsent():
    assert in_pass_unsent(_inp(check_chunk_s=1.0), 100, 30, 100) == 0


def test_the_downtime_range_adds_the_link_time_to_the_switchover_and_holds_the_runs_own_figure():
    inp = _inp(link_mibs=100, switchover_ms=5)
    run = Run(CONVERGE, 1.0, 50.0, (Step(0, 100, 1.0, 10, 300),), "")
    low, high = downtime_range(run, inp, 0.1)
    assert low == 50.0 and high == pytest.approx(300 / 0.9 + 5)
    low, high = downtime_range(Run(CONVERGE, 1.0, 500.0, run.steps, ""), inp, 0.1)
    assert (low, high) == (pytest.approx(105), 500.0)
    low, high = downtime_range(Run(CONVERGE, 1.0, 200.0, run.steps, ""), inp, 0.1)
    assert low == pytest.approx(105)
    assert downtime_range(Run(CONVERGE, 1.0, 0.0, (Step(0, 1, 1.0, 0, 0.5),), ""), _inp(), 0) == (0, 0.5)


def test_the_range_runs_best_at_the_bandwidth_plus_its_spread_and_worst_at_minus():
    f = forecast(_inp(fixed_cost_s=0, bandwidth_spread=0.1))
    assert f.total_seconds == 1.0
    assert f.low == pytest.approx(100 / 110) and f.high == pytest.approx(100 / 90)

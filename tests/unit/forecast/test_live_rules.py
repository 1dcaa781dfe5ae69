"""Rules of the live ETA's inputs, one per test (ferry.forecast.live).

What a poll of jobStats becomes, which bandwidth the rest runs at, and what the re-forecast of a
running migration is given: the model (`simulate`) is replaced by a spy that records its inputs.
"""
import pytest

from ferry.forecast import live
from ferry.forecast.live import LiveStats, PreMigration, from_job_stats, live_eta, sustained_throughput
from ferry.forecast.model import FIXED_AFTER_FRACTION, FIXED_COST_S, ForecastInputs, Run, State

MIB = 1 << 20


def _stats(**kw):
    base = dict(remaining_mib=100.0, dirty_rate_mibs=10.0, throughput_mibs=50.0, iteration=2, elapsed_s=4.0,
                downtime_ms=300.0)
    return LiveStats(**{**base, **kw})


def test_without_a_data_total_the_remaining_memory_is_what_is_left():
    s = from_job_stats({"data_total": 0, "data_remaining": 5 * MIB, "memory_remaining": 3 * MIB},
                       baseline_iteration=0, downtime_limit_ms=300)
    assert s.remaining_mib == 3
    s = from_job_stats({"data_total": True, "data_remaining": 5 * MIB, "memory_remaining": 3 * MIB},
                       baseline_iteration=0, downtime_limit_ms=300)
    assert s.remaining_mib == 3           # a boolean is no figure


def test_the_dirty_rate_is_in_pages_of_the_reported_size_4096_when_unknown():
    assert from_job_stats({"memory_dirty_rate": 256, "memory_page_size": 8192}, baseline_iteration=0,
                          downtime_limit_ms=1).dirty_rate_mibs == 2
    assert from_job_stats({"memory_dirty_rate": 256}, baseline_iteration=0, downtime_limit_ms=1).dirty_rate_mibs == 1
    assert from_job_stats({"memory_dirty_rate": 256, "memory_page_size": "big"}, baseline_iteration=0,
                          downtime_limit_ms=1).dirty_rate_mibs == 1


def test_the_iteration_counts_from_the_first_one_seen_and_never_below_zero():
    assert from_job_stats({"memory_iteration": 3}, baseline_iteration=3, downtime_limit_ms=1).iteration == 0
    assert from_job_stats({"memory_iteration": 2}, baseline_iteration=3, downtime_limit_ms=1).iteration == 0
    assert from_job_stats({"memory_iteration": 5}, baseline_iteration=3, downtime_limit_ms=1).iteration == 2


def test_sustained_throughput_is_the_jobs_figure_without_a_total_sent_or_time():
    assert sustained_throughput(_stats(throughput_mibs=0.5)) == 0.5
    assert sustained_throughput(_stats(throughput_mibs=0.5, processed_mib=10.0, elapsed_s=0)) == 0.5
    assert sustained_throughput(_stats(throughput_mibs=0.1, processed_mib=10.0, elapsed_s=0.5)) == 20
    assert sustained_throughput(_stats(throughput_mibs=0.1, processed_mib=0.5, elapsed_s=1.0)) == 0.5
    assert sustained_throughput(_stats(throughput_mibs=0.1, processed_mib=-4.0, elapsed_s=1.0)) == 0.1


class _Spy:
    def __init__(self, run):
        self.calls, self.run = [], run

    def __call__(self, inp, dirty, bandwidth, state):
        self.calls.append((inp, dirty, bandwidth, state))
        return self.run


@pytest.fixture
def spy(monkeypatch):
    s = _Spy(Run("converge", 2.0, 100.0, (), "converges in 1 iteration"))
    monkeypatch.setattr(live, "simulate", s)
    return s


def test_the_rerun_of_a_running_migration_gets_its_live_figures_and_defaults(spy):
    eta = live_eta(_stats(pass_elapsed_s=1.5), touched_mib=80.0, memory_mib=512.0)
    inp, dirty, bandwidth, state = spy.calls[-1]
    assert inp == ForecastInputs(memory_mib=512.0, touched_mib=100.0, dirty_rate_mibs=10.0, bandwidth_mibs=50.0,
                                 bandwidth_source="live", postcopy_allowed=True, switchover_syncs=0)
    assert (dirty, bandwidth) == (10.0, 50.0)
    assert state == State(iteration=2, send_mib=100.0, downtime_ms=300.0, throttle_pct=0, fire_now=False,
                          pass_elapsed_s=1.5)
    assert (eta.seconds, eta.outcome, eta.reason) == (2.0 + FIXED_COST_S * FIXED_AFTER_FRACTION, "converge",
                                                      "converges in 1 iteration")


def test_every_option_of_the_live_eta_reaches_the_model(spy):
    pending = ((3, "abort", None),)
    live_eta(_stats(), touched_mib=80.0, memory_mib=512.0, pending=pending, auto_converge=True, throttle_pct=20,
             postcopy_allowed=False, fixed_cost_s=2.0, max_seconds=10.0, dirty_pattern="random",
             check_chunk_s=0.25, switchover_syncs=2, final_bandwidth_mibs=900.0)
    inp, _, _, state = spy.calls[-1]
    assert inp == ForecastInputs(memory_mib=512.0, touched_mib=100.0, dirty_rate_mibs=10.0, bandwidth_mibs=50.0,
                                 bandwidth_source="live", stalling=pending, auto_converge=True,
                                 postcopy_allowed=False, fixed_cost_s=2.0, max_seconds=6.0, dirty_pattern="random",
                                 check_chunk_s=0.25, switchover_syncs=2, final_bandwidth_mibs=900.0)
    assert state.throttle_pct == 20 and state.iteration == 2


def test_small_figures_are_kept_not_rounded_up(spy):
    live_eta(_stats(throughput_mibs=0.5, remaining_mib=0.5), touched_mib=0.0, memory_mib=512.0, max_seconds=4.5)
    inp, _, _, state = spy.calls[-1]
    assert state.send_mib == 0.5 and inp.max_seconds == 0.5 and inp.bandwidth_mibs == 0.5
    live_eta(_stats(iteration=1), touched_mib=0.0, memory_mib=512.0,
             premigration=PreMigration(dirty_rate_mibs=1.0, touched_mib=0.5))
    assert spy.calls[-1][0].touched_mib == 0.5
    live_eta(_stats(), touched_mib=0.0, memory_mib=512.0, max_seconds=1.0)     # past its time bound
    assert spy.calls[-1][0].max_seconds == 0.001


def test_no_eta_without_a_measured_throughput():
    with pytest.raises(ValueError, match="^no throughput measured yet: no ETA$"):
        live_eta(_stats(throughput_mibs=0), touched_mib=1.0, memory_mib=1.0)

"""The live ETA: the model run from where a migration stands."""
import pytest

from ferry.forecast import ABORT, CONVERGE
from ferry.forecast.live import FIXED_AFTER_FRACTION, LiveStats, live_eta


def test_eta_of_a_shrinking_migration_is_hand_computed():
    """remaining 200 MiB at 100 MiB/s, r = 20, limit 300 ms (30 MiB): 2 s, left 40; 0.4 s, left 8;
    final 0.08 s; + half the 1.5 s fixed cost = 2.48 + 0.75 = 3.23 s."""
    eta = live_eta(LiveStats(remaining_mib=200, dirty_rate_mibs=20, throughput_mibs=100, iteration=1,
                             elapsed_s=10, downtime_ms=300), touched_mib=1000, memory_mib=2048)
    assert eta.outcome == CONVERGE
    assert eta.seconds == pytest.approx(2.48 + 1.5 * FIXED_AFTER_FRACTION)
    assert eta.to_wire() == {"seconds": 3.2, "outcome": "converge"}


def test_eta_says_will_abort_and_when():
    """r > B: each iteration resends 320 MiB in 8 s; the pending abort (-1) fires at the next
    iteration, not at this one (its item ran already): 8 s of the current one, then abort."""
    stats = LiveStats(remaining_mib=320, dirty_rate_mibs=50, throughput_mibs=40, iteration=7,
                      elapsed_s=56, downtime_ms=500)
    eta = live_eta(stats, touched_mib=320, memory_mib=512, pending=((-1, "abort", None),))
    assert eta.outcome == ABORT
    assert eta.seconds == pytest.approx(8 + 0.75)


def test_eta_time_limit_counts_from_the_start():
    stats = LiveStats(remaining_mib=320, dirty_rate_mibs=50, throughput_mibs=40, iteration=3,
                      elapsed_s=25, downtime_ms=500)
    eta = live_eta(stats, touched_mib=320, memory_mib=512, max_seconds=30)
    assert eta.outcome == ABORT and eta.seconds == pytest.approx(8 + 0.75)


def test_no_throughput_yet_gives_no_eta():
    with pytest.raises(ValueError):
        live_eta(LiveStats(100, 0, 0, 0, 0.1, 300), touched_mib=100, memory_mib=512)


def test_never_ending_migration_has_no_seconds():
    eta = live_eta(LiveStats(320, 60, 40, 5, 40, 300), touched_mib=320, memory_mib=512)
    assert eta.outcome == ABORT and eta.seconds is None and eta.to_wire()["seconds"] is None


def test_from_job_stats_converts_libvirts_units():
    from ferry.forecast.live import from_job_stats
    stats = {"data_total": 1 << 30, "data_remaining": 200 << 20, "memory_bps": 100 << 20,
             "memory_dirty_rate": 5120, "memory_page_size": 4096, "memory_iteration": 4, "time_elapsed": 12500,
             "downtime": 77}
    live = from_job_stats(stats, baseline_iteration=1, downtime_limit_ms=300)
    assert live == LiveStats(remaining_mib=200, dirty_rate_mibs=20, throughput_mibs=100, iteration=3,
                             elapsed_s=12.5, downtime_ms=300)
    assert from_job_stats({}, baseline_iteration=0, downtime_limit_ms=300).throughput_mibs == 0

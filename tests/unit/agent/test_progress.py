"""Progress percent table (facts §3) and job-stats figures."""
import pytest

from ferry.agent.progress import figures_from_job_stats, progress_percent

GiB = 1 << 30


@pytest.mark.parametrize("total, remaining, previous, downtime_known, expected", [
    (0, 0, 0, False, 0),             # nothing known yet
    (0, 123, 0, False, 0),
    (GiB, GiB, 0, False, 0),         # just started
    (GiB, GiB // 2, 0, False, 50),
    (GiB, GiB // 4, 0, False, 75),
    (1000, 1, 0, False, 99),         # 100 - 0 would be 100: capped while anything remains
    (1000, 9, 0, False, 99),
    (1000, 11, 0, False, 99),        # 100 - 1
    (1000, 20, 0, False, 98),
    (1000, 0, 0, False, 100),        # nothing remains
    (GiB, GiB // 2, 80, False, 80),  # new iteration re-dirtied memory: never backwards
    (1000, 100, 80, False, 90),
    (GiB, GiB, 99, True, 100),       # downtime known: switched over
    (0, 0, 0, True, 100),
])
def test_progress_table(total, remaining, previous, downtime_known, expected):
    assert progress_percent(total, remaining, previous, downtime_known) == expected


def test_progress_is_monotonic_over_a_sequence():
    shown, seen = 0, []
    for remaining in (1000, 600, 200, 700, 50, 400, 1, 0):
        shown = progress_percent(1000, remaining, shown)
        seen.append(shown)
    assert seen == [0, 40, 80, 80, 95, 95, 99, 100]


def test_figures_from_job_stats():
    f = figures_from_job_stats({"type": 2, "data_total": 100, "data_remaining": 40, "memory_total": 90,
                                "memory_remaining": 30, "memory_bps": 5, "memory_dirty_rate": 10,
                                "memory_page_size": 4096, "memory_iteration": 3, "time_elapsed": 1500})
    assert (f.total, f.remaining, f.iteration, f.dirty_rate_bps, f.downtime_ms) == (100, 40, 3, 40960, None)
    assert figures_from_job_stats({"downtime": 77}).downtime_ms == 77


def test_rule_progress_is_0_when_data_total_is_0_even_with_memory_figures():
    """facts §3 "0 when total is 0": memory figures without a data total do not make 50%."""
    f = figures_from_job_stats({"type": 2, "data_total": 0, "data_remaining": 0, "memory_total": 1000,
                                "memory_remaining": 500})
    assert (f.total, f.remaining) == (0, 0)
    assert progress_percent(f.total, f.remaining) == 0
    f = figures_from_job_stats({"data_total": 1000, "data_remaining": 250, "memory_total": 1000,
                                "memory_remaining": 900})
    assert progress_percent(f.total, f.remaining) == 75   # data figures, not memory ones
    assert figures_from_job_stats({"downtime": 77}).downtime_ms == 77

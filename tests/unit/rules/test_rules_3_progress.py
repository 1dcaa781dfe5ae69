"""Facts §3 "Progress percent", and the job-stats figures the percent is computed from.

Each test names the rule it holds; the figures are the agent's reading of libvirt's jobStats().
"""
import pytest

from ferry.agent.progress import JobFigures, figures_from_job_stats, progress_percent


def test_rule_3_progress_0_when_total_is_0_or_below():
    assert progress_percent(0, 0) == 0
    assert progress_percent(-5, 3) == 0
    assert progress_percent(0, 0, previous=40) == 40     # never backwards, even then


def test_rule_3_progress_100_when_nothing_remains():
    assert progress_percent(1, 0) == 100
    assert progress_percent(1000, -1) == 100


@pytest.mark.parametrize("total, remaining, expected", [
    (1000, 999, 1),     # 100 - 100*999//1000 = 100 - 99
    (1000, 1000, 0),
    (1000, 500, 50),
    (1000, 10, 99),     # 100 - 1 = 99
    (1000, 1, 99),      # 100 - 0 = 100, capped at 99 while anything remains
    (3, 1, 67),         # integer division: 100*1//3 = 33
    (7, 2, 72),         # 100*2//7 = 28
])
def test_rule_3_progress_is_100_minus_100_remaining_div_total_capped_at_99(total, remaining, expected):
    assert progress_percent(total, remaining) == expected


def test_rule_3_progress_never_goes_backwards():
    assert progress_percent(1000, 900, previous=55) == 55
    assert progress_percent(1000, 400, previous=55) == 60
    assert progress_percent(1000, 450, previous=55) == 55


def test_rule_3_progress_100_once_the_downtime_is_known():
    assert progress_percent(1000, 900, previous=3, downtime_known=True) == 100
    assert progress_percent(0, 0, downtime_known=True) == 100
    assert progress_percent(1000, 900, previous=3, downtime_known=False) == 10


FULL_STATS = {
    "type": 2, "data_total": 1000, "data_processed": 600, "data_remaining": 400,
    "memory_total": 900, "memory_processed": 550, "memory_remaining": 350, "memory_bps": 123456,
    "memory_dirty_rate": 10, "memory_page_size": 2048, "memory_iteration": 7, "time_elapsed": 4321,
    "downtime": 55, "memory_postcopy_requests": 3,
}


def test_rule_3_figures_from_job_stats_every_field():
    f = figures_from_job_stats(FULL_STATS)
    assert f == JobFigures(data_total=1000, data_processed=600, data_remaining=400, memory_total=900,
                           memory_processed=550, memory_remaining=350, memory_bps=123456,
                           dirty_rate_pages=10, page_size=2048, iteration=7, time_elapsed_ms=4321,
                           downtime_ms=55, postcopy_requests=3)
    assert f.dirty_rate_bps == 10 * 2048          # pages/s times the page size reported
    assert (f.total, f.remaining) == (1000, 400)  # the percent is over the data figures


def test_rule_3_figures_from_job_stats_defaults_for_missing_keys():
    f = figures_from_job_stats({})
    assert f == JobFigures()
    assert (f.data_total, f.data_processed, f.data_remaining, f.memory_total, f.memory_processed,
            f.memory_remaining, f.memory_bps, f.dirty_rate_pages, f.iteration, f.time_elapsed_ms,
            f.postcopy_requests) == (0,) * 11
    assert f.page_size == 4096 and f.downtime_ms is None
    assert JobFigures(dirty_rate_pages=3).dirty_rate_bps == 3 * 4096


def test_rule_3_figures_page_size_0_means_the_default_4096():
    f = figures_from_job_stats({"memory_page_size": 0, "memory_dirty_rate": 2})
    assert f.page_size == 4096 and f.dirty_rate_bps == 8192


def test_rule_3_figures_ignore_values_that_are_not_numbers():
    f = figures_from_job_stats({"data_total": "1000", "data_processed": None, "memory_bps": [1],
                                "downtime": "55", "time_elapsed": 12.9, "memory_iteration": 4.0})
    assert (f.data_total, f.data_processed, f.memory_bps, f.downtime_ms) == (0, 0, 0, None)
    assert (f.time_elapsed_ms, f.iteration) == (12, 4)
    assert figures_from_job_stats({"downtime": 0}).downtime_ms == 0      # 0 ms is a known downtime
    assert figures_from_job_stats({"downtime": 7.8}).downtime_ms == 7

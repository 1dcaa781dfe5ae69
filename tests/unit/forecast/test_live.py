"""The live ETA: the model run from where a migration stands."""
import pytest

from ferry.forecast import ABORT, CONVERGE
from ferry.forecast.live import FIXED_AFTER_FRACTION, LiveStats, PreMigration, live_eta, sustained_throughput


def test_eta_of_a_shrinking_migration_is_hand_computed():
    """remaining 200 MiB at 100 MiB/s, r = 20, limit 300 ms (30 MiB): 2 s, left 40; 0.4 s, left 8;
    final 0.08 s; + 0.9 of the 1.5 s fixed cost (libvirt's confirm, after QEMU's clock) =
    2.48 + 1.35 = 3.83 s."""
    eta = live_eta(LiveStats(remaining_mib=200, dirty_rate_mibs=20, throughput_mibs=100, iteration=1,
                             elapsed_s=10, downtime_ms=300), touched_mib=1000, memory_mib=2048)
    assert eta.outcome == CONVERGE
    assert eta.seconds == pytest.approx(2.48 + 1.5 * FIXED_AFTER_FRACTION)
    assert eta.to_wire() == {"seconds": 3.8, "outcome": "converge"}


def test_eta_says_will_abort_and_when():
    """r > B: each iteration resends 320 MiB in 8 s; the pending abort (-1) fires at the next
    iteration, not at this one (its item ran already): 8 s of the current one, then abort; an
    abort is a cancel, with no confirm step after it: 8 s."""
    stats = LiveStats(remaining_mib=320, dirty_rate_mibs=50, throughput_mibs=40, iteration=7,
                      elapsed_s=56, downtime_ms=500)
    eta = live_eta(stats, touched_mib=320, memory_mib=512, pending=((-1, "abort", None),))
    assert eta.outcome == ABORT
    assert eta.seconds == pytest.approx(8)


def test_eta_time_limit_counts_from_the_start():
    """25 s gone of a 30 s limit: the agent aborts when the limit is reached, 5 s into the 8 s pass."""
    stats = LiveStats(remaining_mib=320, dirty_rate_mibs=50, throughput_mibs=40, iteration=3,
                      elapsed_s=25, downtime_ms=500)
    eta = live_eta(stats, touched_mib=320, memory_mib=512, max_seconds=30)
    assert eta.outcome == ABORT and eta.seconds == pytest.approx(5)


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


def test_first_pass_uses_the_premigration_dirty_rate_over_the_whole_pass():
    """QEMU reports no dirty rate in the first pass. Remaining 256 of 512 MiB, touched 400 (the
    rest are zero pages: 256 x 400/512 = 200 MiB to send), 40 MiB/s, pre-migration rate 20
    (linear), the pass has run 6 s, limit 300 ms (12 MiB). Passes: 200 in 5 s (dirtied over
    6 + 5 s: 220); 220 in 5.5 s (110); 110, 2.75 s (55); 55, 1.375 s (27.5); 27.5, 0.6875 s
    (13.75); 13.75, 0.34375 s (6.875 <= 12: stop); final 6.875/40 = 0.171875 s.
    Sum 15.828125 s + 1.35 s of confirm."""
    stats = LiveStats(remaining_mib=256, dirty_rate_mibs=0, throughput_mibs=40, iteration=0,
                      elapsed_s=6.6, downtime_ms=300, pass_elapsed_s=6.0)
    pre = PreMigration(dirty_rate_mibs=20, touched_mib=400, dirty_pattern="linear")
    eta = live_eta(stats, touched_mib=512, memory_mib=512, premigration=pre)
    assert eta.outcome == CONVERGE
    assert eta.seconds == pytest.approx(15.828125 + 1.5 * FIXED_AFTER_FRACTION)
    # without it, the first pass's zero dirty rate says the migration ends with this pass
    old = live_eta(stats, touched_mib=512, memory_mib=512)
    assert old.seconds == pytest.approx(256 / 40 + 1.35)


def test_the_next_pass_resends_what_the_whole_current_pass_dirtied():
    """Pass 2 has run 2 s, 100 MiB left at 100 MiB/s, r = 20: it ends in 1 s having dirtied
    20 x 3 = 60 MiB (not 20); 60 in 0.6 s dirties 12 <= 30 (300 ms): final 0.12 s.
    1.72 s + 1.35 s."""
    stats = LiveStats(remaining_mib=100, dirty_rate_mibs=20, throughput_mibs=100, iteration=2,
                      elapsed_s=20, downtime_ms=300, pass_elapsed_s=2.0)
    eta = live_eta(stats, touched_mib=1000, memory_mib=2048)
    assert eta.seconds == pytest.approx(1.72 + 1.35)


def test_the_premigration_rate_wins_over_the_jobs_later_figure():
    """In pass 1 QEMU reports 60 MiB/s (distinct pages per sync, reported 2-3x the idle figure);
    the pre-migration 20 is used, and the send is not scaled after the first pass: 100 MiB at
    100 MiB/s with no time run yet: 1 s, 20 dirtied <= 30 (300 ms): final 0.2 s."""
    stats = LiveStats(remaining_mib=100, dirty_rate_mibs=60, throughput_mibs=100, iteration=1,
                      elapsed_s=20, downtime_ms=300)
    pre = PreMigration(dirty_rate_mibs=20, touched_mib=1000)
    eta = live_eta(stats, touched_mib=2048, memory_mib=2048, premigration=pre)
    assert eta.seconds == pytest.approx(1.2 + 1.35)


def test_first_pass_sends_the_touched_memory_not_sent_yet_not_the_zero_pages():
    """The lab's 512 MiB guest at 50%: QEMU's remaining 254.6 MiB counts the untouched zero
    pages (mostly at the top of RAM) in full; 244.5 MiB sent of 364 touched leaves 119.5 to
    send. Idle guest, 40 MiB/s, limit 300 ms (12 MiB), end-of-pass check: 119.5/40 = 2.9875 s,
    nothing dirtied: done. + 1.35 s."""
    stats = LiveStats(remaining_mib=254.6, dirty_rate_mibs=0, throughput_mibs=40, iteration=0,
                      elapsed_s=7.2, downtime_ms=300, pass_elapsed_s=7.2, processed_mib=244.5)
    pre = PreMigration(dirty_rate_mibs=0, touched_mib=364)
    eta = live_eta(stats, touched_mib=512, memory_mib=512, premigration=pre)
    assert eta.seconds == pytest.approx(119.5 / 40 + 1.35)
    # more sent than was measured touched: what is left of this pass goes now
    more = live_eta(LiveStats(100, 0, 40, 0, 12, 300, 12, processed_mib=400), touched_mib=512, memory_mib=512,
                    premigration=pre)
    assert more.seconds == pytest.approx(1.35)


def test_a_one_second_dip_in_throughput_does_not_set_the_eta():
    """QEMU read 15 MiB/s for one second, but 600 MiB went in 10 s (60 MiB/s sustained): the
    rest, 300 MiB of an idle guest, goes at 60: 5 s + 1.35 s (not 20 s)."""
    stats = LiveStats(remaining_mib=300, dirty_rate_mibs=0, throughput_mibs=15, iteration=1,
                      elapsed_s=10, downtime_ms=300, processed_mib=600)
    assert sustained_throughput(stats) == 60
    assert live_eta(stats, touched_mib=1024, memory_mib=1024).seconds == pytest.approx(5 + 1.35)
    # a figure above the average (the average counts the setup) is kept
    assert sustained_throughput(LiveStats(300, 0, 80, 1, 10, 300, processed_mib=600)) == 80
    assert sustained_throughput(LiveStats(300, 0, 80, 1, 10, 300)) == 80

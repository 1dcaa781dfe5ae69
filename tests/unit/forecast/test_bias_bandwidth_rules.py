"""Edge rules of the dirty-rate corrections and of the forecast's bandwidth, one per test."""
import math

import pytest

from ferry.forecast import bias
from ferry.forecast.bandwidth import CAP, LINK, MEASURED, calibrate, choose_bandwidth, spread


def test_a_window_shorter_than_the_shortest_measured_one_uses_the_shortest_band():
    assert bias.sampling_band(0.5) == (0.71, 1.16)
    assert bias.sampling_band(3.9) == (0.71, 1.16) and bias.sampling_band(4) == (0.50, 1.08)


def test_a_zero_dirty_rate_is_a_valid_reading_a_negative_one_is_refused():
    r = bias.correct(0, bias.PAGE_SAMPLING, 4)
    assert (r.measured, r.estimate, r.low, r.high) == (0, 0, 0, 0)
    assert bias.correct(0.5, bias.DIRTY_RING, 1).estimate == pytest.approx(0.5 / math.sqrt(0.95 * 1.05))
    with pytest.raises(ValueError, match="cannot be negative, got -0.5"):
        bias.correct(-0.5, bias.DIRTY_RING, 1)


def test_each_correction_says_why_in_its_reason():
    assert bias.correct(10, bias.DIRTY_RING, 1).reason == \
        "dirty-ring counts every written page; +-5% for the window's edges"
    assert bias.correct(10, bias.PAGE_SAMPLING, 4).reason == (
        "page sampling over 4 s read 0.5-1.08 of the true rate in the lab; estimate = measured / sqrt(lo*hi)")
    r = bias.from_migration(300)
    assert r.measured == 300 and r.reason == "rates during a migration read 2-3x the idle figure"


def test_a_corrected_rate_goes_on_the_wire_in_mibs_to_the_thousandth():
    r = bias.correct(100, bias.PAGE_SAMPLING, 2)
    assert r.to_wire() == {"measuredMiBs": 100, "estimateMiBs": round(100 / math.sqrt(0.71 * 1.16), 3),
                           "lowMiBs": round(100 / 1.16, 3), "highMiBs": round(100 / 0.71, 3),
                           "reason": r.reason}
    assert r.to_wire()["lowMiBs"] == 86.207 and r.to_wire()["highMiBs"] == 140.845


def test_on_a_tie_the_measured_figure_beats_the_link_and_the_cap_beats_both():
    b = choose_bandwidth(None, 100, 100)
    assert (b.mibs, b.source, b.reason) == (100, MEASURED, "throughput measured on earlier migrations between these hosts")
    b = choose_bandwidth(100, 100, 100)
    assert (b.source, b.reason) == (CAP, "the migration's cap, at or below what the hosts reach")
    assert choose_bandwidth(None, 90, None).reason == "the link speed (no lower measured figure or cap)"
    assert choose_bandwidth(None, 90, None).source == LINK


def test_calibration_drops_outliers_even_when_the_spread_is_under_one_mibs():
    # median 10.75, MAD 0.5: 100 is 178 MADs away and goes, the median of the rest is 10.5
    assert calibrate([10, 10.5, 11, 100]) == 10.5


def test_a_sample_exactly_three_mads_from_the_median_is_kept():
    # median 12, MAD 2: 18 is exactly 3 MADs away, kept; dropping it would give 11
    assert calibrate([10, 10, 12, 12, 18]) == 12


def test_two_samples_have_a_spread_and_it_is_at_most_ninety_percent():
    assert spread([100, 120]) == pytest.approx(10 / 110)
    assert spread([100]) is None
    assert spread([1, 100, 1000]) == 0.9          # MAD 99 over a median of 100 would be 0.99


def test_the_measured_rate_too_goes_on_the_wire_to_the_thousandth():
    assert bias.correct(100.12345, bias.DIRTY_RING, 1).to_wire()["measuredMiBs"] == 100.123

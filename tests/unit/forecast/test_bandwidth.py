"""Which bandwidth a forecast uses, and the per-host-pair calibration."""
from hypothesis import given
from hypothesis import strategies as st

from ferry.forecast.bandwidth import CAP, LINK, MEASURED, calibrate, choose_bandwidth, spread


def test_cap_below_what_was_measured_wins():
    b = choose_bandwidth(cap_mibs=40, link_mibs=1250, measured_mibs=600)
    assert (b.mibs, b.source) == (40, CAP)


def test_measured_throughput_beats_an_optimistic_link_and_a_high_cap():
    b = choose_bandwidth(cap_mibs=2000, link_mibs=4000, measured_mibs=640)
    assert (b.mibs, b.source) == (640, MEASURED)


def test_link_speed_only_when_nothing_else_is_known_or_lower():
    assert choose_bandwidth(None, 1250, None).source == LINK
    assert choose_bandwidth(None, 100, 640).source == LINK
    assert choose_bandwidth(None, None, None) is None
    assert choose_bandwidth(0, None, -3) is None


def test_calibration_is_a_robust_median_of_earlier_migrations():
    assert calibrate([600, 640, 620, 5]) == 620      # a collapsed run (5 MiB/s) does not drag it
    assert calibrate([337, 1292, 633, 640, 610]) == 633
    assert calibrate([0, -1]) is None and calibrate([]) is None
    assert calibrate([500]) == 500


def test_spread_is_relative_mad():
    assert spread([100, 110, 90]) == 0.1
    assert spread([100]) is None


@given(st.lists(st.floats(min_value=1, max_value=1e5), min_size=1, max_size=30))
def test_calibration_lies_within_the_samples(xs):
    c = calibrate(xs)
    assert min(xs) <= c <= max(xs)

"""The dirty-rate corrections hold the lab's own readings inside their bands."""
import math

import pytest

from ferry.forecast import bias

# (true MiB/s, window s, measured MiB/s) seen in the lab (lab-facts.md; test_dirty_rate.py)
LAB_READINGS = [(128, 1, 92), (128, 1, 148), (128, 4, 126), (128, 4, 137), (200, 2, 151),
                (64, 4, 33), (64, 4, 36), (64, 4, 39), (64, 4, 41)]


@pytest.mark.parametrize(("true", "seconds", "measured"), LAB_READINGS)
def test_page_sampling_band_holds_every_lab_reading(true, seconds, measured):
    r = bias.correct(measured, bias.PAGE_SAMPLING, seconds)
    assert r.low <= true <= r.high
    assert r.low <= r.estimate <= r.high and r.measured == measured


def test_page_sampling_corrects_the_151_for_200_reading_upwards():
    r = bias.correct(151, bias.PAGE_SAMPLING, 2)
    assert 151 < r.estimate < 200
    assert r.estimate == pytest.approx(151 / math.sqrt(0.71 * 1.16))


def test_longer_windows_widen_the_band_downwards_for_saturation():
    assert bias.sampling_band(4)[0] < bias.sampling_band(2)[0]
    assert bias.sampling_band(60) == bias.sampling_band(4)
    assert bias.sampling_band(1) == bias.sampling_band(1.5)


def test_dirty_ring_is_nearly_exact():
    r = bias.correct(100, bias.DIRTY_RING, 1)
    assert r.estimate == pytest.approx(100, rel=0.01) and 90 < r.low < 100 < r.high < 110


def test_a_migrations_own_figure_is_brought_back_to_the_idle_range():
    r = bias.from_migration(300)
    assert (r.low, r.high) == (100, 150)
    assert r.low < r.estimate < r.high
    assert bias.correct(300, bias.MIGRATION_STATS, 1) == r


def test_dirty_bitmap_and_bad_values_are_refused():
    with pytest.raises(ValueError, match="dirty-bitmap"):
        bias.correct(10, bias.DIRTY_BITMAP, 1)
    with pytest.raises(ValueError):
        bias.correct(-1, bias.PAGE_SAMPLING, 1)

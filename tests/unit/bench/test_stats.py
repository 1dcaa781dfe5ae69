"""Medians with ranges, ratios and target verdicts."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ferry.bench.stats import Summary, paired_ratios, ratio, summarize, verdict


def test_summary_of_odd_and_even_counts():
    assert summarize([3.0, 1.0, 2.0]) == Summary(2.0, 1.0, 3.0, 3)
    assert summarize([4, 1, 2, 3]) == Summary(2.5, 1.0, 4.0, 4)


def test_missing_values_are_left_out_and_nothing_gives_none():
    assert summarize([None, 5, None]) == Summary(5.0, 5.0, 5.0, 1)
    assert summarize([]) is None
    assert summarize([None]) is None


def test_text_shows_range_only_when_there_is_one():
    assert summarize([2.0, 2.5, 3.0]).text() == "2.50 (2.00–3.00)"
    assert summarize([2.0]).text() == "2.00"
    assert summarize([7, 7]).text("{:.0f}") == "7"


@pytest.mark.parametrize("a,b,expected", [(2, 4, 0.5), (None, 4, None), (3, None, None), (3, 0, None), (3, -1, None)])
def test_ratio(a, b, expected):
    assert ratio(a, b) == expected


def test_paired_ratios_skip_incomplete_pairs():
    assert paired_ratios([(2, 1), (None, 1), (3, 0), (1, 4)]) == [2.0, 0.25]


def test_verdicts():
    assert verdict(1.04, 1.05, higher_is_better=False) == "meets"
    assert verdict(1.06, 1.05, higher_is_better=False) == "misses"
    assert verdict(0.9, 0.9, higher_is_better=True) == "meets"
    assert verdict(0.2, 0.9, higher_is_better=True) == "misses"
    assert verdict(None, 0.9, higher_is_better=True) == "not measured"


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1))
def test_median_lies_within_the_range(values):
    s = summarize(values)
    assert s.minimum <= s.median <= s.maximum
    assert s.n == len(values)

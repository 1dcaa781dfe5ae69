"""Summaries of repeated measurements: median with min–max, and ratios between two summaries.

Pure. A benchmark reports the median of its repeats (robust to one noisy run on a shared
machine) together with the range, so a reader sees the spread and not only a central value.
"""
from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    """Median, minimum and maximum of `n` measurements (None values are left out)."""

    median: float
    minimum: float
    maximum: float
    n: int

    def to_dict(self) -> dict:
        return {"median": self.median, "min": self.minimum, "max": self.maximum, "n": self.n}

    def text(self, fmt: str = "{:.2f}") -> str:
        """'2.31 (2.10–2.57)', or just the value when there is one measurement."""
        if self.n == 1 or self.minimum == self.maximum:
            return fmt.format(self.median)
        return f"{fmt.format(self.median)} ({fmt.format(self.minimum)}–{fmt.format(self.maximum)})"


def summarize(values: Iterable[float | None]) -> Summary | None:
    """The summary of the values that exist; None when there are none."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return None
    return Summary(statistics.median(present), min(present), max(present), len(present))


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is not > 0."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def paired_ratios(pairs: Iterable[tuple[float | None, float | None]]) -> list[float]:
    """a/b for each measured pair (a run and its baseline taken right beside it)."""
    out = []
    for a, b in pairs:
        r = ratio(a, b)
        if r is not None:
            out.append(r)
    return out


def verdict(value: float | None, target: float, *, higher_is_better: bool) -> str:
    """'meets' / 'misses' the target, or 'not measured'."""
    if value is None:
        return "not measured"
    ok = value >= target if higher_is_better else value <= target
    return "meets" if ok else "misses"

"""Which bandwidth a forecast uses, and the per-host-pair calibration it may come from.

Why: QEMU sends at the migration's cap when there is one; without a cap at what the link and the
two hosts allow, which only earlier migrations between the same two hosts have measured (the
lab's loopback "link" is 4 GB/s but migrations ran at 340-1300 MiB/s: the destination QEMU is
the bottleneck). A link speed alone is a ceiling, not a prediction.

Calibration is physical, never fitted: the robust median of earlier migrations' measured
throughput between the two hosts (same direction, same number of connections, chosen by the
caller), never the forecast benchmark's own runs.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

CAP, MEASURED, LINK = "cap", "measured", "link"
MIN_SAMPLES = 1
OUTLIER_MADS = 3.0      # samples further than this many MADs from the median are dropped


@dataclass(frozen=True)
class Bandwidth:
    mibs: float
    source: str          # cap / measured / link
    reason: str


def _usable(x: float | None) -> bool:
    return x is not None and not isinstance(x, bool) and x > 0


def choose_bandwidth(cap_mibs: float | None, link_mibs: float | None,
                     measured_mibs: float | None) -> Bandwidth | None:
    """The bandwidth to forecast with and which figure it is; None when nothing is known.

    QEMU can go no faster than any of the three, so the lowest known one wins (on a tie the cap,
    then the measured figure). A link speed alone is optimistic: it says nothing of the hosts.
    """
    figures = [(cap_mibs, CAP, "the migration's cap, at or below what the hosts reach"),
               (measured_mibs, MEASURED, "throughput measured on earlier migrations between these hosts"),
               (link_mibs, LINK, "the link speed (no lower measured figure or cap)")]
    known = [(float(x), src, why) for x, src, why in figures if _usable(x)]
    if not known:
        return None
    mibs, src, why = min(known, key=lambda f: f[0])   # min keeps the first of equal figures
    return Bandwidth(mibs, src, why)


def calibrate(samples_mibs: list[float] | tuple[float, ...]) -> float | None:
    """Earlier migrations' measured throughputs (MiB/s) -> the figure to use: a robust median.

    Non-positive samples (failed runs) are dropped; then samples further than 3 MADs from the
    median (a run that shared the host with a burst of other work); the median of the rest.
    None when no sample is usable.
    """
    xs = sorted(float(x) for x in samples_mibs if _usable(x))
    if len(xs) < MIN_SAMPLES:
        return None
    med = statistics.median(xs)
    mad = statistics.median(abs(x - med) for x in xs)
    if mad > 0:
        xs = [x for x in xs if abs(x - med) <= OUTLIER_MADS * mad]
    return statistics.median(xs)


def spread(samples_mibs: list[float] | tuple[float, ...]) -> float | None:
    """The relative spread of the samples (MAD / median), for the forecast's range; None if < 2."""
    xs = [float(x) for x in samples_mibs if _usable(x)]
    if len(xs) < 2:
        return None
    med = statistics.median(xs)
    return min(0.9, statistics.median(abs(x - med) for x in xs) / med)

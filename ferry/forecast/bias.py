"""Corrections for how dirty rates are measured, with the numbers they rest on.

Why: the model is only as good as its dirty rate, and both ways of measuring one here are biased.

1. Page sampling (libvirt's dirty-rate calculation under TCG: QEMU hashes a sample of pages at
   the start and the end of the window and counts those that changed) reads low and scatters
   on short windows. Measured in the lab, as measured / true:
   - a guest writing 128 MiB/s read 92-148 MiB/s over 1 s: 0.719 - 1.16 (lab-facts.md);
   - the same guest read 126-137 MiB/s over 4 s: 0.98 - 1.07 (lab-facts.md; band 1.08);
   - a guest writing 200 MiB/s read 151 MiB/s over 2 s: 0.755 (lab-facts.md);
   - a guest rewriting random pages of a 192 MiB fill at 64 MiB/s read 33, 36, 39, 41 MiB/s over
     4 s: 0.52 - 0.64 (tests/integration/agent/test_dirty_rate.py, lab 4, 2026-12-02).
   The reason, checked on the last figure: a page written twice in the window counts once. Random
   writes of r MiB/s over a region of W MiB leave W (1 - exp(-r T / W)) distinct pages dirty
   after T s: 192 (1 - exp(-64 * 4 / 192)) / 4 = 35 MiB/s, near the 33-41 read. So the under-read
   grows with the window and with r / W; it is what pre-copy sees too (an iteration resends a
   page once), but for the window's length, not the iteration's. Inverting that formula needs W
   and is unstable near saturation (it gave 80-92 MiB/s for the 64 MiB/s guest), so the
   correction is the lab's band instead: per window, the band [lo, hi] of measured / true seen
   here (windows shorter than 4 s keep a 0.71 floor; 4 s and more go down to 0.50), the true
   rate as measured / sqrt(lo * hi) (the band's geometric middle), its low and high as
   measured / hi and measured / lo. The band contains every figure above.
2. A dirty rate taken during a migration has been reported at 2-3x the figure of the same
   guest idle (KubeVirt enhancements #247; the cause is not established: the sample may miss,
   or reading every page may slow the workload's caches). So: Ferry does not sample while a
   migration runs (VM.getDirtyRate refuses), and a figure from a migration's job stats, when used
   to forecast another migration of the same guest, is corrected to the idle range
   [rate / 3, rate / 2], central rate / sqrt(6) (about / 2.45). For the live ETA of the running migration the job's
   own figure is used as it is: it counts the pages QEMU has to resend.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

PAGE_SAMPLING = "page-sampling"
DIRTY_RING = "dirty-ring"
DIRTY_BITMAP = "dirty-bitmap"
MIGRATION_STATS = "migration-stats"

# measured / true bands of page sampling in the lab, by window (seconds, lo, hi)
SAMPLING_BANDS = ((1, 0.71, 1.16), (2, 0.71, 1.16), (4, 0.50, 1.08))
# dirty-ring counts every written page exactly (KVM's ring): no correction, a small band
RING_BAND = (0.95, 1.05)
IN_MIGRATION_FACTOR = (2.0, 3.0)     # reported during-migration / idle


@dataclass(frozen=True)
class DirtyRate:
    """A corrected dirty-rate estimate (MiB/s) with its low/high bounds and why."""

    measured: float
    estimate: float
    low: float
    high: float
    reason: str

    def to_wire(self) -> dict:
        return {"measuredMiBs": round(self.measured, 3), "estimateMiBs": round(self.estimate, 3),
                "lowMiBs": round(self.low, 3), "highMiBs": round(self.high, 3), "reason": self.reason}


def sampling_band(seconds: float) -> tuple[float, float]:
    """The measured/true band for a page-sampling window of `seconds` (the nearest shorter one)."""
    band = SAMPLING_BANDS[0]
    for entry in SAMPLING_BANDS:
        if seconds >= entry[0]:
            band = entry
    return band[1], band[2]


def correct(measured: float, mode: str, seconds: float) -> DirtyRate:
    """The true dirty rate behind a libvirt dirty-rate reading in `mode` over `seconds`."""
    if measured < 0:
        raise ValueError(f"a dirty rate cannot be negative, got {measured}")
    if mode == DIRTY_RING:
        lo, hi = RING_BAND
        why = "dirty-ring counts every written page; +-5% for the window's edges"
    elif mode == PAGE_SAMPLING:
        lo, hi = sampling_band(seconds)
        why = (f"page sampling over {seconds:g} s read {lo:g}-{hi:g} of the true rate in the lab; "
               "estimate = measured / sqrt(lo*hi)")
    elif mode == MIGRATION_STATS:
        return from_migration(measured)
    else:
        raise ValueError(f"no correction known for mode {mode!r} (dirty-bitmap reads 0 under TCG)")
    return DirtyRate(measured, measured / math.sqrt(lo * hi), measured / hi, measured / lo, why)


def from_migration(rate: float) -> DirtyRate:
    """A rate from an earlier migration's job stats -> the same guest's idle rate (2-3x lower)."""
    lo_f, hi_f = IN_MIGRATION_FACTOR
    return DirtyRate(rate, rate / math.sqrt(lo_f * hi_f), rate / hi_f, rate / lo_f,
                     f"rates during a migration read {lo_f:g}-{hi_f:g}x the idle figure")

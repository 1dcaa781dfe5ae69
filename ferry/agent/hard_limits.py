"""Vdsm's two hard limits on an outgoing migration, as a pure decision.

Vdsm's migration monitor aborts a migration that

- runs longer than `migration_max_time_per_gib_mem` seconds per GiB of guest memory
  (Vdsm rounds the product up to whole seconds: (per_gib * memory_mib + 1023) // 1024), or
- whose remaining data has not reached a new low for `migration_progress_timeout` seconds
  (the first sample sets the first low; only a strictly lower `data_remaining` is a new one).

Neither applies once post-copy runs: the guest then runs on the destination and aborting would
lose it. Defaults are Vdsm's, from lib/vdsm/common/config.py.in ([vars] section):
migration_max_time_per_gib_mem = 64 (s/GiB, 0 disables it) and migration_progress_timeout = 240 (s).

Vdsm applies both only to a migration without a convergence schedule (its monitor checks
`not self._use_conv_schedule`): with a schedule, the schedule's own abort item is the limit.
Ferry does the same for its per-agent defaults; a limit given in the VM.migrate call itself
(`maxTimePerGiB`, `progressTimeout`) applies whatever the schedule, since the caller asked for
it. Ferry's 0 disables either limit (in Vdsm a progress timeout of 0 would abort at once).

KubeVirt has the same pair with other defaults: completionTimeoutPerGiB 150 s and
progressTimeout 150 s (its MigrationConfiguration).

`decide` is a pure function of the limits, the guest's memory, the elapsed time and the
summary of the remaining-data history (`LowMark`, advanced by `observe`); the job polls it and
aborts with the verdict's reason, which names the limit.
"""
from __future__ import annotations

from dataclasses import dataclass

VDSM_MAX_TIME_PER_GIB_S = 64     # Vdsm config.py.in: migration_max_time_per_gib_mem
VDSM_PROGRESS_TIMEOUT_S = 240    # Vdsm config.py.in: migration_progress_timeout
KUBEVIRT_COMPLETION_TIMEOUT_PER_GIB_S = 150  # for comparison only (KubeVirt's defaults)
KUBEVIRT_PROGRESS_TIMEOUT_S = 150

MAX_TIME_LIMIT = "migration_max_time_per_gib_mem"
PROGRESS_LIMIT = "migration_progress_timeout"
MAX_LIMIT_VALUE = 86_400         # a day: anything above is a typo, not a policy


@dataclass(frozen=True)
class HardLimits:
    """Seconds per GiB of memory and seconds without a new low; 0 turns a limit off."""

    max_time_per_gib: int = VDSM_MAX_TIME_PER_GIB_S
    progress_timeout: int = VDSM_PROGRESS_TIMEOUT_S


@dataclass(frozen=True)
class LowMark:
    """What the remaining-data history says: its lowest value and when it was reached (s)."""

    lowest: int | None = None
    at: float = 0.0


@dataclass(frozen=True)
class Verdict:
    abort: bool
    limit: str | None = None    # MAX_TIME_LIMIT / PROGRESS_LIMIT when abort
    reason: str = ""


CONTINUE = Verdict(False)


def effective_limits(agent: HardLimits, *, max_time_per_gib: int | None, progress_timeout: int | None,
                     has_schedule: bool) -> HardLimits:
    """The limits of one migration: the call's own values, else the agent's unless a
    convergence schedule was sent (Vdsm applies its config limits to unscheduled migrations only)."""
    default = HardLimits(0, 0) if has_schedule else agent
    return HardLimits(default.max_time_per_gib if max_time_per_gib is None else max_time_per_gib,
                      default.progress_timeout if progress_timeout is None else progress_timeout)


def max_time_s(max_time_per_gib: int, memory_mib: int) -> int:
    """Vdsm's migrationMaxTime: per-GiB seconds times memory, rounded up to whole seconds."""
    return (max_time_per_gib * memory_mib + 1023) // 1024


def observe(mark: LowMark, data_remaining: int, now: float) -> LowMark:
    """The mark after one sample: a strictly lower remaining figure is a new low."""
    if mark.lowest is None or data_remaining < mark.lowest:
        return LowMark(data_remaining, now)
    return mark


def decide(limits: HardLimits, *, memory_mib: int, elapsed_s: float, mark: LowMark, now: float,
           postcopy: bool) -> Verdict:
    """Abort now (with the limit and its reason) or go on."""
    if postcopy:
        return CONTINUE
    if limits.max_time_per_gib > 0:
        allowed = max_time_s(limits.max_time_per_gib, memory_mib)
        if 0 < allowed < elapsed_s:
            return Verdict(True, MAX_TIME_LIMIT,
                           f"the migration ran {elapsed_s:.1f} s, longer than its maximum of {allowed} s "
                           f"({MAX_TIME_LIMIT} {limits.max_time_per_gib} s/GiB x {memory_mib / 1024:g} GiB)")
    if limits.progress_timeout > 0 and mark.lowest is not None:
        stalled = now - mark.at
        if stalled > limits.progress_timeout:
            return Verdict(True, PROGRESS_LIMIT,
                           f"the remaining data has not reached a new low for {stalled:.1f} s "
                           f"({PROGRESS_LIMIT} {limits.progress_timeout} s; lowest "
                           f"{mark.lowest // (1024 * 1024)} MiB)")
    return CONTINUE

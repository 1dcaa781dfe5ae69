"""Migration progress: the percent shown to users and the figures behind it (pure).

Rules (ovirt-migration-facts §3): 0 while the total is 0; 100 when nothing remains;
otherwise 100 - 100*remaining//total, capped at 99 while anything remains; never goes
backwards (a new iteration re-dirties memory, the bar must not jump back); 100 once the
downtime is known (the guest has switched over).
"""
from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


def progress_percent(total: int, remaining: int, previous: int = 0, downtime_known: bool = False) -> int:
    """The percent to show now, given the last one shown (`previous`)."""
    if downtime_known:
        return 100
    if total <= 0:
        current = 0
    elif remaining <= 0:
        current = 100
    else:
        current = min(99, 100 - 100 * remaining // total)
    return max(previous, current)


@dataclass(frozen=True)
class JobFigures:
    """What one libvirt job-stats sample says, in the agent's units (bytes, bytes/s, ms)."""

    data_total: int = 0
    data_processed: int = 0
    data_remaining: int = 0
    memory_total: int = 0
    memory_processed: int = 0
    memory_remaining: int = 0
    memory_bps: int = 0
    dirty_rate_pages: int = 0          # pages/s (libvirt's memory_dirty_rate)
    page_size: int = 4096
    iteration: int = 0
    time_elapsed_ms: int = 0
    downtime_ms: int | None = None
    postcopy_requests: int = 0

    @property
    def dirty_rate_bps(self) -> int:
        return self.dirty_rate_pages * self.page_size

    # The percent is taken over libvirt's data figures (memory plus disks), as Vdsm's is: with a
    # data_total of 0 nothing is known yet and progress is 0, even if memory figures are present
    # (falling back to them showed 50% before the job had really started).
    @property
    def total(self) -> int:
        return self.data_total

    @property
    def remaining(self) -> int:
        return self.data_remaining


def figures_from_job_stats(stats: dict) -> JobFigures:
    """libvirt's jobStats()/JOB_COMPLETED dict -> JobFigures (missing keys are 0/None)."""
    def g(key: str) -> int:
        value = stats.get(key, 0)
        return int(value) if isinstance(value, (int, float)) else 0

    downtime = stats.get("downtime")
    return JobFigures(
        data_total=g("data_total"), data_processed=g("data_processed"), data_remaining=g("data_remaining"),
        memory_total=g("memory_total"), memory_processed=g("memory_processed"),
        memory_remaining=g("memory_remaining"), memory_bps=g("memory_bps"),
        dirty_rate_pages=g("memory_dirty_rate"), page_size=g("memory_page_size") or 4096,
        iteration=g("memory_iteration"), time_elapsed_ms=g("time_elapsed"),
        downtime_ms=int(downtime) if isinstance(downtime, (int, float)) else None,
        postcopy_requests=g("memory_postcopy_requests"),
    )

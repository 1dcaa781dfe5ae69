"""What QEMU's own query-migrate adds to libvirt's job stats (pure: a QMP answer in, a number out).

libvirt's job stats do not carry QEMU's `dirty-sync-missed-zero-copy` (a "ram" stat of QEMU
7.1 and later): how many dirty syncs the kernel copied although zero-copy send was asked, e.g.
every one over loopback. The agent reads it during a zero-copy migration through the QEMU
monitor (ferry.agent.migration_watch, off the request path) and reports it in the migration
status as `dirtySyncMissedZeroCopy`. An older QEMU, a monitor answer without the stat or a
malformed one reads as unknown (None), never as an error.
"""
from __future__ import annotations

from typing import Any

QUERY_MIGRATE = {"execute": "query-migrate"}
MISSED_ZERO_COPY = "dirty-sync-missed-zero-copy"
ZEROCOPY_FLAG = "VIR_MIGRATE_ZEROCOPY"


def missed_zero_copy(answer: Any) -> int | None:
    """QEMU's dirty-sync-missed-zero-copy from a query-migrate answer ({"return": {"ram": ...}})."""
    ret = answer.get("return") if isinstance(answer, dict) else None
    ram = ret.get("ram") if isinstance(ret, dict) else None
    value = ram.get(MISSED_ZERO_COPY) if isinstance(ram, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def reads_missed_zero_copy(flag_names: tuple[str, ...], has_monitor: bool) -> bool:
    """Whether a job asks QEMU for the count: only zero-copy migrations, and only with a monitor
    channel (each QMP command through libvirt marks the domain tainted 'custom-monitor')."""
    return has_monitor and ZEROCOPY_FLAG in flag_names

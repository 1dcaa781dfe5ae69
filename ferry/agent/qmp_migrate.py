"""What QEMU's own query-migrate adds to libvirt's job stats (pure: a QMP answer in, a number out).

libvirt's job stats do not carry QEMU's `dirty-sync-missed-zero-copy` (a "ram" stat of QEMU
7.1 and later): how many dirty syncs the kernel copied although zero-copy send was asked, e.g.
every one over loopback. The agent reads it during a zero-copy migration through the QEMU
monitor (ferry.agent.migration_watch, off the request path) and reports it in the migration
status as `dirtySyncMissedZeroCopy`. An older QEMU, a monitor answer without the stat or a
malformed one reads as unknown (None), never as an error.

It does not carry post-copy's switch-over pause either: libvirt reports `downtime` only for a
pre-copy migration's completed job (none for one that switched, measured on QEMU 10.0.2 /
libvirt 11.3: the destination's completed stats are empty). QEMU's query-migrate on the source
does, from the moment post-copy is active: `downtime`, the ms the guest was stopped until the
destination could run it (its device state and the switch-over package sent). The agent reads
it once after the switch (`postcopy_downtime`) and reports it as the migration's downtime.
"""
from __future__ import annotations

from typing import Any

QUERY_MIGRATE = {"execute": "query-migrate"}
MISSED_ZERO_COPY = "dirty-sync-missed-zero-copy"
ZEROCOPY_FLAG = "VIR_MIGRATE_ZEROCOPY"
POSTCOPY_DOWNTIME_STATES = ("postcopy-active", "postcopy-paused", "postcopy-recover", "completed")


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


def postcopy_downtime(answer: Any) -> int | None:
    """QEMU's `downtime` (ms) from a query-migrate answer once post-copy is active or done;
    before that QEMU gives only `expected-downtime`, which is no switch-over and reads as None."""
    ret = answer.get("return") if isinstance(answer, dict) else None
    if not isinstance(ret, dict) or ret.get("status") not in POSTCOPY_DOWNTIME_STATES:
        return None
    value = ret.get("downtime")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value

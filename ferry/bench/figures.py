"""What one migration measured, read from QEMU's own numbers (pure).

Time, downtime, bytes and iterations come from the destination's completed-job statistics
(libvirt keeps them on the domain that arrived), the same source for a migration Ferry drove
and one bare virsh drove, so the two are compared on equal terms. Throughput is guest memory
moved over QEMU's own migration time. Zero-copy: QEMU's `zero-copy-send` capability says it
asked the kernel for MSG_ZEROCOPY; `dirty-sync-missed-zero-copy` counts the dirty syncs in which
the kernel copied anyway (it always does over loopback), so zero-copy really engaged only when
the capability was on and nothing was missed.
"""
from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class JobFigures:
    total_ms: int | None
    downtime_ms: int | None
    setup_ms: int | None
    memory_bytes: int | None
    data_bytes: int | None
    iterations: int | None

    @property
    def throughput_mib_s(self) -> float | None:
        if not self.memory_bytes or not self.total_ms:
            return None
        return self.memory_bytes / MIB / (self.total_ms / 1000.0)

    def to_dict(self) -> dict:
        return {"total_ms": self.total_ms, "downtime_ms": self.downtime_ms, "setup_ms": self.setup_ms,
                "memory_bytes": self.memory_bytes, "data_bytes": self.data_bytes,
                "iterations": self.iterations,
                "throughput_mib_s": None if self.throughput_mib_s is None else round(self.throughput_mib_s, 1)}


def _int(stats: dict, key: str) -> int | None:
    value = stats.get(key)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def figures_from_completed(stats: dict) -> JobFigures:
    """libvirt's completed job statistics (virDomainGetJobStats, COMPLETED) -> figures."""
    return JobFigures(total_ms=_int(stats, "time_elapsed"), downtime_ms=_int(stats, "downtime"),
                      setup_ms=_int(stats, "setup_time"),
                      memory_bytes=_int(stats, "memory_processed"), data_bytes=_int(stats, "data_processed"),
                      iterations=_int(stats, "memory_iteration"))


ENGAGED, COPIED, OFF, UNKNOWN, UNSEEN = "engaged", "kernel copied", "off", "unknown", "not observed"
# The first dirty sync happens before any page is sent; multifd flushes (and QEMU counts the
# kernel's copies) at every later one, so the counter means something from sync 2 on.
SYNCS_BEFORE_COUNTING = 2


@dataclass(frozen=True)
class ZeroCopyObservation:
    """What the source QEMU said while the migration ran."""

    capability: bool | None       # zero-copy-send in query-migrate-capabilities; None: not seen
    missed: int | None            # highest dirty-sync-missed-zero-copy seen; None: not reported
    multifd_bytes: int | None     # highest ram multifd-bytes seen
    samples: int = 0
    syncs: int | None = None      # highest dirty-sync-count seen

    @property
    def state(self) -> str:
        if self.capability is None:
            return UNKNOWN
        if not self.capability:
            return OFF
        if self.missed is None:
            return UNKNOWN
        if self.missed > 0:
            return COPIED
        if (self.syncs or 0) < SYNCS_BEFORE_COUNTING:
            return UNSEEN
        return ENGAGED

    @property
    def engaged(self) -> bool:
        return self.state == ENGAGED

    def to_dict(self) -> dict:
        return {"zero_copy_send": self.capability, "dirty_sync_missed_zero_copy": self.missed,
                "multifd_bytes": self.multifd_bytes, "samples": self.samples, "dirty_syncs": self.syncs,
                "state": self.state,
                "engaged": self.engaged}


def merge_query_migrate(seen: ZeroCopyObservation, answer: dict) -> ZeroCopyObservation:
    """Fold one query-migrate answer into what was seen (counters only grow)."""
    ram = answer.get("ram") or {}
    return ZeroCopyObservation(
        seen.capability,
        _max(seen.missed, ram.get("dirty-sync-missed-zero-copy")),
        _max(seen.multifd_bytes, ram.get("multifd-bytes")),
        seen.samples + 1,
        _max(seen.syncs, ram.get("dirty-sync-count")),
    )


def merge_capability(seen: ZeroCopyObservation, capability: bool | None) -> ZeroCopyObservation:
    """Fold one reading of zero-copy-send taken while the migration was active: on if ever on."""
    if capability is None:
        return seen
    value = capability if seen.capability is None else (seen.capability or capability)
    return ZeroCopyObservation(value, seen.missed, seen.multifd_bytes, seen.samples, seen.syncs)


def capability_from(answer: list) -> bool | None:
    """zero-copy-send's state from a query-migrate-capabilities answer."""
    for cap in answer or []:
        if cap.get("capability") == "zero-copy-send":
            return bool(cap.get("state"))
    return None


def _max(a: int | None, b) -> int | None:
    if not isinstance(b, int) or isinstance(b, bool):
        return a
    return b if a is None else max(a, b)

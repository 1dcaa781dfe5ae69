"""Audit events the engine records, with oVirt's AuditLogType names, ids and meanings.

Admins who know oVirt search their logs for these ids (62 started, 63 done, 65 failed, ...),
so Ferry keeps them. Formatting is pure; the store persists the result.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Severity(str, Enum):
    NORMAL = "normal"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class AuditType:
    name: str
    code: int
    severity: Severity
    template: str  # str.format fields: vm, source, destination, user, duration, ...


VM_MIGRATION_START = AuditType(
    "VM_MIGRATION_START", 62, Severity.NORMAL,
    "Migration started (VM: {vm}, Source: {source}, Destination: {destination}, User: {user}).",
)
VM_MIGRATION_DONE = AuditType(
    "VM_MIGRATION_DONE", 63, Severity.NORMAL,
    "Migration completed (VM: {vm}, Source: {source}, Destination: {destination}, "
    "Duration: {duration}, Total: {total}, Actual downtime: {downtime}).",
)
VM_MIGRATION_ABORT = AuditType(
    "VM_MIGRATION_ABORT", 64, Severity.ERROR,
    "Migration failed: {reason} (VM: {vm}, Source: {source}, Destination: {destination}).",
)
VM_MIGRATION_FAILED = AuditType(
    "VM_MIGRATION_FAILED", 65, Severity.ERROR,
    "Migration failed{due_to} (VM: {vm}, Source: {source}).",
)
VM_MIGRATION_TRYING_RERUN = AuditType(
    "VM_MIGRATION_TRYING_RERUN", 128, Severity.WARNING,
    "Failed to migrate VM {vm} to Host {destination}{due_to}. Trying to migrate to another Host.",
)
VM_CANCEL_MIGRATION = AuditType(
    "VM_CANCEL_MIGRATION", 161, Severity.NORMAL,
    "Migration cancelled (VM: {vm}, Source: {source}, User: {user}).",
)
# The reference facts name this event but give no number; 166 is the id we recall from oVirt 4.x
# and is not verified against its sources.
VM_MIGRATION_NO_VDS_TO_MIGRATE_TO = AuditType(
    "VM_MIGRATION_NO_VDS_TO_MIGRATE_TO", 166, Severity.WARNING,
    "No available host was found to migrate VM {vm} to{due_to}.",
)
# Ferry's own, outside oVirt's numbering: the planner changed what the admin set.
FERRY_MIGRATION_PLAN_ADJUSTED = AuditType(
    "FERRY_MIGRATION_PLAN_ADJUSTED", 9100, Severity.NORMAL,
    "Migration of VM {vm} adjusted: {changes}.",
)


# Host maintenance (issue 15), oVirt's AuditLogType names and ids (ovirt-engine 4.5):
# USER_VDS_MAINTENANCE 600 / USER_VDS_MAINTENANCE_WITHOUT_REASON 620 (maintenance asked),
# VDS_MAINTENANCE 15 (done), VDS_MAINTENANCE_FAILED 17, USER_VDS_MAINTENANCE_MIGRATION_FAILED 602
# (a VM could not be moved), VM_MIGRATION_FAILED_DURING_MOVE_TO_MAINTENANCE 140,
# VM_MIGRATION_FAILED_DURING_MOVE_TO_MAINTENANCE_NO_DESTINATION_VDS 1111, VDS_ACTIVATE 16.
# The texts are Ferry's own. `host_name` is the host's name in them.
USER_VDS_MAINTENANCE = AuditType(
    "USER_VDS_MAINTENANCE", 600, Severity.NORMAL,
    "Maintenance of host {host_name} asked by {user} (reason: {reason}); {count} VM(s) to migrate.",
)
USER_VDS_MAINTENANCE_WITHOUT_REASON = AuditType(
    "USER_VDS_MAINTENANCE_WITHOUT_REASON", 620, Severity.NORMAL,
    "Maintenance of host {host_name} asked by {user}; {count} VM(s) to migrate.",
)
VDS_MAINTENANCE = AuditType(
    "VDS_MAINTENANCE", 15, Severity.NORMAL,
    "Host {host_name} is in maintenance ({count} VM(s) migrated away in {duration}).",
)
VDS_MAINTENANCE_FAILED = AuditType(
    "VDS_MAINTENANCE_FAILED", 17, Severity.ERROR,
    "Host {host_name} could not go to maintenance{due_to}.",
)
USER_VDS_MAINTENANCE_MIGRATION_FAILED = AuditType(
    "USER_VDS_MAINTENANCE_MIGRATION_FAILED", 602, Severity.WARNING,
    "Host {host_name} stays PREPARING_FOR_MAINTENANCE: VM {vm} cannot be migrated away ({reason}); "
    "migrate or stop it, or cancel the maintenance.",
)
VM_MIGRATION_FAILED_DURING_MOVE_TO_MAINTENANCE = AuditType(
    "VM_MIGRATION_FAILED_DURING_MOVE_TO_MAINTENANCE", 140, Severity.ERROR,
    "Migration of VM {vm} away from host {host_name} (maintenance) failed{due_to}.",
)
VM_MIGRATION_FAILED_DURING_MOVE_TO_MAINTENANCE_NO_DESTINATION_VDS = AuditType(
    "VM_MIGRATION_FAILED_DURING_MOVE_TO_MAINTENANCE_NO_DESTINATION_VDS", 1111, Severity.ERROR,
    "No host to migrate VM {vm} to while host {host_name} goes to maintenance{due_to}.",
)
VDS_ACTIVATE = AuditType(
    "VDS_ACTIVATE", 16, Severity.NORMAL,
    "Host {host_name} was activated by {user}.",
)
# Ferry's own, outside oVirt's numbering (oVirt cannot cancel or pause a maintenance, and just
# fails a migration whose zero-copy cannot start).
FERRY_MAINTENANCE_CANCELLED = AuditType(
    "FERRY_MAINTENANCE_CANCELLED", 9101, Severity.NORMAL,
    "Maintenance of host {host_name} cancelled by {user}: {dropped} queued migration(s) dropped, "
    "{running} running {what}.",
)
FERRY_DRAIN_PAUSED = AuditType(
    "FERRY_DRAIN_PAUSED", 9102, Severity.NORMAL,
    "Drain of host {host_name} paused by {user}: no new migration starts; running ones go on.",
)
FERRY_DRAIN_RESUMED = AuditType(
    "FERRY_DRAIN_RESUMED", 9103, Severity.NORMAL,
    "Drain of host {host_name} resumed by {user}.",
)
FERRY_MIGRATION_FORCE_COMPLETE = AuditType(
    "FERRY_MIGRATION_FORCE_COMPLETE", 9104, Severity.NORMAL,
    "Migration of VM {vm} forced to complete by {user}: {how}.",
)
FERRY_ZEROCOPY_RETRY = AuditType(
    "FERRY_ZEROCOPY_RETRY", 9105, Severity.WARNING,
    "Migration of VM {vm} to {destination} failed at start with zero-copy ({reason}); "
    "retrying at once on the same host without zero-copy.",
)

ALL = (
    VM_MIGRATION_START, VM_MIGRATION_DONE, VM_MIGRATION_ABORT, VM_MIGRATION_FAILED,
    VM_MIGRATION_TRYING_RERUN, VM_CANCEL_MIGRATION, VM_MIGRATION_NO_VDS_TO_MIGRATE_TO,
    FERRY_MIGRATION_PLAN_ADJUSTED,
    USER_VDS_MAINTENANCE, USER_VDS_MAINTENANCE_WITHOUT_REASON, VDS_MAINTENANCE, VDS_MAINTENANCE_FAILED,
    USER_VDS_MAINTENANCE_MIGRATION_FAILED, VM_MIGRATION_FAILED_DURING_MOVE_TO_MAINTENANCE,
    VM_MIGRATION_FAILED_DURING_MOVE_TO_MAINTENANCE_NO_DESTINATION_VDS, VDS_ACTIVATE,
    FERRY_MAINTENANCE_CANCELLED, FERRY_DRAIN_PAUSED, FERRY_DRAIN_RESUMED, FERRY_MIGRATION_FORCE_COMPLETE,
    FERRY_ZEROCOPY_RETRY,
)
BY_CODE = {t.code: t for t in ALL}


def format_message(kind: AuditType, **fields: object) -> str:
    """The event's text; a missing field shows as '?', never raises, and an empty or
    missing `reason` leaves no dangling ' due to' behind."""
    values = {k: ("?" if v is None else v) for k, v in fields.items()}
    reason = fields.get("reason")
    values.setdefault("due_to", f" due to: {reason}" if reason else "")
    values.setdefault("reason", "unknown reason")

    class _Missing(dict):
        def __missing__(self, key: str) -> str:
            return "?"

    return kind.template.format_map(_Missing(values))


def format_duration(seconds: float | None) -> str:
    """oVirt-style short duration: '850 ms', '12 s', '3 min 4 s'."""
    if seconds is None:
        return "?"
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs} s"

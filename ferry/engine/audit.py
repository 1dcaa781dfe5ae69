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

ALL = (
    VM_MIGRATION_START, VM_MIGRATION_DONE, VM_MIGRATION_ABORT, VM_MIGRATION_FAILED,
    VM_MIGRATION_TRYING_RERUN, VM_CANCEL_MIGRATION, VM_MIGRATION_NO_VDS_TO_MIGRATE_TO,
    FERRY_MIGRATION_PLAN_ADJUSTED,
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

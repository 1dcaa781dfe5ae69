"""A migration job's state and status: what VM.getMigrationStatus answers.

The agent builds a `MigrationStatus` from its job and sends `to_wire()`; the engine reads the
answer with `MigrationStatus.from_wire`. The wire form is Vdsm-like camelCase JSON and stays
key for key what Ferry's agents have always sent, in three shapes: an outgoing job (every
figure, and the optional ones only once known), an incoming one (who, state, since when) and
"idle" (the agent has no migration of that VM). `from_wire` is lenient, as a reader of other
agents' answers must be: a key that is missing or of the wrong type reads as unknown (None),
never as an error, and `reported` keeps which figures the agent did send.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    """States of an agent's migration job: pending -> waiting (destination busy) -> running ->
    succeeded | failed | cancelled | aborted (the schedule's abort action)."""

    PENDING = "pending"
    WAITING = "waiting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ABORTED = "aborted"
    EXPIRED = "expired"    # incoming only: the migration announced never arrived
    IDLE = "idle"          # the agent knows no migration of the VM
    UNKNOWN = "unknown"    # an answer without a state Ferry knows

    @property
    def final(self) -> bool:
        return self in FINAL_STATES

    @property
    def active(self) -> bool:
        return self in ACTIVE_STATES


FINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.ABORTED})
ACTIVE_STATES = frozenset({JobState.PENDING, JobState.WAITING, JobState.RUNNING})

OUTGOING, INCOMING = "outgoing", "incoming"

# Wire key -> attribute, in the order an outgoing job's status lists them. Units: bytes,
# bytes/s, ms, epoch seconds.
WIRE_KEYS = {
    "vmID": "vm_id", "version": "version", "state": "state", "direction": "direction",
    "message": "message", "error": "error", "progress": "progress", "dst": "dst",
    "startedAt": "started_at", "endedAt": "ended_at",
    # Ferry extension: when virDomainMigrateToURI3 was called and returned (epoch s)
    "migrationStartedAt": "migration_started_at", "migrationReturnedAt": "migration_returned_at",
    "iteration": "iteration", "dataTotal": "data_total", "dataProcessed": "data_processed",
    "dataRemaining": "data_remaining", "memoryTotal": "memory_total",
    "memoryProcessed": "memory_processed", "memoryRemaining": "memory_remaining",
    "bandwidth": "bandwidth_bps", "dirtyRate": "dirty_rate_bps", "timeElapsed": "time_elapsed_ms",
    "maxDowntime": "max_downtime_ms", "postcopy": "postcopy", "downtime": "downtime_ms",
    "totalTime": "total_time_ms", "bytesTransferred": "bytes_transferred", "flags": "flags",
    "typedParams": "typed_params", "destinationUri": "destination_uri", "notes": "notes",
    "warnings": "warnings", "scheduleActions": "schedule_actions",
    "unrecognizedParams": "unrecognized_params",
    # Ferry extension, only when the agent read it from QEMU (query-migrate over QMP) during a
    # zero-copy migration: dirty syncs in which the kernel copied although zero-copy was asked
    "dirtySyncMissedZeroCopy": "dirty_sync_missed_zero_copy",
    # Ferry extension, once the agent read it from QEMU after a switch to post-copy: the
    # switch-over's pause (ms), which libvirt does not report; also `downtime` when final
    "postcopyDowntime": "postcopy_downtime_ms",
    # Ferry extension, once the job stats showed one: the highest auto-converge throttle (%)
    "autoConvergeThrottleMax": "auto_converge_throttle_max",
}
_OPTIONAL_KEYS = frozenset({"dirtySyncMissedZeroCopy", "postcopyDowntime",
                            "autoConvergeThrottleMax"})   # left out of the answer while unknown
_INCOMING_KEYS = ("vmID", "state", "direction", "progress", "startedAt", "endedAt", "message")
_IDLE_KEYS = ("vmID", "state", "direction", "progress", "message")
_NUMBERS = ("version", "progress", "started_at", "ended_at", "migration_started_at", "migration_returned_at",
            "iteration", "data_total", "data_processed", "data_remaining", "memory_total", "memory_processed",
            "memory_remaining", "bandwidth_bps", "dirty_rate_bps", "time_elapsed_ms", "max_downtime_ms",
            "downtime_ms", "total_time_ms", "bytes_transferred", "dirty_sync_missed_zero_copy",
            "postcopy_downtime_ms", "auto_converge_throttle_max")
_TEXTS = ("vm_id", "direction", "message", "error", "dst", "destination_uri")
_LISTS = ("flags", "notes", "warnings", "schedule_actions", "unrecognized_params")


@dataclass(frozen=True)
class MigrationStatus:
    state: JobState
    vm_id: str | None = None
    version: int | None = None             # Ferry's long-poll extension; None from other agents
    direction: str | None = None           # "outgoing", "incoming", None when idle
    message: str | None = None
    error: str | None = None
    progress: int = 0
    dst: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    migration_started_at: float | None = None
    migration_returned_at: float | None = None
    iteration: int | None = None
    data_total: int | None = None
    data_processed: int | None = None
    data_remaining: int | None = None
    memory_total: int | None = None
    memory_processed: int | None = None
    memory_remaining: int | None = None
    bandwidth_bps: int | None = None
    dirty_rate_bps: int | None = None
    time_elapsed_ms: int | None = None
    max_downtime_ms: int | None = None
    postcopy: bool = False
    downtime_ms: int | None = None         # the switch-over's, once the job is final
    total_time_ms: int | None = None
    bytes_transferred: int | None = None
    flags: tuple[str, ...] = ()
    typed_params: dict[str, Any] = field(default_factory=dict)
    destination_uri: str | None = None
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    schedule_actions: tuple[dict, ...] = ()  # {n, action, at, ok[, error]} in the order run
    unrecognized_params: tuple[str, ...] = ()
    dirty_sync_missed_zero_copy: int | None = None   # QEMU's count (QMP), zero-copy migrations only
    postcopy_downtime_ms: int | None = None          # QEMU's switch-over pause into post-copy (QMP)
    auto_converge_throttle_max: int | None = None    # the highest vCPU throttle % the job stats showed
    # The attributes the answer carried (from_wire); what an older agent leaves out is not 0.
    reported: frozenset[str] = field(default=frozenset(), compare=False)

    @classmethod
    def idle(cls, vm_id: str) -> MigrationStatus:
        return cls(JobState.IDLE, vm_id=vm_id, message="no migration")

    def to_wire(self) -> dict:
        """The JSON answer, in the shape of its direction (see the module docstring)."""
        keys = (_INCOMING_KEYS if self.direction == INCOMING else
                WIRE_KEYS if self.direction == OUTGOING else _IDLE_KEYS)
        return {key: _plain(getattr(self, WIRE_KEYS[key])) for key in keys
                if key not in _OPTIONAL_KEYS or getattr(self, WIRE_KEYS[key]) is not None}

    @classmethod
    def from_wire(cls, raw: Any) -> MigrationStatus:
        """An agent's answer read leniently: wrong types read as unknown, never raise."""
        raw = raw if isinstance(raw, dict) else {}
        values: dict[str, Any] = {}
        for key, attr in WIRE_KEYS.items():
            if key not in raw:
                continue
            value = raw[key]
            if attr in _NUMBERS:
                value = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
            elif attr in _TEXTS:
                value = value if isinstance(value, str) else None
            elif attr in _LISTS:
                value = tuple(value) if isinstance(value, (list, tuple)) else ()
            values[attr] = value
        values["state"] = _state(raw.get("state"))
        if not isinstance(values.get("version"), int):
            values["version"] = None                 # a version is a whole number, never 4.0
        if not isinstance(values.get("postcopy", False), bool):
            values["postcopy"] = False
        if not isinstance(values.get("typed_params", {}), dict):
            values["typed_params"] = {}
        if values.get("progress") is None:
            values["progress"] = 0
        reported = frozenset(WIRE_KEYS[k] for k in raw if k in WIRE_KEYS)
        return cls(**values, reported=reported)


def _state(value: Any) -> JobState:
    try:
        return JobState(value)
    except ValueError:
        return JobState.UNKNOWN


def _plain(value: Any) -> Any:
    if isinstance(value, JobState):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value

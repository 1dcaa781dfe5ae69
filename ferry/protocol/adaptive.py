"""The `adaptive` VM.migrate parameter: Ferry's forecast-driven convergence (beyond oVirt).

Why a separate key and not new schedule actions: an agent that predates it must still migrate
safely. The engine sends `adaptive` *beside* a plain `convergenceSchedule` (the fallback):
an older agent logs `adaptive` as not recognized and runs the fallback schedule, as it runs any
policy's; an agent that knows it ignores the fallback's stalling steps and decides itself,
poll by poll, from the job's own figures (`ferry.agent.adaptive`).

Wire form (all optional but `maxDowntimeMs`):
`{maxDowntimeMs, initialDowntimeMs, allowPostcopy, maxThrottlePct, maxSecondsPerGiB,
dirtyRateMiBs, touchedMiB}`; `dirtyRateMiBs` and `touchedMiB` are what VM.getDirtyRate measured
before the start (the dirty rate, and the memory the guest has touched), which let the agent
judge the migration before the first pass has ended: QEMU's remaining data counts untouched
(zero) pages too, which cost almost nothing to send.
"""
from __future__ import annotations

from dataclasses import dataclass

from ferry.common.errors import InvalidInput
from ferry.protocol.schedule import MAX_DOWNTIME_MS

ADAPTIVE_PARAM = "adaptive"
DEFAULT_MAX_DOWNTIME_MS = 2000
DEFAULT_INITIAL_DOWNTIME_MS = 300        # QEMU's own default limit
DEFAULT_MAX_THROTTLE_PCT = 99            # QEMU's max-cpu-throttle default
DEFAULT_MAX_SECONDS_PER_GIB = 64         # Vdsm's migration_max_time_per_gib_mem
_KEYS = ("maxDowntimeMs", "initialDowntimeMs", "allowPostcopy", "maxThrottlePct", "maxSecondsPerGiB",
         "dirtyRateMiBs", "touchedMiB")


@dataclass(frozen=True)
class AdaptiveSpec:
    """The bounds the agent's adaptive decisions stay within."""

    max_downtime_ms: int = DEFAULT_MAX_DOWNTIME_MS
    initial_downtime_ms: int = DEFAULT_INITIAL_DOWNTIME_MS
    allow_postcopy: bool = True          # the engine's view (no parallel connections, VM running)
    max_throttle_pct: int = DEFAULT_MAX_THROTTLE_PCT
    max_seconds_per_gib: int = DEFAULT_MAX_SECONDS_PER_GIB   # the time bound: s per GiB of memory
    dirty_rate_mibs: float | None = None  # measured before the start, if the engine has it
    touched_mib: float | None = None      # the same: the guest's touched memory

    def __post_init__(self) -> None:
        _int(self.max_downtime_ms, "adaptive.maxDowntimeMs", 1, MAX_DOWNTIME_MS)
        _int(self.initial_downtime_ms, "adaptive.initialDowntimeMs", 1, MAX_DOWNTIME_MS)
        if self.initial_downtime_ms > self.max_downtime_ms:
            raise InvalidInput("adaptive.initialDowntimeMs",
                               f"must not exceed maxDowntimeMs ({self.max_downtime_ms}), got {self.initial_downtime_ms}")
        if not isinstance(self.allow_postcopy, bool):
            raise InvalidInput("adaptive.allowPostcopy", f"must be true or false, got {self.allow_postcopy!r}")
        _int(self.max_throttle_pct, "adaptive.maxThrottlePct", 1, 99)
        _int(self.max_seconds_per_gib, "adaptive.maxSecondsPerGiB", 1, 86_400)
        rate = self.dirty_rate_mibs
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float) or not rate >= 0):
            raise InvalidInput("adaptive.dirtyRateMiBs", f"must be a number >= 0, got {rate!r}")
        t = self.touched_mib
        if t is not None and (isinstance(t, bool) or not isinstance(t, int | float) or not t >= 0):
            raise InvalidInput("adaptive.touchedMiB", f"must be a number >= 0, got {t!r}")

    def budget_seconds(self, memory_mib: float) -> float:
        """The time bound of one migration of a guest of `memory_mib` (at least 10 s)."""
        return max(10.0, self.max_seconds_per_gib * memory_mib / 1024)

    def to_wire(self) -> dict:
        wire = {"maxDowntimeMs": self.max_downtime_ms, "initialDowntimeMs": self.initial_downtime_ms,
                "allowPostcopy": self.allow_postcopy, "maxThrottlePct": self.max_throttle_pct,
                "maxSecondsPerGiB": self.max_seconds_per_gib}
        if self.dirty_rate_mibs is not None:
            wire["dirtyRateMiBs"] = self.dirty_rate_mibs
        if self.touched_mib is not None:
            wire["touchedMiB"] = self.touched_mib
        return wire

    @classmethod
    def from_wire(cls, raw, field: str = ADAPTIVE_PARAM) -> AdaptiveSpec:
        """The wire object -> AdaptiveSpec; bad shapes raise InvalidInput naming the field."""
        if not isinstance(raw, dict):
            raise InvalidInput(field, f"must be an object with maxDowntimeMs, got {raw!r}")
        unknown = sorted(set(raw) - set(_KEYS))
        if unknown:
            raise InvalidInput(f"{field}.{unknown[0]}", f"unknown key (known: {', '.join(_KEYS)})")
        if "maxDowntimeMs" not in raw:
            raise InvalidInput(f"{field}.maxDowntimeMs", "is required (the policy's maximum downtime, ms)")
        values = {}
        for key, attr in (("maxDowntimeMs", "max_downtime_ms"), ("initialDowntimeMs", "initial_downtime_ms"),
                          ("maxThrottlePct", "max_throttle_pct"), ("maxSecondsPerGiB", "max_seconds_per_gib")):
            if raw.get(key) is not None:
                values[attr] = _as_int(raw[key], f"{field}.{key}")
        if raw.get("allowPostcopy") is not None:
            if not isinstance(raw["allowPostcopy"], bool):
                raise InvalidInput(f"{field}.allowPostcopy", f"must be true or false, got {raw['allowPostcopy']!r}")
            values["allow_postcopy"] = raw["allowPostcopy"]
        if raw.get("dirtyRateMiBs") is not None:
            values["dirty_rate_mibs"] = raw["dirtyRateMiBs"]
        if raw.get("touchedMiB") is not None:
            values["touched_mib"] = raw["touchedMiB"]
        if "initial_downtime_ms" not in values:
            values["initial_downtime_ms"] = min(DEFAULT_INITIAL_DOWNTIME_MS, values["max_downtime_ms"])
        return cls(**values)


def _as_int(value, field: str) -> int:
    if isinstance(value, bool):
        raise InvalidInput(field, f"must be an integer, got {value!r}")
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if not isinstance(value, int):
        raise InvalidInput(field, f"must be an integer, got {value!r}")
    return value


def _int(value, field: str, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise InvalidInput(field, f"must be {lo}..{hi}, got {value}")

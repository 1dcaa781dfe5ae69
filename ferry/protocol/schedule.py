"""Convergence schedule types: what to do to a migration that does not converge, and when.

The engine sends a schedule (Vdsm's wire form, `convergenceSchedule` in VM.migrate) built from
its policies; without one the agent uses the legacy downtime steps (`legacy_schedule`). The
agent runs it with `ferry.agent.schedule.ScheduleRunner`. Defined once here, so both sides mean
the same actions by the same names (ovirt-migration-facts §3).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ferry.common.errors import InvalidInput


class ActionName(StrEnum):
    """The actions a schedule may run (Vdsm's names)."""

    SET_DOWNTIME = "setDowntime"
    POSTCOPY = "postcopy"
    ABORT = "abort"


SET_DOWNTIME = ActionName.SET_DOWNTIME
POSTCOPY = ActionName.POSTCOPY
ABORT = ActionName.ABORT
ACTIONS = tuple(ActionName)

# Legacy schedule (no schedule sent): Vdsm's downtime steps.
LEGACY_MAX_DOWNTIME_MS = 500
LEGACY_DOWNTIME_STEPS = 5
# Vdsm keeps the full downtime for a long stretch of iterations before it gives up.
LEGACY_FINAL_DOWNTIME_LIMIT = 42
MAX_DOWNTIME_MS = 3_600_000  # an hour: anything above is a typo, not a policy


@dataclass(frozen=True)
class Action:
    """One schedule action; `downtime_ms` is set only for setDowntime."""

    name: str                       # one of ACTIONS
    downtime_ms: int | None = None

    @classmethod
    def from_params(cls, name: str, params=()) -> Action:
        """From the plain form {name, params}: setDowntime's one value is the downtime (ms)."""
        params = tuple(params or ())
        return cls(name, params[0] if params else None)

    @property
    def params(self) -> tuple:
        """The action's values as the plain form lists them: (ms,) for setDowntime, else ()."""
        return () if self.downtime_ms is None else (self.downtime_ms,)

    def __str__(self) -> str:
        return f"{self.name}({self.downtime_ms})" if self.name == SET_DOWNTIME else str(self.name)

    def to_wire(self) -> dict:
        return {"name": str(self.name), "params": [str(p) for p in self.params]}

    @classmethod
    def from_wire(cls, raw, field: str) -> Action:
        """Vdsm's {name, params: ["500"]}; bad shapes raise InvalidInput naming the field."""
        if not isinstance(raw, dict):
            raise InvalidInput(field, f"must be an object with name and params, got {raw!r}")
        name = raw.get("name")
        if name not in ACTIONS:
            raise InvalidInput(f"{field}.name", f"must be one of {', '.join(ACTIONS)}, got {name!r}")
        params = raw.get("params", [])
        if params is None:
            params = []
        if not isinstance(params, list):
            raise InvalidInput(f"{field}.params", f"must be a list, got {params!r}")
        if name == SET_DOWNTIME:
            if len(params) != 1:
                raise InvalidInput(f"{field}.params", f"setDowntime needs exactly one value (ms), got {params!r}")
            ms = _int(params[0], f"{field}.params[0]")
            if not 1 <= ms <= MAX_DOWNTIME_MS:
                raise InvalidInput(f"{field}.params[0]", f"downtime must be 1..{MAX_DOWNTIME_MS} ms, got {ms}")
            return cls(SET_DOWNTIME, ms)
        return cls(ActionName(name))


@dataclass(frozen=True)
class StallingStep:
    limit: int  # run when iterations since the first seen exceed this; -1 = on the next one
    action: Action

    def to_wire(self) -> dict:
        return {"limit": self.limit, "action": self.action.to_wire()}


@dataclass(frozen=True)
class Schedule:
    init: tuple[Action, ...] = ()
    stalling: tuple[StallingStep, ...] = ()
    legacy: bool = False

    @property
    def has_postcopy(self) -> bool:
        return any(a.name == POSTCOPY for a in self.init) or any(
            s.action.name == POSTCOPY for s in self.stalling
        )

    def without(self, name: str) -> tuple[Schedule, int]:
        """The schedule without the actions called `name`, and how many were dropped."""
        init = tuple(a for a in self.init if a.name != name)
        stalling = tuple(s for s in self.stalling if s.action.name != name)
        dropped = len(self.init) - len(init) + len(self.stalling) - len(stalling)
        return Schedule(init, stalling, self.legacy), dropped

    def to_wire(self) -> dict:
        return {"init": [a.to_wire() for a in self.init], "stalling": [s.to_wire() for s in self.stalling]}

    @classmethod
    def from_wire(cls, raw, field: str = "convergenceSchedule") -> Schedule:
        """Vdsm's wire form -> Schedule; bad shapes raise InvalidInput naming the field."""
        if not isinstance(raw, dict):
            raise InvalidInput(field, f"must be an object with init and stalling, got {raw!r}")
        init_raw = [] if raw.get("init") is None else raw["init"]   # {} or "" is not a list
        stalling_raw = [] if raw.get("stalling") is None else raw["stalling"]
        if not isinstance(init_raw, list):
            raise InvalidInput(f"{field}.init", f"must be a list, got {init_raw!r}")
        if not isinstance(stalling_raw, list):
            raise InvalidInput(f"{field}.stalling", f"must be a list, got {stalling_raw!r}")
        init = tuple(Action.from_wire(a, f"{field}.init[{i}]") for i, a in enumerate(init_raw))
        for i, a in enumerate(init):
            if a.name != SET_DOWNTIME:
                raise InvalidInput(f"{field}.init[{i}].name", f"only setDowntime can run at start, got {a.name}")
        stalling = []
        for i, item in enumerate(stalling_raw):
            f = f"{field}.stalling[{i}]"
            if not isinstance(item, dict):
                raise InvalidInput(f, f"must be an object with limit and action, got {item!r}")
            limit = _int(item.get("limit"), f"{f}.limit")
            if limit < -1:
                raise InvalidInput(f"{f}.limit", f"must be -1 or more, got {limit}")
            stalling.append(StallingStep(limit, Action.from_wire(item.get("action"), f"{f}.action")))
        return cls(init, tuple(stalling))


def _int(value, field: str) -> int:
    if isinstance(value, bool):
        raise InvalidInput(field, f"must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().removeprefix("-").isdigit():
        return int(value.strip())
    raise InvalidInput(field, f"must be an integer, got {value!r}")


def legacy_downtime_steps(max_downtime_ms: int = LEGACY_MAX_DOWNTIME_MS,
                          steps: int = LEGACY_DOWNTIME_STEPS) -> list[int]:
    """Vdsm's exponential downtime steps: 500 ms in 5 steps -> 101, 104, 120, 189, 500."""
    if steps <= 1:
        return [max_downtime_ms]
    offset = max_downtime_ms / steps
    base = (max_downtime_ms - offset) ** (1.0 / (steps - 1))
    return [int(offset + base**i) for i in range(steps)]


def legacy_schedule(max_downtime_ms: int = LEGACY_MAX_DOWNTIME_MS,
                    steps: int = LEGACY_DOWNTIME_STEPS) -> Schedule:
    """The schedule used when VM.migrate carries none (`downtime` sets the maximum)."""
    values = legacy_downtime_steps(max_downtime_ms, steps)
    stalling = [StallingStep(i, Action(SET_DOWNTIME, ms)) for i, ms in enumerate(values) if i > 0]
    stalling.append(StallingStep(LEGACY_FINAL_DOWNTIME_LIMIT, Action(SET_DOWNTIME, values[-1])))
    stalling.append(StallingStep(-1, Action(ABORT)))
    return Schedule((Action(SET_DOWNTIME, values[0]),), tuple(stalling), legacy=True)

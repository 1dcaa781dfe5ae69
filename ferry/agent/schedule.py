"""Convergence schedule: what to do to a migration that does not converge, and when.

The engine sends a schedule (Vdsm's wire form) in VM.migrate; without one the agent uses the
legacy downtime steps. `ScheduleRunner` is a pure state machine: the migration job feeds it the
memory iterations it sees (from libvirt's migration-iteration events and from job-stats polls)
and runs the actions it hands back. Rules (ovirt-migration-facts §3):

- every `init` action runs at start;
- the first iteration seen is the baseline; on each iteration that grew, n = iteration -
  baseline, and if the head stalling item's limit < n it runs and is popped -- at most one action
  per new iteration, so limit -1 fires on the next new iteration;
- a handed-out post-copy switch holds the schedule until the job says how it went: once
  post-copy has really started (libvirt's post-copy lifecycle event or the paused-for-post-copy
  state; `postcopy_started`) nothing else runs, as after an abort; if migrateStartPostCopy
  failed (`postcopy_failed`) the schedule goes on and the next item runs on the next new
  iteration, as Vdsm's monitor does ("the next action will be invoked after a while") -- which
  is why a policy puts an abort after its post-copy item.
"""
from __future__ import annotations

from dataclasses import dataclass

from ferry.common.errors import InvalidInput

SET_DOWNTIME = "setDowntime"
POSTCOPY = "postcopy"
ABORT = "abort"
ACTIONS = (SET_DOWNTIME, POSTCOPY, ABORT)

# Legacy schedule (no schedule sent): Vdsm's downtime steps.
LEGACY_MAX_DOWNTIME_MS = 500
LEGACY_DOWNTIME_STEPS = 5
# Vdsm keeps the full downtime for a long stretch of iterations before it gives up.
LEGACY_FINAL_DOWNTIME_LIMIT = 42
MAX_DOWNTIME_MS = 3_600_000  # an hour: anything above is a typo, not a policy


@dataclass(frozen=True)
class Action:
    """One schedule action; `downtime_ms` is set only for setDowntime."""

    name: str
    downtime_ms: int | None = None

    def __str__(self) -> str:
        return f"{self.name}({self.downtime_ms})" if self.name == SET_DOWNTIME else self.name

    def to_wire(self) -> dict:
        params = [str(self.downtime_ms)] if self.name == SET_DOWNTIME else []
        return {"name": self.name, "params": params}


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

    def to_wire(self) -> dict:
        return {"init": [a.to_wire() for a in self.init], "stalling": [s.to_wire() for s in self.stalling]}


def _int(value, field: str) -> int:
    if isinstance(value, bool):
        raise InvalidInput(field, f"must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise InvalidInput(field, f"must be an integer, got {value!r}")


def parse_action(raw, field: str) -> Action:
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
        return Action(SET_DOWNTIME, ms)
    return Action(name)


def parse_schedule(raw, field: str = "convergenceSchedule") -> Schedule:
    """Vdsm's wire form -> Schedule; bad shapes raise InvalidInput naming the field."""
    if not isinstance(raw, dict):
        raise InvalidInput(field, f"must be an object with init and stalling, got {raw!r}")
    init_raw = raw.get("init") or []
    stalling_raw = raw.get("stalling") or []
    if not isinstance(init_raw, list):
        raise InvalidInput(f"{field}.init", f"must be a list, got {init_raw!r}")
    if not isinstance(stalling_raw, list):
        raise InvalidInput(f"{field}.stalling", f"must be a list, got {stalling_raw!r}")
    init = tuple(parse_action(a, f"{field}.init[{i}]") for i, a in enumerate(init_raw))
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
        stalling.append(StallingStep(limit, parse_action(item.get("action"), f"{f}.action")))
    return Schedule(init, tuple(stalling))


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


class ScheduleRunner:
    """Pure state machine over one migration's iterations; it never calls libvirt itself."""

    def __init__(self, schedule: Schedule):
        self.schedule = schedule
        self._pending = list(schedule.stalling)
        self.baseline: int | None = None
        self.last_iteration: int | None = None
        self.finished = False      # post-copy started or aborted: no more actions
        self.postcopy_requested = False  # post-copy handed out, not yet known started or failed
        self.done: list[tuple[int | None, Action]] = []  # (n, action) in the order handed out

    def start(self) -> list[Action]:
        """Actions to run when the migration starts (the init list)."""
        actions = list(self.schedule.init)
        self.done.extend((None, a) for a in actions)
        return actions

    def on_iteration(self, iteration: int) -> Action | None:
        """Feed one observed memory iteration; returns the action to run now, if any."""
        if self.baseline is None:
            self.baseline = self.last_iteration = iteration
            return None
        if iteration <= self.last_iteration:
            return None  # the same iteration seen again (event and poll), or stale
        self.last_iteration = iteration
        if self.finished or self.postcopy_requested or not self._pending:
            return None
        n = iteration - self.baseline
        head = self._pending[0]
        if head.limit < n:
            self._pending.pop(0)
            self.done.append((n, head.action))
            if head.action.name == ABORT:
                self.finished = True
            elif head.action.name == POSTCOPY:
                self.postcopy_requested = True
            return head.action
        return None

    def postcopy_started(self) -> None:
        """Post-copy really runs (seen from libvirt): nothing else may run."""
        self.postcopy_requested = False
        self.finished = True

    def postcopy_failed(self) -> None:
        """The switch to post-copy failed: the schedule goes on with its next item."""
        if not self.finished:
            self.postcopy_requested = False

    @property
    def remaining(self) -> tuple[StallingStep, ...]:
        return tuple(self._pending)

"""The pre-copy model: iteration by iteration, what QEMU sends, when the schedule acts, how it ends.

Why a model and not a timeout: a migration of a busy guest either converges, is ended by its
schedule (abort or post-copy), or runs for ever; which of these happens follows from the data,
the dirty rate, the bandwidth and the schedule, so it can be said before the migration starts.

The model (all sizes MiB, rates MiB/s, B = bandwidth, r = dirty rate):

- iteration 0 sends the touched memory (untouched pages go as zero-page markers, taken as free);
- iteration n >= 1 sends what was dirtied during iteration n-1, W = the touched memory, bounded
  by it because a page dirtied twice is sent once: for a writer that moves on to new pages
  (`dirty_pattern` "linear", the worst case and the default) min(W, r_eff * t_{n-1}); for a
  writer of uniformly random pages ("random", like the lab's workload) the expected number of
  distinct pages, W * (1 - exp(-r_eff * t_{n-1} / W));
- after each iteration, if what is left (dirtied during it) can be sent within the downtime
  limit in force (left <= B * limit), QEMU stops the guest and sends it: downtime = left / B
  (plus `switchover_ms`), and the migration converges;
- the schedule (ovirt-migration-facts section 3): init sets the first limit (QEMU's default
  300 ms if none); at the start of iteration n >= 1, if the head stalling item's limit < n it
  fires (one item per iteration; limit -1 fires on the next iteration): setDowntime changes the
  limit from this iteration on, abort ends the migration there, postcopy switches to post-copy
  (the rest is pulled at B, downtime = `switchover_ms`);
- auto-converge follows QEMU's rule: when an iteration dirtied more than 50% of what it sent
  (throttle-trigger-threshold), a counter goes up; every second time the vCPU throttle starts at
  cpu-throttle-initial (20%) or rises by cpu-throttle-increment (10%), at most 99%, and the
  effective dirty rate is r * (1 - throttle);
- total time = the iterations + the final copy + the fixed libvirt costs around QEMU's own time
  (prepare and confirm: ~1.5 s in the lab, docs/benchmarks.md); an abort skips the confirm;
- a time limit (the agent's, Vdsm's max time per GiB) aborts when it is reached, mid-pass;
- the downtime is a range: up to the limit in force (QEMU's own switch-over test), down to the
  left-over at the final copy's speed (see `downtime_range`).

A migration nothing stops and that cannot converge (nothing left in the schedule, throttle at
its maximum or off, and the data not shrinking) never ends: outcome abort, total None, reason
"never converges". The low-high range reruns the model with the dirty rate's low/high bounds and
the bandwidth's relative spread (see ferry.forecast.bias).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ferry.common.errors import InvalidInput

CONVERGE, ABORT, POSTCOPY = "converge", "abort", "postcopy"
OUTCOMES = (CONVERGE, ABORT, POSTCOPY)
SET_DOWNTIME = "setDowntime"
ACTIONS = (SET_DOWNTIME, ABORT, POSTCOPY)

QEMU_DEFAULT_DOWNTIME_MS = 300        # QEMU's downtime-limit when nothing sets one
FIXED_COST_S = 1.5                    # libvirt's prepare + confirm around QEMU (docs/benchmarks.md: 1.6 s)
# Of it, what comes after QEMU's clock stops (libvirt's confirm, which stops the source, and
# the finish): libvirt's job clock (time_elapsed) starts before the destination's prepare, so
# little lies before it: in the lab 0.07-0.6 s (median 0.14 s) of the 1.3-2.6 s between the
# request and the end passed before time_elapsed began (bench forecast samples, 2026-12-02).
# An abort is a cancel: it pays only the part before.
FIXED_AFTER_FRACTION = 0.9
THROTTLE_INITIAL_PCT = 20             # QEMU cpu-throttle-initial default
THROTTLE_INCREMENT_PCT = 10           # QEMU cpu-throttle-increment default
THROTTLE_MAX_PCT = 99                 # QEMU max-cpu-throttle default
THROTTLE_TRIGGER_PCT = 50             # QEMU throttle-trigger-threshold default
THROTTLE_TRIGGER_COUNT = 2            # QEMU throttles on every second iteration over the threshold
MAX_ITERATIONS = 1000                 # a model guard: a shrinking migration converges long before
DEFAULT_BANDWIDTH_SPREAD = 0.10       # relative spread of a bandwidth figure, for the range
LINEAR, RANDOM = "linear", "random"   # dirty patterns
# QEMU checks for convergence between sends: a rate-limited migration sends one BUFFER_DELAY
# window (100 ms of its cap) per check, a free one for at most MAX_WAIT (50 ms) per check.
IN_PASS_CHUNK_CAPPED_S = 0.100
IN_PASS_CHUNK_FREE_S = 0.050
SWITCHOVER_SYNCS = 2     # the converging check's bitmap sync, then ram_save_complete's

ScheduleItem = tuple[int, str, "int | None"]   # (limit, action, setDowntime ms or None)


def _positive(value, field_name: str, *, zero_ok: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InvalidInput(field_name, f"must be a number, got {value!r}")
    if value < 0 or (value == 0 and not zero_ok):
        raise InvalidInput(field_name, f"must be {'>= 0' if zero_ok else '> 0'}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ForecastInputs:
    """Everything the model needs; sizes MiB, rates MiB/s, downtimes ms.

    `stalling` is the schedule in a neutral form, (limit, action, value) with action one of
    setDowntime / abort / postcopy and value the setDowntime ms (None otherwise), the policy's
    last items appended with limit -1, as the agent runs them.
    """

    memory_mib: float
    touched_mib: float
    dirty_rate_mibs: float
    bandwidth_mibs: float
    bandwidth_source: str = "cap"
    parallel: int = 0
    init_downtime_ms: int | None = None
    stalling: tuple[ScheduleItem, ...] = ()
    auto_converge: bool = False
    throttle_initial_pct: int = THROTTLE_INITIAL_PCT
    throttle_increment_pct: int = THROTTLE_INCREMENT_PCT
    fixed_cost_s: float = FIXED_COST_S
    switchover_ms: float = 0.0
    dirty_rate_low_mibs: float | None = None
    dirty_rate_high_mibs: float | None = None
    bandwidth_spread: float = DEFAULT_BANDWIDTH_SPREAD
    postcopy_allowed: bool = True
    max_seconds: float | None = None
    dirty_pattern: str = LINEAR
    # QEMU's convergence check (see `in_pass`): None = at each pass's end (the first model);
    # else the seconds of data QEMU sends between two checks (IN_PASS_CHUNK_CAPPED_S or _FREE_S)
    check_chunk_s: float | None = None
    # iterations the agent sees while the migration switches over (the converging check's own
    # bitmap sync and the completion's); 0 = none (the first model); QEMU's: SWITCHOVER_SYNCS
    switchover_syncs: int = 0
    # the final copy's speed: QEMU lifts the rate limit once the guest is stopped, so the rest
    # goes at what the hosts reach, not at the cap; None = the bandwidth (the first model)
    final_bandwidth_mibs: float | None = None
    # the link's speed, the one ceiling the final copy cannot pass (the downtime range's low)
    link_mibs: float | None = None

    def __post_init__(self) -> None:
        if self.dirty_pattern not in (LINEAR, RANDOM):
            raise InvalidInput("dirty_pattern", f"must be {LINEAR} or {RANDOM}, got {self.dirty_pattern!r}")
        _positive(self.memory_mib, "memory_mib")
        _positive(self.touched_mib, "touched_mib", zero_ok=True)
        if self.touched_mib > self.memory_mib:
            raise InvalidInput("touched_mib", f"cannot exceed memory_mib ({self.memory_mib}), got {self.touched_mib}")
        _positive(self.dirty_rate_mibs, "dirty_rate_mibs", zero_ok=True)
        _positive(self.bandwidth_mibs, "bandwidth_mibs")
        for name in ("dirty_rate_low_mibs", "dirty_rate_high_mibs", "max_seconds"):
            if getattr(self, name) is not None:
                _positive(getattr(self, name), name, zero_ok=name != "max_seconds")
        if self.dirty_rate_low_mibs is not None and self.dirty_rate_low_mibs > self.dirty_rate_mibs:
            raise InvalidInput("dirty_rate_low_mibs", "must not exceed dirty_rate_mibs")
        if self.dirty_rate_high_mibs is not None and self.dirty_rate_high_mibs < self.dirty_rate_mibs:
            raise InvalidInput("dirty_rate_high_mibs", "must not be below dirty_rate_mibs")
        if not 0 <= self.bandwidth_spread < 1:
            raise InvalidInput("bandwidth_spread", f"must be in [0, 1), got {self.bandwidth_spread!r}")
        _positive(self.fixed_cost_s, "fixed_cost_s", zero_ok=True)
        _positive(self.switchover_ms, "switchover_ms", zero_ok=True)
        if self.check_chunk_s is not None:
            _positive(self.check_chunk_s, "check_chunk_s")
        for name in ("final_bandwidth_mibs", "link_mibs"):
            if getattr(self, name) is not None:
                _positive(getattr(self, name), name)
        if isinstance(self.switchover_syncs, bool) or self.switchover_syncs not in (0, 1, 2):
            raise InvalidInput("switchover_syncs", f"must be 0, 1 or 2, got {self.switchover_syncs!r}")
        if isinstance(self.parallel, bool) or not isinstance(self.parallel, int) or self.parallel < 0:
            raise InvalidInput("parallel", f"must be an integer >= 0 (0 = one connection), got {self.parallel!r}")
        if self.init_downtime_ms is not None:
            _positive(self.init_downtime_ms, "init_downtime_ms")
        for pct_name in ("throttle_initial_pct", "throttle_increment_pct"):
            pct = getattr(self, pct_name)
            if isinstance(pct, bool) or not isinstance(pct, int) or not 1 <= pct <= THROTTLE_MAX_PCT:
                raise InvalidInput(pct_name, f"must be an integer 1..{THROTTLE_MAX_PCT}, got {pct!r}")
        for i, item in enumerate(self.stalling):
            _check_item(item, f"stalling[{i}]")

    @property
    def first_downtime_ms(self) -> float:
        return float(self.init_downtime_ms or QEMU_DEFAULT_DOWNTIME_MS)

    def to_wire(self) -> dict:
        return {
            "memoryMiB": self.memory_mib, "touchedMiB": self.touched_mib,
            "dirtyRateMiBs": self.dirty_rate_mibs,
            "dirtyRateRangeMiBs": {"low": self.dirty_low, "high": self.dirty_high},
            "bandwidthMiBs": self.bandwidth_mibs, "bandwidthSource": self.bandwidth_source,
            "bandwidthSpread": self.bandwidth_spread, "parallel": self.parallel,
            "initDowntimeMs": self.first_downtime_ms,
            "stalling": [{"limit": lim, "action": act, "value": val} for lim, act, val in self.stalling],
            "autoConverge": self.auto_converge,
            "throttleInitialPct": self.throttle_initial_pct, "throttleIncrementPct": self.throttle_increment_pct,
            "fixedCostSeconds": self.fixed_cost_s, "switchoverMs": self.switchover_ms,
            "postcopyAllowed": self.postcopy_allowed, "maxSeconds": self.max_seconds,
            "dirtyPattern": self.dirty_pattern, "checkChunkSeconds": self.check_chunk_s,
            "switchoverSyncs": self.switchover_syncs, "finalBandwidthMiBs": self.final_bandwidth_mibs,
            "linkMiBs": self.link_mibs,
        }

    @classmethod
    def from_wire(cls, w: dict) -> ForecastInputs:
        """The inputs back from `to_wire()` (a stored forecast, rerun with other physics)."""
        rng = w.get("dirtyRateRangeMiBs") or {}
        return cls(memory_mib=w["memoryMiB"], touched_mib=w["touchedMiB"], dirty_rate_mibs=w["dirtyRateMiBs"],
                   dirty_rate_low_mibs=rng.get("low"), dirty_rate_high_mibs=rng.get("high"),
                   bandwidth_mibs=w["bandwidthMiBs"], bandwidth_source=w.get("bandwidthSource", "cap"),
                   bandwidth_spread=w.get("bandwidthSpread", DEFAULT_BANDWIDTH_SPREAD),
                   parallel=w.get("parallel", 0), init_downtime_ms=w.get("initDowntimeMs"),
                   stalling=tuple((i["limit"], i["action"], i["value"]) for i in w.get("stalling") or ()),
                   auto_converge=w.get("autoConverge", False),
                   throttle_initial_pct=w.get("throttleInitialPct", THROTTLE_INITIAL_PCT),
                   throttle_increment_pct=w.get("throttleIncrementPct", THROTTLE_INCREMENT_PCT),
                   fixed_cost_s=w.get("fixedCostSeconds", FIXED_COST_S), switchover_ms=w.get("switchoverMs", 0.0),
                   postcopy_allowed=w.get("postcopyAllowed", True), max_seconds=w.get("maxSeconds"),
                   dirty_pattern=w.get("dirtyPattern", LINEAR), check_chunk_s=w.get("checkChunkSeconds"),
                   switchover_syncs=w.get("switchoverSyncs", 0), final_bandwidth_mibs=w.get("finalBandwidthMiBs"),
                   link_mibs=w.get("linkMiBs"))

    @property
    def dirty_low(self) -> float:
        return self.dirty_rate_mibs if self.dirty_rate_low_mibs is None else self.dirty_rate_low_mibs

    @property
    def dirty_high(self) -> float:
        return self.dirty_rate_mibs if self.dirty_rate_high_mibs is None else self.dirty_rate_high_mibs


def _check_item(item, where: str) -> None:
    if not isinstance(item, tuple) or len(item) != 3:
        raise InvalidInput(where, f"must be (limit, action, value), got {item!r}")
    limit, action, value = item
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < -1:
        raise InvalidInput(f"{where}.limit", f"must be an integer >= -1, got {limit!r}")
    if action not in ACTIONS:
        raise InvalidInput(f"{where}.action", f"must be one of {', '.join(ACTIONS)}, got {action!r}")
    if action == SET_DOWNTIME:
        _positive(value, f"{where}.value")
    elif value is not None:
        raise InvalidInput(f"{where}.value", f"only setDowntime takes a value, got {value!r}")


@dataclass(frozen=True)
class Step:
    """One iteration: data to send, its time, what is left after it, the limit in force, what fired."""

    iteration: int
    send_mib: float
    seconds: float
    remaining_mib: float
    downtime_limit_ms: float
    fires: str | None = None
    throttle_pct: int = 0
    dirty_rate_mibs: float = 0.0

    def to_wire(self) -> dict:
        return {"iteration": self.iteration, "sendMiB": round(self.send_mib, 3), "seconds": round(self.seconds, 3),
                "remainingMiB": round(self.remaining_mib, 3), "downtimeLimitMs": self.downtime_limit_ms,
                "fires": self.fires, "throttlePct": self.throttle_pct,
                "dirtyRateMiBs": round(self.dirty_rate_mibs, 3)}


@dataclass(frozen=True)
class Run:
    """One pass of the model with fixed rates: the outcome and its times (no range)."""

    outcome: str
    seconds: float | None          # QEMU's own time (no fixed costs); None = never ends
    downtime_ms: float | None
    steps: tuple[Step, ...]
    reason: str


@dataclass(frozen=True)
class Forecast:
    outcome: str
    total_seconds: float | None
    downtime_ms: float | None
    iterations: int
    low: float | None
    high: float | None
    inputs: ForecastInputs
    steps: tuple[Step, ...] = field(default=())
    reason: str = ""
    downtime_low_ms: float | None = None     # the downtime's range (see `downtime_range`)
    downtime_high_ms: float | None = None

    def to_wire(self) -> dict:
        """The `forecast` JSON object of issue 14 item 3."""
        return {"outcome": self.outcome, "totalSeconds": _round(self.total_seconds),
                "downtimeMs": _round(self.downtime_ms), "iterations": self.iterations,
                "downtimeRangeMs": {"low": _round(self.downtime_low_ms), "high": _round(self.downtime_high_ms)},
                "range": {"low": _round(self.low), "high": _round(self.high)},
                "inputs": self.inputs.to_wire(), "steps": [s.to_wire() for s in self.steps]}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


@dataclass(frozen=True)
class State:
    """Where a migration stands at the start of an iteration (for a live re-forecast too)."""

    iteration: int = 0
    send_mib: float | None = None      # None: the touched memory (iteration 0)
    downtime_ms: float | None = None   # None: the init downtime
    throttle_pct: int = 0
    high_count: int = 0
    pending: tuple[ScheduleItem, ...] | None = None   # None: the whole stalling list
    fire_now: bool = True              # False: this iteration's item has fired already
    # seconds the current pass has run already (a live re-forecast): what the guest dirtied
    # then is resent in the next pass too, so that pass is dirtied over this plus what is left
    pass_elapsed_s: float = 0.0


def dirtied(working_set_mib: float, written_mib: float, pattern: str = LINEAR) -> float:
    """Distinct MiB dirty after `written_mib` of writes into a working set (see the module doc)."""
    if working_set_mib <= 0:
        return 0.0
    if pattern == RANDOM:
        return working_set_mib * -math.expm1(-written_mib / working_set_mib)
    return min(working_set_mib, written_mib)


def in_pass_unsent(inp: ForecastInputs, send: float, threshold: float, bandwidth_mibs: float) -> float:
    """What is still unsent of a pass when QEMU checks for convergence (MiB).

    The first model checks at the pass's end (0 unsent). QEMU (migration_iteration_run) checks
    between sends: once the pass's pending estimate is under threshold = B x limit it syncs the
    dirty bitmap and switches over if everything pending fits, else that sync starts the next
    pass. The check comes one chunk of sends apart, so on average half a chunk under the
    threshold; a pass that starts under it is checked at once."""
    if inp.check_chunk_s is None:
        return 0.0
    return min(send, max(0.0, threshold - bandwidth_mibs * inp.check_chunk_s / 2))


def _abort_during_switchover(pending: list, n: int, syncs: int) -> int | None:
    """The iteration at which the schedule's abort fires while QEMU switches over, if any.

    The agent runs one schedule item per new iteration it sees; the converging check's bitmap
    sync and the completion's are iterations n+1 and n+2 to it. An abort among the items they
    fire reaches libvirt during the switch-over and cancels it."""
    items = list(pending)
    for m in range(n + 1, n + 1 + syncs):
        if items and items[0][0] < m:
            if items.pop(0)[1] == ABORT:
                return m
    return None


def simulate(inp: ForecastInputs, dirty_mibs: float, bandwidth_mibs: float, state: State = State()) -> Run:
    """Run the model from `state` at fixed rates; pure, bounded by MAX_ITERATIONS."""
    n = state.iteration
    send = inp.touched_mib if state.send_mib is None else state.send_mib
    limit_ms = inp.first_downtime_ms if state.downtime_ms is None else state.downtime_ms
    throttle, high = state.throttle_pct, state.high_count
    pending = list(inp.stalling if state.pending is None else state.pending)
    fire_now = state.fire_now
    carried_s = max(0.0, state.pass_elapsed_s)
    steps: list[Step] = []
    t = 0.0
    for _ in range(MAX_ITERATIONS):
        fired = None
        if fire_now and n >= 1 and pending and pending[0][0] < n:
            _limit, action, value = pending.pop(0)
            if action == SET_DOWNTIME:
                limit_ms, fired = float(value), f"setDowntime({value})"
            elif action == ABORT:
                steps.append(Step(n, send, 0.0, send, limit_ms, "abort", throttle, 0.0))
                return Run(ABORT, t, None, tuple(steps), f"the schedule aborts at iteration {n}")
            elif inp.postcopy_allowed:
                secs = send / bandwidth_mibs   # the rest is pulled once; nothing is resent
                steps.append(Step(n, send, secs, 0.0, limit_ms, "postcopy", throttle, 0.0))
                return Run(POSTCOPY, t + secs, inp.switchover_ms, tuple(steps),
                           f"the schedule switches to post-copy at iteration {n}")
            else:
                fired = "postcopy (not allowed here: skipped)"
        fire_now = True
        rate = dirty_mibs * (1 - throttle / 100)
        threshold = bandwidth_mibs * limit_ms / 1000
        unsent = in_pass_unsent(inp, send, threshold, bandwidth_mibs)
        secs = (send - unsent) / bandwidth_mibs
        if inp.max_seconds is not None and t + secs >= inp.max_seconds:
            steps.append(Step(n, send, inp.max_seconds - t, send, limit_ms, "abort (time limit)", throttle, rate))
            return Run(ABORT, inp.max_seconds, None, tuple(steps),
                       f"over the time limit of {inp.max_seconds:g} s (during iteration {n})")
        left = min(inp.touched_mib, unsent + dirtied(inp.touched_mib, rate * (secs + carried_s), inp.dirty_pattern))
        # a pass partly run before `state` says nothing of whether passes shrink
        settled, carried_s = carried_s == 0, 0.0
        t += secs
        steps.append(Step(n, send, secs, left, limit_ms, fired, throttle, rate))
        if left <= threshold:
            final = left / max(bandwidth_mibs, inp.final_bandwidth_mibs or 0.0)
            raced = _abort_during_switchover(pending, n, inp.switchover_syncs)
            if raced is not None:
                return Run(ABORT, t + final, None, tuple(steps),
                           f"converges after iteration {n}, but the schedule's abort fires on iteration "
                           f"{raced}, which the switch-over's own bitmap sync starts")
            return Run(CONVERGE, t + final, final * 1000 + inp.switchover_ms, tuple(steps),
                       f"converges after iteration {n}")
        can_throttle = inp.auto_converge and throttle < THROTTLE_MAX_PCT
        if inp.auto_converge and left - unsent > (send - unsent) * THROTTLE_TRIGGER_PCT / 100:
            high += 1
            if high >= THROTTLE_TRIGGER_COUNT:
                high = 0
                throttle = inp.throttle_initial_pct if throttle == 0 else min(
                    THROTTLE_MAX_PCT, throttle + inp.throttle_increment_pct)
        if inp.max_seconds is None and not pending and not can_throttle and left >= send and settled:
            return Run(ABORT, None, None, tuple(steps),
                       "never converges: the data does not shrink and nothing in the schedule ends it")
        send = left
        n += 1
    return Run(ABORT, None, None, tuple(steps), f"no end within {MAX_ITERATIONS} iterations")


def _total(run: Run, fixed_s: float) -> float | None:
    """QEMU's time plus libvirt's around it; an aborted migration pays only the part before
    QEMU (prepare): it ends with a cancel, not with the confirm step that stops the source."""
    if run.seconds is None:
        return None
    return run.seconds + fixed_s * (1 - FIXED_AFTER_FRACTION if run.outcome == ABORT else 1)


def downtime_range(run: Run, inp: ForecastInputs, spread: float) -> tuple[float, float] | None:
    """(low, high) ms of a converging or post-copy run's downtime.

    QEMU switches over once what is left fits the limit in force at the bandwidth it measured,
    so the limit is what the downtime reaches when the final copy goes no faster than the
    passes; with the bandwidth `spread` lower it goes over by 1 / (1 - spread): high =
    limit / (1 - spread) + switchover_ms. Low: the run's left-over sent at the link's speed, the
    one ceiling the final copy (rate limit lifted) cannot pass, + switchover_ms; with no link
    speed known, switchover_ms. The pair's calibrated speed is no bound: it averages whole
    migrations (zero pages, setup), and the lab's final copies went faster (32 ms for a
    left-over the calibrated 318 MiB/s would take 58 ms over). A post-copy switch-over sends no
    RAM while stopped: low = switchover_ms."""
    if run.outcome == ABORT or not run.steps:
        return None
    limit = run.steps[-1].downtime_limit_ms
    high = limit / (1 - spread) + inp.switchover_ms
    if run.outcome == POSTCOPY:
        return inp.switchover_ms, high
    low = inp.switchover_ms
    if inp.link_mibs:
        low += run.steps[-1].remaining_mib / inp.link_mibs * 1000
    return min(low, run.downtime_ms or low), max(high, run.downtime_ms or 0.0)


def forecast(inp: ForecastInputs) -> Forecast:
    """The forecast of one migration: the central run, and the range over the inputs' bounds."""
    central = simulate(inp, inp.dirty_rate_mibs, inp.bandwidth_mibs)
    spread = inp.bandwidth_spread
    best = simulate(inp, inp.dirty_low, inp.bandwidth_mibs * (1 + spread))
    worst = simulate(inp, inp.dirty_high, inp.bandwidth_mibs * (1 - spread))
    totals = [_total(r, inp.fixed_cost_s) for r in (central, best, worst)]
    known = [x for x in totals if x is not None]
    low = min(known) if known else None
    high = None if None in totals else max(known)
    dt = downtime_range(central, inp, spread)
    return Forecast(outcome=central.outcome, total_seconds=totals[0], downtime_ms=central.downtime_ms,
                    iterations=sum(1 for s in central.steps if not (s.fires or "").startswith(ABORT)),
                    low=low, high=high, inputs=inp, steps=central.steps, reason=central.reason,
                    downtime_low_ms=None if dt is None else dt[0], downtime_high_ms=None if dt is None else dt[1])


"""Adaptive convergence: Ferry's own forecast-driven schedule (goes beyond oVirt's fixed steps).

Why: oVirt's schedules raise the downtime one step per stalled iteration and abort at the end,
so a migration that converges at once with a slightly higher limit waits for its steps, and a
doomed one runs through all of them before it gives up. Here the running job's own figures
(remaining data, dirty rate, throughput, QEMU's throttle) are fed in at every poll, and the
pre-copy model (`ferry.forecast.model`) says what each strategy would do from where the
migration stands. `AdaptiveController` is a pure state machine in the house style of
`ferry.agent.schedule`: it never calls libvirt, it hands back `Decision`s the job runs.

Rules, in order, each poll:

1. the downtime limit is raised only as far as the data left needs: what QEMU will find at its
   next bitmap sync (the pass's remaining data plus what the guest dirtied since the pass
   began) / throughput, with a 10% margin, when that fits within the policy's maximum minus a
   reserve for the switch-over itself (`SWITCHOVER_RESERVE_MS`); never lowered;
2. at most one strategy step per memory iteration, once the dirty rate is known (QEMU's
   figure from the second pass on, else the rate measured before the start);
3. the model from the current state, with the limit at its bound and QEMU's auto-converge
   throttle as it stands: converges within the time bound -> nothing to do, unless this
   migration can switch to post-copy and that finishes clearly sooner (pre-copy's predicted
   time at least `POSTCOPY_SOONER_FACTOR` times post-copy's, and `POSTCOPY_SOONER_S` more):
   post-copy sends what is dirty once, pre-copy resends what the guest keeps dirtying. The
   price is post-copy's own: the guest runs on the destination while its pages are pulled,
   and a failure then loses it; the engine withholds post-copy (`allowPostcopy`) where that
   is not acceptable;
4. else the smallest stronger throttle increment with which the model converges in time
   (where the throttle can be changed live and has shown it slows the guest), unless post-copy
   finishes clearly sooner than that (as in rule 3);
5. else post-copy, where this migration can switch (`Capabilities.postcopy`);
6. else abort now, saying why no strategy within bounds can finish.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from ferry.forecast.model import CONVERGE, RANDOM, ForecastInputs, State, dirtied, simulate
from ferry.protocol.adaptive import AdaptiveSpec

SET_DOWNTIME, SET_THROTTLE, POSTCOPY, ABORT = "setDowntime", "setThrottle", "postcopy", "abort"
DOWNTIME_MARGIN = 0.10          # the limit asked for is the need plus this
SWITCHOVER_RESERVE_MS = 150     # device state and the final sync, kept out of the limit
THROTTLE_INCREMENTS = (10, 20, 30, 40, 50)   # cpu-throttle-increment levels tried, QEMU's 10 first
THROTTLE_INITIAL_PCT = 20       # QEMU's cpu-throttle-initial
INEFFECTIVE_AT_PCT = 40         # a throttle this high that left the dirty rate at ...
INEFFECTIVE_KEEP = 0.8          # ... 80% or more of the unthrottled rate does not slow this guest
POSTCOPY_SOONER_FACTOR = 1.25   # pre-copy predicted to take this many times post-copy's time ...
POSTCOPY_SOONER_S = 3.0         # ... and this many seconds more: switch to post-copy


@dataclass(frozen=True)
class Observation:
    """One job-stats poll, in the model's units (MiB, MiB/s, s); iteration is QEMU's count."""

    iteration: int
    remaining_mib: float
    dirty_rate_mibs: float
    throughput_mibs: float
    elapsed_s: float
    throttle_pct: int = 0


@dataclass(frozen=True)
class Capabilities:
    """What this migration can do, detected on the agent (not assumed)."""

    postcopy: bool
    postcopy_why: str              # why it can or cannot switch
    throttle_control: bool         # the throttle increment can be changed while it runs
    auto_converge: bool            # QEMU throttles at all (VIR_MIGRATE_AUTO_CONVERGE)


@dataclass(frozen=True)
class Decision:
    action: str                    # SET_DOWNTIME, SET_THROTTLE, POSTCOPY or ABORT
    reason: str
    downtime_ms: int | None = None
    throttle_increment_pct: int | None = None

    def __str__(self) -> str:
        if self.action == SET_DOWNTIME:
            return f"setDowntime({self.downtime_ms})"
        if self.action == SET_THROTTLE:
            return f"setThrottle(increment {self.throttle_increment_pct}%)"
        return self.action


@dataclass
class AdaptiveController:
    spec: AdaptiveSpec
    caps: Capabilities
    memory_mib: float
    touched_mib: float = 0.0       # known touched memory, if any (else the first remaining seen)
    touched_known: bool = False    # measured before the start (adaptive.touchedMiB)
    dirty_pattern: str = RANDOM
    downtime_ms: int = 0
    increment_pct: int = THROTTLE_INCREMENTS[0]
    finished: bool = False
    postcopy_requested: bool = False
    throttle_ineffective: bool = False
    postcopy_unavailable_why: str = ""
    throttle_control_why: str = ""
    _decided_iteration: int = -1
    _unthrottled_rate: float | None = None
    _pass_started: dict[int, float] = field(default_factory=dict)   # iteration -> elapsed s first seen
    history: list[Decision] = field(default_factory=list)

    @property
    def bound_ms(self) -> int:
        """The highest limit set: the policy's maximum less the switch-over reserve."""
        reserve = min(SWITCHOVER_RESERVE_MS, self.spec.max_downtime_ms // 4)
        return max(1, self.spec.max_downtime_ms - reserve)

    @property
    def budget_s(self) -> float:
        return self.spec.budget_seconds(self.memory_mib)

    def start(self) -> list[Decision]:
        """The initial limit (the policy's initial downtime)."""
        self.downtime_ms = min(self.spec.initial_downtime_ms, self.bound_ms)
        return self._out(Decision(SET_DOWNTIME, "the policy's initial downtime", downtime_ms=self.downtime_ms))

    def observe(self, obs: Observation) -> list[Decision]:
        """Feed one poll; returns what to run now (empty: nothing)."""
        if self.finished or self.postcopy_requested or obs.throughput_mibs <= 0:
            return []
        if not self.touched_known:
            self.touched_mib = max(self.touched_mib, min(self.memory_mib, obs.remaining_mib))
        self._pass_started.setdefault(obs.iteration, obs.elapsed_s)
        self._learn_throttle(obs)
        raised = self._downtime_for(obs)
        if raised is not None:
            return self._out(raised)
        rate = self._dirty_rate(obs)
        if rate is None or obs.iteration <= self._decided_iteration:
            return []
        self._decided_iteration = obs.iteration
        return self._strategy(obs, rate)

    def postcopy_started(self) -> None:
        self.postcopy_requested = False
        self.finished = True

    def postcopy_failed(self, why: str) -> None:
        """The switch failed: post-copy is off the table; the next poll decides again."""
        self.postcopy_requested = False
        self.postcopy_unavailable_why = f"the switch to post-copy failed: {why}"

    def throttle_failed(self, why: str) -> None:
        """The throttle cannot be changed after all: decide as without live control."""
        self.caps = replace(self.caps, throttle_control=False)
        self.throttle_control_why = f"live throttle control failed: {why}"

    # ---- the rules -----------------------------------------------------------------------------

    def predicted_pending_mib(self, obs: Observation) -> float:
        """What QEMU's next bitmap sync will find: the pass's rest plus what was dirtied since
        the pass began (at the rate known, the dirty pattern's distinct pages)."""
        rate = self._dirty_rate(obs) or 0.0
        since = max(0.0, obs.elapsed_s - self._pass_started.get(obs.iteration, obs.elapsed_s))
        return obs.remaining_mib + dirtied(max(self.touched_mib, 0.001), rate * since, self.dirty_pattern)

    def _downtime_for(self, obs: Observation) -> Decision | None:
        pending = self.predicted_pending_mib(obs)
        need_ms = math.ceil(pending / obs.throughput_mibs * 1000 * (1 + DOWNTIME_MARGIN))
        if need_ms <= self.downtime_ms or need_ms > self.bound_ms:
            return None
        self.downtime_ms = need_ms
        return Decision(SET_DOWNTIME, f"{pending:.0f} MiB predicted at the next sync ({obs.remaining_mib:.0f} MiB "
                        f"left of this pass) at {obs.throughput_mibs:.0f} MiB/s needs {need_ms} ms "
                        f"(bound {self.bound_ms} ms)", downtime_ms=need_ms)

    def _dirty_rate(self, obs: Observation) -> float | None:
        """The guest's dirty rate: QEMU's from the second pass, else the one measured before."""
        if obs.iteration >= 2:
            return max(0.0, obs.dirty_rate_mibs)
        return self.spec.dirty_rate_mibs

    def _learn_throttle(self, obs: Observation) -> None:
        if obs.iteration < 2:
            return
        if obs.throttle_pct == 0:
            self._unthrottled_rate = max(self._unthrottled_rate or 0.0, obs.dirty_rate_mibs)
        elif (obs.throttle_pct >= INEFFECTIVE_AT_PCT and self._unthrottled_rate
              and obs.dirty_rate_mibs >= INEFFECTIVE_KEEP * self._unthrottled_rate):
            self.throttle_ineffective = True

    def _base_rate(self, obs: Observation, rate: float) -> float:
        """The unthrottled rate the model throttles itself (QEMU's figure is after the throttle)."""
        if self.throttle_ineffective or obs.iteration < 2 or obs.throttle_pct <= 0:
            return rate
        return rate / max(0.01, 1 - obs.throttle_pct / 100)

    def _converges(self, obs: Observation, rate: float, increment: int | None) -> tuple[bool, str]:
        """The model from here at the bound's limit; `increment` None = no throttle at all."""
        run = self._precopy(obs, rate, increment)
        return run.outcome == CONVERGE, run.reason

    def _precopy(self, obs: Observation, rate: float, increment: int | None):
        throttle = increment is not None
        base = self._base_rate(obs, rate) if throttle else rate
        budget = max(0.001, self.budget_s - obs.elapsed_s)
        touched = max(self.touched_mib, 0.001) if self.touched_known else max(self.touched_mib, obs.remaining_mib, 0.001)
        inp = ForecastInputs(memory_mib=max(self.memory_mib, touched), touched_mib=touched, dirty_rate_mibs=base,
                             bandwidth_mibs=obs.throughput_mibs, bandwidth_source="live",
                             init_downtime_ms=self.bound_ms, auto_converge=throttle,
                             throttle_initial_pct=THROTTLE_INITIAL_PCT,
                             throttle_increment_pct=increment or THROTTLE_INCREMENTS[0],
                             fixed_cost_s=0.0, max_seconds=budget, dirty_pattern=self.dirty_pattern)
        start = State(iteration=max(1, obs.iteration), send_mib=self._to_send(obs),
                      downtime_ms=self.bound_ms, throttle_pct=obs.throttle_pct if throttle else 0, fire_now=False)
        return simulate(inp, base, obs.throughput_mibs, start)

    def postcopy_seconds(self, obs: Observation) -> float:
        """A switch now: what is dirty (this pass's rest, the touched share in the first pass,
        plus what was dirtied since it began) is sent once at the throughput."""
        rest = self.predicted_pending_mib(obs) - max(0.0, obs.remaining_mib) + self._to_send(obs)
        return rest / obs.throughput_mibs

    def _postcopy_sooner(self, obs: Observation, run) -> str | None:
        """Why post-copy beats a pre-copy that converges (rule 3), or None."""
        if not self.caps.postcopy or self.postcopy_unavailable_why or run.seconds is None:
            return None
        pc = self.postcopy_seconds(obs)
        if run.seconds >= POSTCOPY_SOONER_FACTOR * pc and run.seconds >= pc + POSTCOPY_SOONER_S:
            return (f"post-copy finishes sooner: about {pc:.0f} s to send what is dirty once, against "
                    f"{run.seconds:.0f} s of pre-copy passes")
        return None

    def _to_send(self, obs: Observation) -> float:
        """What the pass still has to send: QEMU's remaining data, but in the first pass, with
        the touched memory known, only the touched share of it (zero pages go as markers)."""
        left = max(0.0, obs.remaining_mib)
        if self.touched_known and obs.iteration <= 1:
            return left * min(1.0, self.touched_mib / max(self.memory_mib, 0.001))
        return left

    def _throttle_usable(self) -> bool:
        return self.caps.auto_converge and not self.throttle_ineffective

    def _strategy(self, obs: Observation, rate: float) -> list[Decision]:
        now = self.increment_pct if self._throttle_usable() else None
        run = self._precopy(obs, rate, now)
        ok, why = run.outcome == CONVERGE, run.reason
        situation = (f"dirty rate {rate:.0f} MiB/s against {obs.throughput_mibs:.0f} MiB/s, "
                     f"{obs.remaining_mib:.0f} MiB left, {obs.elapsed_s:.0f} of {self.budget_s:.0f} s used")
        if ok:
            sooner = self._postcopy_sooner(obs, run)
            if sooner is None:
                return []
            self.postcopy_requested = True
            return self._out(Decision(POSTCOPY, f"{sooner}: {situation}"))
        if self._throttle_usable() and self.caps.throttle_control:
            for level in (x for x in THROTTLE_INCREMENTS if x > self.increment_pct):
                throttled = self._precopy(obs, rate, level)
                if throttled.outcome == CONVERGE:
                    sooner = self._postcopy_sooner(obs, throttled)
                    if sooner is not None:
                        self.postcopy_requested = True
                        return self._out(Decision(POSTCOPY, f"{sooner} throttled at increment {level}%: {situation}"))
                    self.increment_pct = level
                    return self._out(Decision(SET_THROTTLE, f"the forecast at increment {now}% does not finish "
                                              f"in time ({why}); at {level}% it does: {situation}",
                                              throttle_increment_pct=level))
        if self.caps.postcopy and not self.postcopy_unavailable_why:
            self.postcopy_requested = True
            return self._out(Decision(POSTCOPY, f"pre-copy cannot finish within bounds ({why}): {situation}"))
        self.finished = True
        return self._out(Decision(ABORT, "no strategy within bounds can finish: " + "; ".join(
            (situation, f"downtime bound {self.spec.max_downtime_ms} ms", self._throttle_words(),
             self._postcopy_words()))))

    def _throttle_words(self) -> str:
        if not self.caps.auto_converge:
            return "auto-converge is off"
        if self.throttle_ineffective:
            return "the throttle does not slow this guest's writes"
        if self.throttle_control_why:
            return f"{self.throttle_control_why}; QEMU's own throttle at increment {self.increment_pct}% does not finish in time"
        top = self.increment_pct if not self.caps.throttle_control else THROTTLE_INCREMENTS[-1]
        return f"even throttling at increment {top}% up to {self.spec.max_throttle_pct}% does not finish in time"

    def _postcopy_words(self) -> str:
        if self.postcopy_unavailable_why:
            return self.postcopy_unavailable_why
        return f"post-copy not possible: {self.caps.postcopy_why}"

    def _out(self, decision: Decision) -> list[Decision]:
        self.history.append(decision)
        return [decision]


def detect_capabilities(spec: AdaptiveSpec, *, flag_names: tuple[str, ...], parallel: int | None,
                        qemu_version: int | None, paused: bool, live_throttle: bool) -> Capabilities:
    """What this migration can do, from its own flags and parameters and the QEMU it runs on.

    Post-copy needs VIR_MIGRATE_POSTCOPY set at the start, the engine's leave, a running VM, and
    -- with parallel connections -- a QEMU that combines the two: 10.0 refuses them together
    ("Postcopy is not yet compatible with multifd"); later QEMUs are believed to (10.1,
    `POSTCOPY_MULTIFD_QEMU`; not checked in this lab, which has 10.0).
    """
    if parallel and (qemu_version is None or qemu_version < POSTCOPY_MULTIFD_QEMU):
        pc, why = False, (f"parallel connections ({parallel}) and QEMU {_version(qemu_version)} refuses "
                          "post-copy with multifd")
    elif not spec.allow_postcopy:
        pc, why = False, "the engine does not allow it for this migration"
    elif paused:
        pc, why = False, "the VM is paused"
    elif "VIR_MIGRATE_POSTCOPY" not in flag_names:
        pc, why = False, "the migration was not started with VIR_MIGRATE_POSTCOPY"
    else:
        pc, why = True, "started with VIR_MIGRATE_POSTCOPY" + (" (multifd with post-copy)" if parallel else "")
    return Capabilities(postcopy=pc, postcopy_why=why, throttle_control=live_throttle,
                        auto_converge="VIR_MIGRATE_AUTO_CONVERGE" in flag_names)


POSTCOPY_MULTIFD_QEMU = 10_001_000   # libvirt's version number form: 10.1.0


def _version(v: int | None) -> str:
    if v is None:
        return "(version unknown)"
    return f"{v // 1_000_000}.{v // 1000 % 1000}.{v % 1000}"

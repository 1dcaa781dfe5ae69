"""Migration policies: the built-ins with oVirt's ids and numbers, and the policy value type.

A policy says how hard to try for convergence (downtime steps per stalled iteration, then what
to do last), how many migrations a host runs at once, and which QEMU features to use. The
built-ins are read-only; custom policies are validated by `validate_policy`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

ACTIONS = ("setDowntime", "postcopy", "abort")


@dataclass(frozen=True)
class ConvergenceAction:
    name: str                      # one of ACTIONS
    params: tuple = ()             # setDowntime: (milliseconds,)

    def to_wire(self) -> dict:
        return {"name": self.name, "params": [str(p) for p in self.params]}


@dataclass(frozen=True)
class StallingItem:
    limit: int                     # run when iterations since the first seen exceed this; -1 = next one
    action: ConvergenceAction

    def to_wire(self) -> dict:
        return {"limit": self.limit, "action": self.action.to_wire()}


@dataclass(frozen=True)
class MigrationPolicy:
    id: str
    name: str
    description: str = ""
    max_migrations: int = 2
    auto_converge: bool = False
    compression: bool = False
    guest_events: bool = False
    zerocopy: bool = False
    init: tuple[ConvergenceAction, ...] = ()
    stalling: tuple[StallingItem, ...] = ()
    last_items: tuple[ConvergenceAction, ...] = ()
    builtin: bool = False
    legacy: bool = False           # Legacy: no schedule sent, the agent's own downtime steps

    def schedule_wire(self) -> dict | None:
        """The convergenceSchedule sent in VM.migrate (None for Legacy: the agent decides)."""
        if self.legacy:
            return None
        stalling = [s.to_wire() for s in self.stalling]
        stalling += [StallingItem(-1, a).to_wire() for a in self.last_items]
        return {"init": [a.to_wire() for a in self.init], "stalling": stalling}


def _downtime(ms: int) -> ConvergenceAction:
    return ConvergenceAction("setDowntime", (ms,))


def _steps(*pairs: tuple[int, int]) -> tuple[StallingItem, ...]:
    return tuple(StallingItem(limit, _downtime(ms)) for limit, ms in pairs)


ABORT = ConvergenceAction("abort")
POSTCOPY = ConvergenceAction("postcopy")

MINIMAL_DOWNTIME_ID = "80554327-0569-496b-bdeb-fcbbf52b827b"
SUSPEND_WORKLOAD_ID = "80554327-0569-496b-bdeb-fcbbf52b827c"
POST_COPY_ID = "a7aeedb2-8d66-4e51-bb22-32595027ce71"
VERY_LARGE_VMS_ID = "57237b82-b8c2-425f-b425-114b35219626"
LEGACY_ID = "00000000-0000-0000-0000-000000000000"

_STANDARD_STEPS = _steps((1, 150), (2, 200), (3, 300), (4, 400), (6, 500))

BUILTIN_POLICIES: tuple[MigrationPolicy, ...] = (
    MigrationPolicy(
        id=MINIMAL_DOWNTIME_ID, name="Minimal downtime",
        description="A safe policy in which the VM should not notice the migration in usual situations.",
        max_migrations=2, auto_converge=True, compression=False, guest_events=True,
        init=(_downtime(100),), stalling=_STANDARD_STEPS, last_items=(ABORT,), builtin=True,
    ),
    MigrationPolicy(
        id=SUSPEND_WORKLOAD_ID, name="Suspend workload if needed",
        description="Lets the VM migrate in most cases, even under heavy load; it may notice a longer downtime.",
        max_migrations=1, auto_converge=True, compression=True, guest_events=True,
        init=(_downtime(100),), stalling=_STANDARD_STEPS, last_items=(_downtime(5000), ABORT), builtin=True,
    ),
    MigrationPolicy(
        id=POST_COPY_ID, name="Post-copy migration",
        description="Switches to post-copy when pre-copy does not converge; the VM runs on the destination early.",
        max_migrations=2, auto_converge=True, compression=False, guest_events=True,
        init=(_downtime(100),), stalling=_steps((1, 150), (2, 200)), last_items=(POSTCOPY, ABORT), builtin=True,
    ),
    MigrationPolicy(
        id=VERY_LARGE_VMS_ID, name="Very large VMs",
        description="For VMs with very much RAM (>1 TB): zero-copy parallel migration and longer downtimes.",
        max_migrations=1, auto_converge=True, compression=False, guest_events=True, zerocopy=True,
        init=(_downtime(300),), stalling=_steps((1, 400), (2, 500), (3, 700), (4, 1000), (6, 1500)),
        last_items=(_downtime(5000), ABORT), builtin=True,
    ),
    MigrationPolicy(
        id=LEGACY_ID, name="Legacy",
        description="The host agent's own behaviour: no schedule is sent.",
        max_migrations=2, auto_converge=False, compression=False, guest_events=False,
        builtin=True, legacy=True,
    ),
)

BUILTIN_BY_ID = {p.id: p for p in BUILTIN_POLICIES}
BUILTIN_BY_NAME = {p.name.lower(): p for p in BUILTIN_POLICIES}

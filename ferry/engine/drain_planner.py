"""The drain planner: which of a host's VMs start migrating now, and to where (pure).

Why a planner and not a loop of `migrate` calls: emptying a host races with every other
migration for the same per-host slots and the same free memory, and a bad order keeps slots
busy with one large VM while small ones wait. Each tick the drain runner
(ferry.engine.drain_runner) hands this module what it read (the drain's items, the other
hosts, the migrations running anywhere) and carries out the actions it gets back.

Why its own choice of destination and not ferry.engine.destination's: a drain also counts each
host's incoming slots against the VM's plan's incomingLimit (a full host means "wait", not
"blocked") and the memory of VMs still arriving, and it says per host why a VM cannot go there.
Planning every VM of some hosts at once without starting any is another use case
(ferry.engine.services.bulk_planning over ferry.engine.destination.assign_destinations).

The rules, each with its reason:
- a paused drain starts nothing (running migrations go on);
- a cancelled drain drops its queued VMs; with abort_running it also cancels the running ones;
  it ends once nothing of it runs (the host goes back UP);
- queued VMs go in forecast order: SHORTEST first (default: slots free up fast, so the most VMs
  leave soonest) or LARGEST first (the alternative: the long tail starts first, which can
  shorten the whole drain when slots are many); an unknown forecast goes last, then by name;
- a VM starts only while the source runs fewer outgoing migrations than the VM's plan's
  outgoingLimit, and only to a host running fewer incoming migrations than its incomingLimit;
  a VM that waits for a slot is no failure;
- a destination is an available host (UP, same cluster: the runner decides), not already
  tried for this VM, with free memory for it after what this tick already sends there and
  what is still arriving; among those the fewest incoming migrations, then the most free
  memory, then the name;
- a VM tried on MAX_HOSTS hosts gives up; a VM no host can take (apart from busy slots) is
  blocked: both keep the host PREPARING_FOR_MAINTENANCE, with the reason, and a blocked VM is
  tried again on a later tick (a host may come back);
- when every item is done (migrated, or gone from the host), the host goes to MAINTENANCE.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ferry.engine.destination import MAX_HOSTS

SHORTEST, LARGEST = "shortest", "largest"
ORDERS = (SHORTEST, LARGEST)

# Item states (kept in the drain's JSON items).
QUEUED, MIGRATING, DONE, GONE, FAILED, BLOCKED, DROPPED = (
    "queued", "migrating", "done", "gone", "failed", "blocked", "dropped")
FINISHED_ITEM_STATES = (DONE, GONE)
STUCK_ITEM_STATES = (FAILED,)


@dataclass(frozen=True)
class DrainVm:
    name: str
    state: str
    memory_mib: int
    forecast_s: float | None = None
    tried: frozenset[str] = frozenset()
    outgoing_limit: int = 2
    incoming_limit: int = 2
    migration_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class HostRoom:
    """Another host as the drain sees it: may it take VMs, its free memory, what runs there."""

    name: str
    available: bool
    free_memory_mib: int | None          # None: unknown -> not excluded for it
    incoming: int = 0                    # active migrations to it (any, not only this drain's)
    arriving_mib: int = 0                # memory of the VMs still migrating to it
    why_not: str = "host is not up"      # shown when not available


@dataclass(frozen=True)
class DrainFacts:
    state: str                           # the drain's state: ACTIVE / PAUSED / CANCELLING
    order: str
    vms: tuple[DrainVm, ...]
    hosts: tuple[HostRoom, ...]
    outgoing: int                        # active migrations leaving the drained host (any)
    abort_running: bool = False


@dataclass(frozen=True)
class Start:
    vm: str
    destination: str
    why: str


@dataclass(frozen=True)
class Block:
    vm: str
    reason: str


@dataclass(frozen=True)
class GiveUp:
    vm: str
    reason: str


@dataclass(frozen=True)
class Drop:
    vm: str


@dataclass(frozen=True)
class Abort:
    vm: str
    migration_id: str


@dataclass(frozen=True)
class Finish:
    outcome: str           # "maintenance" (every VM left) or "cancelled"


Action = Start | Block | GiveUp | Drop | Abort | Finish


@dataclass(frozen=True)
class DrainStep:
    actions: tuple[Action, ...] = ()
    waiting: tuple[str, ...] = field(default=())   # queued VMs waiting for a free slot

    def of(self, kind: type) -> list:
        return [a for a in self.actions if isinstance(a, kind)]


def ordered(vms: Iterable[DrainVm], order: str) -> list[DrainVm]:
    """Queued VMs in the drain's order; an unknown forecast last, ties by name."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    sign = 1 if order == SHORTEST else -1
    return sorted(vms, key=lambda v: (v.forecast_s is None, sign * (v.forecast_s or 0.0), v.name))


def _room(h: HostRoom, reserved: int) -> int | None:
    if h.free_memory_mib is None:
        return None
    return h.free_memory_mib - h.arriving_mib - reserved


def choose(vm: DrainVm, hosts: Iterable[HostRoom], incoming: Mapping[str, int],
           reserved: Mapping[str, int]) -> tuple[str | None, bool, str]:
    """(destination, waiting_for_a_slot, reason): a host for `vm` now; or None with whether a
    slot would do (only busy hosts fit) and why not, one clause per host."""
    fit: list[HostRoom] = []
    busy = False
    why: list[str] = []
    for h in hosts:
        room = _room(h, reserved.get(h.name, 0))
        if h.name in vm.tried:
            why.append(f"{h.name}: already tried")
        elif not h.available:
            why.append(f"{h.name}: {h.why_not}")
        elif room is not None and room < vm.memory_mib:
            why.append(f"{h.name}: not enough free memory ({room} MiB < {vm.memory_mib} MiB)")
        elif incoming.get(h.name, 0) >= vm.incoming_limit:
            busy = True
            why.append(f"{h.name}: {incoming.get(h.name, 0)} incoming migration(s), limit {vm.incoming_limit}")
        else:
            fit.append(h)
    if not fit:
        return None, busy, "; ".join(why) or "the cluster has no other host"
    best = min(fit, key=lambda h: (incoming.get(h.name, 0), -(_room(h, reserved.get(h.name, 0)) or 0), h.name))
    return best.name, False, ""


def _cancelling(facts: DrainFacts) -> DrainStep:
    actions: list[Action] = [Drop(v.name) for v in facts.vms if v.state in (QUEUED, BLOCKED)]
    running = [v for v in facts.vms if v.state == MIGRATING]
    if facts.abort_running:
        actions += [Abort(v.name, v.migration_id) for v in running if v.migration_id]
    if not running:
        actions.append(Finish("cancelled"))
    return DrainStep(tuple(actions))


def plan_drain(facts: DrainFacts) -> DrainStep:
    """The actions of one tick (see the module doc for the rules)."""
    if facts.state == "CANCELLING":
        return _cancelling(facts)
    if all(v.state in FINISHED_ITEM_STATES for v in facts.vms):
        return DrainStep((Finish("maintenance"),))
    if facts.state == "PAUSED":
        return DrainStep()
    actions: list[Action] = []
    waiting: list[str] = []
    incoming = {h.name: h.incoming for h in facts.hosts}
    reserved: dict[str, int] = {}
    outgoing = facts.outgoing
    for vm in ordered((v for v in facts.vms if v.state in (QUEUED, BLOCKED)), facts.order):
        if len(vm.tried) >= MAX_HOSTS:
            actions.append(GiveUp(vm.name, f"failed on {len(vm.tried)} hosts ({', '.join(sorted(vm.tried))})"))
            continue
        if outgoing >= vm.outgoing_limit:
            waiting.append(vm.name)
            continue
        destination, slot, reason = choose(vm, facts.hosts, incoming, reserved)
        if destination is None:
            if slot:
                waiting.append(vm.name)
            elif not (vm.state == BLOCKED and vm.reason == reason):
                actions.append(Block(vm.name, reason))
            continue
        actions.append(Start(vm.name, destination, f"{facts.order} first; forecast "
                             f"{'unknown' if vm.forecast_s is None else f'{vm.forecast_s:.1f} s'}"))
        outgoing += 1
        incoming[destination] = incoming.get(destination, 0) + 1
        reserved[destination] = reserved.get(destination, 0) + vm.memory_mib
    return DrainStep(tuple(actions), tuple(waiting))

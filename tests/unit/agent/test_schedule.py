"""Convergence schedule execution driven by scripted iterations (facts §3)."""
import pytest

from ferry.agent.schedule import ScheduleRunner
from ferry.common.errors import InvalidInput
from ferry.engine.policies import BUILTIN_POLICIES
from ferry.protocol.schedule import (
    ABORT,
    POSTCOPY,
    SET_DOWNTIME,
    Action,
    Schedule,
    legacy_downtime_steps,
    legacy_schedule,
)


def policy(name):
    return next(p for p in BUILTIN_POLICIES if p.name == name)


def drive(runner, iterations):
    """Feeds iterations; returns {n: action} for every action handed out."""
    fired = {}
    for it in iterations:
        action = runner.on_iteration(it)
        if action is not None:
            fired[it - runner.baseline] = action
    return fired


def test_very_large_vms_schedule_fires_on_its_iterations():
    schedule = Schedule.from_wire(policy("Very large VMs").schedule().to_wire())
    runner = ScheduleRunner(schedule)
    assert runner.start() == [Action(SET_DOWNTIME, 300)]
    fired = drive(runner, range(1, 20))
    assert fired == {2: Action(SET_DOWNTIME, 400), 3: Action(SET_DOWNTIME, 500), 4: Action(SET_DOWNTIME, 700),
                     5: Action(SET_DOWNTIME, 1000), 7: Action(SET_DOWNTIME, 1500),
                     8: Action(SET_DOWNTIME, 5000), 9: Action(ABORT)}
    assert runner.finished and runner.remaining == ()


def test_baseline_is_the_first_iteration_seen_not_one():
    runner = ScheduleRunner(Schedule.from_wire(policy("Very large VMs").schedule().to_wire()))
    runner.start()
    fired = drive(runner, range(5, 30))
    assert sorted(fired) == [2, 3, 4, 5, 7, 8, 9]


def test_repeated_or_stale_iterations_do_not_fire():
    runner = ScheduleRunner(Schedule.from_wire(policy("Very large VMs").schedule().to_wire()))
    runner.start()
    seq = [1, 1, 2, 2, 3, 3, 2, 1]   # event + poll report the same iteration twice
    fired = [runner.on_iteration(i) for i in seq]
    assert [a for a in fired if a] == [Action(SET_DOWNTIME, 400)]


def test_one_action_per_new_iteration_even_after_a_jump():
    # A poll may see the iteration jump by several; still only one action per growth.
    runner = ScheduleRunner(Schedule.from_wire(policy("Very large VMs").schedule().to_wire()))
    runner.start()
    assert runner.on_iteration(1) is None
    assert runner.on_iteration(10) == Action(SET_DOWNTIME, 400)
    assert runner.on_iteration(11) == Action(SET_DOWNTIME, 500)


def test_minus_one_fires_on_the_next_new_iteration():
    runner = ScheduleRunner(Schedule.from_wire({"init": [], "stalling": [
        {"limit": -1, "action": {"name": "abort", "params": []}}]}))
    assert runner.start() == []
    assert runner.on_iteration(3) is None       # baseline
    assert runner.on_iteration(4) == Action(ABORT)


def test_nothing_runs_after_postcopy():
    schedule = Schedule.from_wire(policy("Post-copy migration").schedule().to_wire())
    assert schedule.has_postcopy
    runner = ScheduleRunner(schedule)
    assert runner.start() == [Action(SET_DOWNTIME, 100)]
    fired = drive(runner, range(1, 12))
    assert fired == {2: Action(SET_DOWNTIME, 150), 3: Action(SET_DOWNTIME, 200), 4: Action(POSTCOPY)}


def test_rule_failed_postcopy_switch_lets_the_next_item_run():
    """facts §3 / Vdsm: when migrateStartPostCopy fails, the next item (the abort) still runs."""
    runner = ScheduleRunner(Schedule.from_wire(policy("Post-copy migration").schedule().to_wire()))
    runner.start()
    fired = drive(runner, range(1, 6))
    assert fired[4] == Action(POSTCOPY) and runner.postcopy_requested and not runner.finished
    assert runner.on_iteration(6) is None            # held while the switch is under way
    runner.postcopy_failed()
    assert not runner.postcopy_requested and not runner.finished
    assert runner.on_iteration(6) is None            # the same iteration again: still nothing
    assert runner.on_iteration(7) == Action(ABORT)
    assert runner.finished and runner.remaining == ()


def test_postcopy_counts_as_started_only_when_told():
    """Handing out post-copy is not post-copy: only postcopy_started() ends the schedule."""
    runner = ScheduleRunner(Schedule.from_wire({"init": [], "stalling": [
        {"limit": -1, "action": {"name": "postcopy", "params": []}},
        {"limit": -1, "action": {"name": "abort", "params": []}}]}))
    runner.start()
    runner.on_iteration(1)
    assert runner.on_iteration(2) == Action(POSTCOPY)
    assert not runner.finished
    runner.postcopy_started()
    assert runner.finished and not runner.postcopy_requested
    runner.postcopy_failed()                          # a late failure report changes nothing
    assert runner.finished and drive(runner, range(3, 9)) == {}


def test_postcopy_started_from_outside_stops_the_schedule():
    runner = ScheduleRunner(Schedule.from_wire(policy("Minimal downtime").schedule().to_wire()))
    runner.start()
    runner.on_iteration(1)
    runner.postcopy_started()
    assert drive(runner, range(2, 20)) == {}


def test_minimal_downtime_and_suspend_schedules():
    fired = drive(_started("Minimal downtime"), range(1, 20))
    assert fired == {2: Action(SET_DOWNTIME, 150), 3: Action(SET_DOWNTIME, 200), 4: Action(SET_DOWNTIME, 300),
                     5: Action(SET_DOWNTIME, 400), 7: Action(SET_DOWNTIME, 500), 8: Action(ABORT)}
    fired = drive(_started("Suspend workload if needed"), range(1, 20))
    assert fired[8] == Action(SET_DOWNTIME, 5000) and fired[9] == Action(ABORT)


def _started(name):
    runner = ScheduleRunner(Schedule.from_wire(policy(name).schedule().to_wire()))
    runner.start()
    return runner


def test_legacy_downtime_steps():
    assert legacy_downtime_steps() == [101, 104, 120, 189, 500]
    assert legacy_downtime_steps(1000, 1) == [1000]


def test_legacy_schedule_execution():
    schedule = legacy_schedule()
    assert schedule.legacy and not schedule.has_postcopy
    runner = ScheduleRunner(schedule)
    assert runner.start() == [Action(SET_DOWNTIME, 101)]
    fired = drive(runner, range(0, 60))
    assert fired == {2: Action(SET_DOWNTIME, 104), 3: Action(SET_DOWNTIME, 120), 4: Action(SET_DOWNTIME, 189),
                     5: Action(SET_DOWNTIME, 500), 43: Action(SET_DOWNTIME, 500), 44: Action(ABORT)}


def test_wire_round_trip():
    wire = policy("Very large VMs").schedule().to_wire()
    assert Schedule.from_wire(wire).to_wire() == wire


@pytest.mark.parametrize("raw, field", [
    ([], "convergenceSchedule"),
    ({"init": "x"}, "convergenceSchedule.init"),
    ({"init": [{"name": "reboot"}]}, "convergenceSchedule.init[0].name"),
    ({"init": [{"name": "setDowntime", "params": []}]}, "convergenceSchedule.init[0].params"),
    ({"init": [{"name": "setDowntime", "params": ["fast"]}]}, "convergenceSchedule.init[0].params[0]"),
    ({"init": [{"name": "setDowntime", "params": ["0"]}]}, "convergenceSchedule.init[0].params[0]"),
    ({"init": [{"name": "abort"}]}, "convergenceSchedule.init[0].name"),
    ({"stalling": [{"limit": -2, "action": {"name": "abort"}}]}, "convergenceSchedule.stalling[0].limit"),
    ({"stalling": [{"limit": "x", "action": {"name": "abort"}}]}, "convergenceSchedule.stalling[0].limit"),
    ({"stalling": [{"limit": 1, "action": None}]}, "convergenceSchedule.stalling[0].action"),
])
def test_bad_schedules_name_the_field(raw, field):
    with pytest.raises(InvalidInput) as err:
        Schedule.from_wire(raw)
    assert err.value.field == field

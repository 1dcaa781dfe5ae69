"""Facts §3: the convergence schedule's wire form, its execution on the source agent, and the
legacy downtime steps. Each test names the rule it holds."""
import pytest

from ferry.agent.schedule import ScheduleRunner
from ferry.common.errors import InvalidInput
from ferry.engine.policies import BUILTIN_BY_ID, MINIMAL_DOWNTIME_ID, POST_COPY_ID
from ferry.protocol.schedule import (
    ABORT,
    ACTIONS,
    LEGACY_FINAL_DOWNTIME_LIMIT,
    MAX_DOWNTIME_MS,
    POSTCOPY,
    SET_DOWNTIME,
    Action,
    Schedule,
    StallingStep,
    legacy_downtime_steps,
    legacy_schedule,
)


def test_rule_3_wire_form_of_a_schedule():
    s = Schedule((Action(SET_DOWNTIME, 100),),
                 (StallingStep(1, Action(SET_DOWNTIME, 150)), StallingStep(-1, Action(POSTCOPY)),
                  StallingStep(-1, Action(ABORT))))
    assert s.to_wire() == {
        "init": [{"name": "setDowntime", "params": ["100"]}],
        "stalling": [{"limit": 1, "action": {"name": "setDowntime", "params": ["150"]}},
                     {"limit": -1, "action": {"name": "postcopy", "params": []}},
                     {"limit": -1, "action": {"name": "abort", "params": []}}]}
    assert Schedule.from_wire(s.to_wire()) == s
    assert ACTIONS == ("setDowntime", "postcopy", "abort")


def test_rule_3_last_items_are_appended_with_limit_minus_1():
    s = BUILTIN_BY_ID[POST_COPY_ID].schedule()
    assert [(x.limit, str(x.action)) for x in s.stalling] == [
        (1, "setDowntime(150)"), (2, "setDowntime(200)"), (-1, "postcopy"), (-1, "abort")]


def test_rule_3_wire_form_reading_is_lenient_about_absent_parts():
    assert Schedule.from_wire({}) == Schedule()
    assert Schedule.from_wire({"init": None, "stalling": None}) == Schedule()
    assert Schedule.from_wire({"stalling": [{"limit": "-1", "action": {"name": "abort", "params": None}}]}) == \
        Schedule((), (StallingStep(-1, Action(ABORT)),))
    assert Action.from_wire({"name": "abort"}, "x") == Action(ABORT)


@pytest.mark.parametrize("ms, ok", [(0, False), (1, True), (MAX_DOWNTIME_MS, True), (MAX_DOWNTIME_MS + 1, False)])
def test_rule_3_set_downtime_is_1_to_max_inclusive_on_the_wire(ms, ok):
    raw = {"init": [{"name": "setDowntime", "params": [str(ms)]}]}
    if ok:
        assert Schedule.from_wire(raw).init == (Action(SET_DOWNTIME, ms),)
    else:
        with pytest.raises(InvalidInput) as e:
            Schedule.from_wire(raw)
        assert e.value.field == "convergenceSchedule.init[0].params[0]"


@pytest.mark.parametrize("limit, ok", [(-2, False), (-1, True), (0, True)])
def test_rule_3_stalling_limit_is_minus_1_or_more_on_the_wire(limit, ok):
    raw = {"stalling": [{"limit": limit, "action": {"name": "abort"}}]}
    if ok:
        assert Schedule.from_wire(raw).stalling[0].limit == limit
    else:
        with pytest.raises(InvalidInput) as e:
            Schedule.from_wire(raw)
        assert e.value.field == "convergenceSchedule.stalling[0].limit"


@pytest.mark.parametrize("raw, field", [
    ([], "convergenceSchedule"), ({"init": {"a": 1}}, "convergenceSchedule.init"),
    ({"stalling": "x"}, "convergenceSchedule.stalling"),
    ({"init": [{"name": "abort"}]}, "convergenceSchedule.init[0].name"),
    ({"init": ["setDowntime"]}, "convergenceSchedule.init[0]"),
    ({"init": [{"name": "setDowntime", "params": "5"}]}, "convergenceSchedule.init[0].params"),
    ({"init": [{"name": "setDowntime", "params": []}]}, "convergenceSchedule.init[0].params"),
    ({"init": [{"name": "setDowntime", "params": ["1", "2"]}]}, "convergenceSchedule.init[0].params"),
    ({"init": [{"name": "setDowntime", "params": [True]}]}, "convergenceSchedule.init[0].params[0]"),
    ({"init": [{"name": "setDowntime", "params": ["1.5"]}]}, "convergenceSchedule.init[0].params[0]"),
    ({"stalling": [7]}, "convergenceSchedule.stalling[0]"),
    ({"stalling": [{"action": {"name": "abort"}}]}, "convergenceSchedule.stalling[0].limit"),
    ({"stalling": [{"limit": 1, "action": {"name": "go"}}]}, "convergenceSchedule.stalling[0].action.name"),
])
def test_rule_3_bad_wire_schedules_name_the_field(raw, field):
    with pytest.raises(InvalidInput) as e:
        Schedule.from_wire(raw)
    assert e.value.field == field


def test_rule_3_legacy_schedule_steps():
    """500 ms in 5 steps: offset 100, base 400^(1/4) -> 101, 104, 120, 189, 500."""
    assert legacy_downtime_steps() == [101, 104, 120, 189, 500]
    s = legacy_schedule()
    assert s.legacy is True
    assert s.init == (Action(SET_DOWNTIME, 101),)
    assert [(x.limit, str(x.action)) for x in s.stalling] == [
        (1, "setDowntime(104)"), (2, "setDowntime(120)"), (3, "setDowntime(189)"), (4, "setDowntime(500)"),
        (42, "setDowntime(500)"), (-1, "abort")]
    assert LEGACY_FINAL_DOWNTIME_LIMIT == 42


def test_rule_3_legacy_schedule_with_another_maximum_and_one_step():
    # offset 200, base 800^(1/4); int() truncates, so 200 + 799.99.. is 999, as in Vdsm's formula
    assert legacy_downtime_steps(1000, 5) == [201, 205, 228, 350, 999]
    assert legacy_downtime_steps(300, 1) == [300]
    assert legacy_downtime_steps(300, 0) == [300]
    s = legacy_schedule(300, 1)
    assert s.init == (Action(SET_DOWNTIME, 300),)
    assert [(x.limit, str(x.action)) for x in s.stalling] == [(42, "setDowntime(300)"), (-1, "abort")]
    assert legacy_downtime_steps(500, 2) == [251, 500]


def test_rule_3_without_postcopy_keeps_init_and_legacy_and_counts_dropped():
    s = Schedule((Action(SET_DOWNTIME, 100),), (StallingStep(1, Action(POSTCOPY)), StallingStep(-1, Action(ABORT))),
                 legacy=True)
    dropped, n = s.without(POSTCOPY)
    assert n == 1 and dropped.init == (Action(SET_DOWNTIME, 100),) and dropped.legacy is True
    assert dropped.stalling == (StallingStep(-1, Action(ABORT)),)
    assert not dropped.has_postcopy and s.has_postcopy
    assert s.without(SET_DOWNTIME)[1] == 1 and s.without(SET_DOWNTIME)[0].init == ()
    assert Schedule((Action(POSTCOPY),)).has_postcopy


def test_rule_3_action_text_and_params():
    assert str(Action(SET_DOWNTIME, 5)) == "setDowntime(5)" and str(Action(ABORT)) == "abort"
    assert Action(SET_DOWNTIME, 5).params == (5,) and Action(ABORT).params == ()
    assert Action.from_params("setDowntime", ["7"]) == Action(SET_DOWNTIME, "7")
    assert Action.from_params("abort", None) == Action(ABORT)
    assert Action(ABORT).to_wire() == {"name": "abort", "params": []}


# ---- execution (ScheduleRunner) --------------------------------------------------------------

def test_rule_3_every_init_action_runs_at_start():
    s = Schedule((Action(SET_DOWNTIME, 100), Action(SET_DOWNTIME, 200)), ())
    r = ScheduleRunner(s)
    assert r.start() == [Action(SET_DOWNTIME, 100), Action(SET_DOWNTIME, 200)]
    assert r.done == [(None, Action(SET_DOWNTIME, 100)), (None, Action(SET_DOWNTIME, 200))]
    assert ScheduleRunner(Schedule()).start() == []


def test_rule_3_first_iteration_seen_is_the_baseline():
    r = ScheduleRunner(Schedule((), (StallingStep(0, Action(SET_DOWNTIME, 1)),)))
    assert r.on_iteration(5) is None and r.baseline == 5 and r.last_iteration == 5
    assert r.on_iteration(6) == Action(SET_DOWNTIME, 1)     # n = 1 > 0
    assert r.done == [(1, Action(SET_DOWNTIME, 1))]


def test_rule_3_head_runs_only_when_its_limit_is_below_n():
    r = ScheduleRunner(Schedule((), (StallingStep(2, Action(SET_DOWNTIME, 1)),)))
    r.on_iteration(10)
    assert r.on_iteration(11) is None      # n = 1
    assert r.on_iteration(12) is None      # n = 2: limit 2 is not < 2
    assert r.on_iteration(13) == Action(SET_DOWNTIME, 1)
    assert r.remaining == ()


def test_rule_3_a_repeated_iteration_from_an_event_and_a_poll_fires_once():
    steps = (StallingStep(-1, Action(SET_DOWNTIME, 1)), StallingStep(-1, Action(SET_DOWNTIME, 2)))
    r = ScheduleRunner(Schedule((), steps))
    r.on_iteration(1)
    assert r.on_iteration(2) == Action(SET_DOWNTIME, 1)     # the migration-iteration event
    assert r.on_iteration(2) is None                          # the job-stats poll of the same iteration
    assert r.on_iteration(1) is None                          # stale
    assert r.last_iteration == 2
    assert r.on_iteration(3) == Action(SET_DOWNTIME, 2)
    assert [n for n, _ in r.done] == [1, 2]


def test_rule_3_at_most_one_action_per_new_iteration():
    steps = tuple(StallingStep(0, Action(SET_DOWNTIME, ms)) for ms in (1, 2, 3))
    r = ScheduleRunner(Schedule((), steps))
    r.on_iteration(0)
    assert r.on_iteration(50) == Action(SET_DOWNTIME, 1)
    assert r.on_iteration(51) == Action(SET_DOWNTIME, 2)
    assert len(r.remaining) == 1


def test_rule_3_nothing_after_abort_and_iterations_still_tracked():
    r = ScheduleRunner(Schedule((), (StallingStep(-1, Action(ABORT)), StallingStep(-1, Action(SET_DOWNTIME, 1)))))
    r.on_iteration(0)
    assert r.on_iteration(1) == Action(ABORT) and r.finished
    assert r.on_iteration(2) is None and r.last_iteration == 2
    assert r.remaining == (StallingStep(-1, Action(SET_DOWNTIME, 1)),)


def test_rule_3_after_postcopy_starts_no_more_actions():
    r = ScheduleRunner(BUILTIN_BY_ID[POST_COPY_ID].schedule())
    r.on_iteration(0)
    fired = [r.on_iteration(i) for i in range(1, 5)]
    assert fired == [None, Action(SET_DOWNTIME, 150), Action(SET_DOWNTIME, 200), Action(POSTCOPY)]
    assert r.postcopy_requested and not r.finished
    assert r.on_iteration(5) is None            # held until the job says how the switch went
    r.postcopy_started()
    assert r.finished and not r.postcopy_requested
    assert r.on_iteration(6) is None
    r.postcopy_failed()                         # too late: post-copy runs
    assert r.finished and not r.postcopy_requested and r.on_iteration(7) is None


def test_rule_3_failed_postcopy_lets_the_abort_run_on_the_next_iteration():
    r = ScheduleRunner(Schedule((), (StallingStep(-1, Action(POSTCOPY)), StallingStep(-1, Action(ABORT)))))
    r.on_iteration(0)
    assert r.on_iteration(1) == Action(POSTCOPY)
    r.postcopy_failed()
    assert not r.postcopy_requested and not r.finished
    assert r.on_iteration(2) == Action(ABORT) and r.finished


def test_rule_3_nothing_fires_with_nothing_pending():
    r = ScheduleRunner(BUILTIN_BY_ID[MINIMAL_DOWNTIME_ID].schedule())
    r.on_iteration(0)
    actions = [a for a in (r.on_iteration(i) for i in range(1, 30)) if a is not None]
    assert [str(a) for a in actions] == ["setDowntime(150)", "setDowntime(200)", "setDowntime(300)",
                                         "setDowntime(400)", "setDowntime(500)", "abort"]
    assert r.remaining == () and r.finished

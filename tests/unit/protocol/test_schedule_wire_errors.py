"""A bad convergenceSchedule is refused with the field and the reason a user can act on (facts §3).

The agent returns these texts in its JSON-RPC error and the engine's scenario/API checks show
them, so each reason is part of the contract, not decoration."""
import pytest

from ferry.common.errors import InvalidInput
from ferry.protocol.schedule import ABORT, SET_DOWNTIME, Action, Schedule

CS = "convergenceSchedule"


@pytest.mark.parametrize("raw, field, reason", [
    ([], CS, "must be an object with init and stalling, got []"),
    ({"init": {"a": 1}}, f"{CS}.init", "must be a list, got {'a': 1}"),
    ({"stalling": "x"}, f"{CS}.stalling", "must be a list, got 'x'"),
    # an empty object is not an empty list: refused, not read as "no init" (facts §3: lists)
    ({"init": {}}, f"{CS}.init", "must be a list, got {}"),
    ({"stalling": {}}, f"{CS}.stalling", "must be a list, got {}"),
    ({"stalling": ""}, f"{CS}.stalling", "must be a list, got ''"),
    ({"init": [{"name": "abort"}]}, f"{CS}.init[0].name", "only setDowntime can run at start, got abort"),
    ({"init": ["s"]}, f"{CS}.init[0]", "must be an object with name and params, got 's'"),
    ({"init": [{"name": "go"}]}, f"{CS}.init[0].name", "must be one of setDowntime, postcopy, abort, got 'go'"),
    ({"init": [{"name": "setDowntime", "params": "5"}]}, f"{CS}.init[0].params", "must be a list, got '5'"),
    ({"init": [{"name": "setDowntime", "params": []}]}, f"{CS}.init[0].params",
     "setDowntime needs exactly one value (ms), got []"),
    ({"init": [{"name": "setDowntime", "params": ["0"]}]}, f"{CS}.init[0].params[0]",
     "downtime must be 1..3600000 ms, got 0"),
    ({"init": [{"name": "setDowntime", "params": [True]}]}, f"{CS}.init[0].params[0]",
     "must be an integer, got True"),
    ({"stalling": [7]}, f"{CS}.stalling[0]", "must be an object with limit and action, got 7"),
    ({"stalling": [{"limit": -2, "action": {"name": "abort"}}]}, f"{CS}.stalling[0].limit",
     "must be -1 or more, got -2"),
    ({"stalling": [{"limit": "x", "action": {"name": "abort"}}]}, f"{CS}.stalling[0].limit",
     "must be an integer, got 'x'"),
])
def test_rule_3_a_bad_schedule_names_the_field_and_the_reason(raw, field, reason):
    with pytest.raises(InvalidInput) as e:
        Schedule.from_wire(raw)
    assert (e.value.field, e.value.reason) == (field, reason)


@pytest.mark.parametrize("limit", ["X1", "1-", "--1", "- 1", "1.0", ""])
def test_rule_3_a_stalling_limit_is_a_whole_number_with_at_most_a_leading_minus(limit):
    """Only an optional leading '-' and digits are a number; anything else is a clear error,
    never a ValueError from int()."""
    with pytest.raises(InvalidInput) as e:
        Schedule.from_wire({"stalling": [{"limit": limit, "action": {"name": "abort"}}]})
    assert e.value.field == f"{CS}.stalling[0].limit"


def test_rule_3_a_stalling_limit_may_be_sent_as_text_with_spaces():
    s = Schedule.from_wire({"stalling": [{"limit": " -1 ", "action": {"name": "abort"}},
                                         {"limit": "12", "action": {"name": "setDowntime", "params": ["7"]}}]})
    assert [(st.limit, st.action) for st in s.stalling] == [(-1, Action(ABORT)), (12, Action(SET_DOWNTIME, 7))]


def test_rule_3_an_action_without_params_or_with_null_params_has_none():
    assert Schedule.from_wire({"stalling": [{"limit": 0, "action": {"name": "postcopy"}},
                                            {"limit": 1, "action": {"name": "abort", "params": None}}]}
                              ).to_wire()["stalling"] == [
        {"limit": 0, "action": {"name": "postcopy", "params": []}},
        {"limit": 1, "action": {"name": "abort", "params": []}}]


def test_rule_3_a_schedule_without_init_or_stalling_or_with_null_ones_has_none():
    assert Schedule.from_wire({}) == Schedule.from_wire({"init": None, "stalling": None}) == Schedule((), ())

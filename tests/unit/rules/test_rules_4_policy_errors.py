"""Facts §4, custom policies: what each refusal says, so a user can fix the policy from the
message alone (the field it names and the reason), and the parameter parsing the API relies on."""
import uuid

import pytest

from ferry.common.errors import InvalidInput
from ferry.engine.policies import (
    BUILTIN_POLICIES,
    MigrationPolicy,
    check_policy_allowed,
    find_policy,
    policy_from_dict,
    validate_policy,
)
from ferry.protocol.schedule import MAX_DOWNTIME_MS


def _refusal(make):
    with pytest.raises(InvalidInput) as e:
        make()
    return e.value.field, e.value.reason


def _custom(**kw):
    return MigrationPolicy(**{"id": str(uuid.uuid4()), "name": "custom", **kw})


def test_rule_4_an_empty_policy_key_is_refused_with_what_was_given():
    assert _refusal(lambda: find_policy("  ")) == ("policy", "a policy id or name is required, got '  '")


def test_rule_4_zero_copy_policy_refusal_says_parallel_is_not_supported():
    vlv = next(p for p in BUILTIN_POLICIES if p.zerocopy)
    assert _refusal(lambda: check_policy_allowed(vlv, False)) == ("policy", (
        f"policy {vlv.name!r} uses zero-copy migrations, which need parallel migrations, "
        "and parallel migrations are not supported in this cluster"))


def test_rule_4_validation_refusals_say_why():
    assert _refusal(lambda: validate_policy(_custom(builtin=True))) == (
        "builtin", "custom policies cannot be built-in or Legacy")
    assert _refusal(lambda: validate_policy(_custom(id="nope"))) == ("id", "must be a UUID, got 'nope'")
    assert _refusal(lambda: validate_policy(_custom(name=" "))) == ("name", "a policy needs a name")


def test_rule_4_action_refusals_say_why():
    assert _refusal(lambda: policy_from_dict({"name": "p", "init": [5]})) == (
        "init[0]", "must be an action like {name: setDowntime, params: [500]}, got 5")
    assert _refusal(lambda: policy_from_dict({"name": "p", "init": [{"name": "setDowntime", "x": 1}]})) == (
        "init[0].x", "unknown key (an action has name and params)")
    assert _refusal(lambda: policy_from_dict({"name": "p", "init": [{"params": [1]}]})) == (
        "init[0].name", "must be one of setDowntime, postcopy, abort, got None")
    assert _refusal(lambda: policy_from_dict({"name": "p", "init": [{"name": "setDowntime", "params": ["x"]}]})) == (
        "init[0].params[0]", "must be an integer, got 'x'")


def test_rule_4_a_negative_downtime_written_as_text_is_read_as_a_number_and_refused_by_range():
    # The wire form carries numbers as strings: "-5" is the number -5, out of 1..max.
    assert _refusal(lambda: policy_from_dict({"name": "p", "init": [{"name": "setDowntime", "params": ["-5"]}]})) == (
        "init[0].params[0]", f"must be 1..{MAX_DOWNTIME_MS}, got -5")


@pytest.mark.parametrize("bad", [True, 1.5])
def test_rule_4_a_second_downtime_value_that_is_not_an_integer_is_named_by_its_index(bad):
    field, _ = _refusal(lambda: policy_from_dict(
        {"name": "p", "init": [{"name": "setDowntime", "params": [500, bad]}]}))
    assert field == "init[0].params[1]"


def test_rule_4_a_downtime_text_that_is_not_a_number_is_a_clear_error_not_a_crash():
    assert _refusal(lambda: policy_from_dict({"name": "p", "init": [{"name": "setDowntime", "params": ["X5"]}]})) == (
        "init[0].params[0]", "must be an integer, got 'X5'")


@pytest.mark.parametrize("text, reason", [("-5", "must be 0..1000000, got -5"), ("X5", "must be an integer, got 'X5'")])
def test_rule_4_a_stalling_limit_given_as_text_is_read_as_a_number_or_refused_clearly(text, reason):
    raw = {"name": "p", "stalling": [{"limit": text, "action": {"name": "setDowntime", "params": [500]}}]}
    assert _refusal(lambda: policy_from_dict(raw)) == ("stalling[0].limit", reason)


@pytest.mark.parametrize("key", ["init", "stalling", "last_items"])
@pytest.mark.parametrize("empty", [{}, "", 0, False])
def test_rule_4_an_empty_object_for_a_list_of_actions_is_refused_not_read_as_none(key, empty):
    # The wire form (facts §3) is a list; nothing there makes an empty object mean "none" or
    # "the default". `{}` used to be read as absent, so a typo silently dropped a policy's init.
    assert _refusal(lambda: policy_from_dict({"name": "p", key: empty})) == (key, f"must be a list, got {empty!r}")


@pytest.mark.parametrize("none", [None, []])
def test_rule_4_a_list_of_actions_that_is_null_or_empty_means_none(none):
    p = policy_from_dict({"name": "p", "init": none, "stalling": none, "last_items": none})
    assert (p.init, p.stalling, p.last_items) == ((), (), ())


def test_rule_4_an_unknown_action_or_policy_field_is_refused_with_the_known_ones_listed():
    assert _refusal(lambda: policy_from_dict({"name": "p", "init": [{"name": "go"}]})) == (
        "init[0].name", "unknown action 'go' (one of setDowntime, postcopy, abort)")
    assert _refusal(lambda: policy_from_dict({"name": "p", "speed": 1})) == (
        "speed", "unknown policy field (known: auto_converge, compression, description, guest_events, id, "
                 "init, last_items, max_migrations, name, stalling, zerocopy)")

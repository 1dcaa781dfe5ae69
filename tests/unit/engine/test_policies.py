"""Migration policies: the built-ins against facts §4, lookup, custom policy validation."""
from __future__ import annotations

import pytest

from ferry.common.errors import InvalidInput, NotFound
from ferry.engine.policies import (
    BUILTIN_POLICIES,
    check_policy_allowed,
    find_policy,
    policy_from_dict,
    policy_to_dict,
    validate_policy,
)

# Facts §4 copied: name -> (id, maxMigrations, autoConverge, compression, guestEvents, zeroCopy,
# init downtime, stalling (limit, ms), last items)
FACTS = {
    "Minimal downtime": ("80554327-0569-496b-bdeb-fcbbf52b827b", 2, True, False, True, False, 100,
                         [(1, 150), (2, 200), (3, 300), (4, 400), (6, 500)], ["abort"]),
    "Suspend workload if needed": ("80554327-0569-496b-bdeb-fcbbf52b827c", 1, True, True, True, False, 100,
                                   [(1, 150), (2, 200), (3, 300), (4, 400), (6, 500)], ["setDowntime 5000", "abort"]),
    "Post-copy migration": ("a7aeedb2-8d66-4e51-bb22-32595027ce71", 2, True, False, True, False, 100,
                            [(1, 150), (2, 200)], ["postcopy", "abort"]),
    "Very large VMs": ("57237b82-b8c2-425f-b425-114b35219626", 1, True, False, True, True, 300,
                       [(1, 400), (2, 500), (3, 700), (4, 1000), (6, 1500)], ["setDowntime 5000", "abort"]),
}


def _item(action: dict) -> str:
    return " ".join([action["name"], *action["params"]])


@pytest.mark.parametrize("name", list(FACTS))
def test_builtins_match_the_facts(name):
    pid, max_mig, ac, comp, ge, zc, init_ms, steps, last = FACTS[name]
    p = find_policy(name)
    assert (p.id, p.max_migrations, p.auto_converge, p.compression, p.guest_events, p.zerocopy) == (
        pid, max_mig, ac, comp, ge, zc)
    wire = p.schedule().to_wire()
    assert wire["init"] == [{"name": "setDowntime", "params": [str(init_ms)]}]
    stalling = wire["stalling"]
    assert [(s["limit"], int(s["action"]["params"][0])) for s in stalling[: len(steps)]] == steps
    assert [s["limit"] for s in stalling[len(steps):]] == [-1] * len(last)
    assert [_item(s["action"]) for s in stalling[len(steps):]] == last


def test_legacy_sends_no_schedule():
    legacy = find_policy("00000000-0000-0000-0000-000000000000")
    assert legacy.name == "Legacy" and legacy.schedule() is None
    assert (legacy.max_migrations, legacy.auto_converge, legacy.compression, legacy.guest_events,
            legacy.zerocopy) == (2, False, False, False, False)


def test_lookup_by_id_or_name_ignores_case():
    assert find_policy("VERY LARGE VMS").id == "57237b82-b8c2-425f-b425-114b35219626"
    assert find_policy(" 57237B82-B8C2-425F-B425-114B35219626 ").name == "Very large VMs"
    custom = policy_from_dict({"name": "Slow and steady", "max_migrations": 1})
    assert find_policy("slow AND steady", [custom]) is custom
    with pytest.raises(NotFound, match="policy 'nope' not found"):
        find_policy("nope")
    with pytest.raises(InvalidInput) as err:
        find_policy("  ")
    assert err.value.field == "policy"


def test_zero_copy_policy_needs_parallel_support():
    very_large = find_policy("Very large VMs")
    check_policy_allowed(very_large, True)
    for p in BUILTIN_POLICIES:
        if not p.zerocopy:
            check_policy_allowed(p, False)
    with pytest.raises(InvalidInput) as err:
        check_policy_allowed(very_large, False)
    assert err.value.field == "policy"
    assert "parallel migrations are not supported in this cluster" in str(err.value)
    assert err.value.exit_code == 2


GOOD = {
    "name": "Big and busy",
    "max_migrations": 1,
    "auto_converge": True,
    "zerocopy": True,
    "guest_events": True,
    "init": [{"name": "setDowntime", "params": [500]}],
    "stalling": [{"limit": 1, "action": {"name": "setDowntime", "params": ["800"]}},
                 {"limit": 3, "action": {"name": "setDowntime", "params": [2000]}}],
    "last_items": [{"name": "setDowntime", "params": [5000]}, "abort"],
}


def test_a_custom_policy_round_trips():
    p = policy_from_dict(GOOD)
    assert p.zerocopy and not p.builtin and p.max_migrations == 1
    assert p.id == policy_from_dict(dict(GOOD)).id            # stable id from the name
    again = policy_from_dict({k: v for k, v in policy_to_dict(p).items() if k not in ("builtin", "legacy")})
    assert again == p
    wire = p.schedule().to_wire()
    assert wire["stalling"][-2:] == [{"limit": -1, "action": {"name": "setDowntime", "params": ["5000"]}},
                                     {"limit": -1, "action": {"name": "abort", "params": []}}]


def test_ovirt_style_keys_are_accepted():
    p = policy_from_dict({"name": "x", "maxMigrations": 3, "autoConverge": True, "zeroCopy": False,
                          "enableGuestEvents": True, "lastItems": ["abort"]})
    assert (p.max_migrations, p.auto_converge, p.guest_events, p.last_items[0].name) == (3, True, True, "abort")


@pytest.mark.parametrize("change, field", [
    ({"name": ""}, "name"),
    ({"name": "minimal DOWNTIME"}, "name"),
    ({"id": "not-a-uuid"}, "id"),
    ({"id": "57237b82-b8c2-425f-b425-114b35219626"}, "id"),
    ({"max_migrations": 0}, "max_migrations"),
    ({"max_migrations": 1.5}, "max_migrations"),
    ({"max_migrations": "2"}, "max_migrations"),
    ({"auto_converge": "yes"}, "auto_converge"),
    ({"compression": True}, "compression"),                       # with zero-copy
    ({"colour": "blue"}, "colour"),
    ({"init": [{"name": "postcopy"}]}, "init[0].name"),
    ({"init": [{"name": "setDowntime"}]}, "init[0].params"),
    ({"init": [{"name": "setDowntime", "params": [0]}]}, "init[0].params[0]"),
    ({"init": [{"name": "setDowntime", "params": ["soon"]}]}, "init[0].params[0]"),
    ({"init": "setDowntime"}, "init"),
    ({"stalling": [{"limit": 1, "action": {"name": "shout"}}]}, "stalling[0].action.name"),
    ({"stalling": [{"limit": -1, "action": {"name": "abort"}}]}, "stalling[0].limit"),
    ({"stalling": [{"limit": 2.5, "action": {"name": "abort"}}]}, "stalling[0].limit"),
    ({"stalling": [{"limit": 1}]}, "stalling[0]"),
    ({"stalling": [{"limit": 3, "action": "abort"}, {"limit": 4, "action": "abort"}]}, "stalling[1].action"),
    ({"stalling": [{"limit": 5, "action": {"name": "setDowntime", "params": [1]}},
                   {"limit": 2, "action": {"name": "setDowntime", "params": [2]}}]}, "stalling[1].limit"),
    ({"last_items": [{"name": "abort", "params": [1]}]}, "last_items[0].params"),
    ({"last_items": ["abort", {"name": "setDowntime", "params": [9]}]}, "last_items[1]"),
    ({"last_items": ["postcopy", "postcopy"]}, "last_items[1]"),
])
def test_bad_custom_policies_name_the_field(change, field):
    raw = {**GOOD, **change}
    with pytest.raises(InvalidInput) as err:
        policy_from_dict(raw)
    assert err.value.field == field, str(err.value)


def test_names_and_ids_are_unique_among_custom_policies():
    first = policy_from_dict(GOOD)
    with pytest.raises(InvalidInput) as err:
        policy_from_dict({**GOOD, "name": "BIG AND BUSY"}, existing=[first])
    assert err.value.field == "name"
    with pytest.raises(InvalidInput) as err:
        policy_from_dict({**GOOD, "name": "other", "id": first.id}, existing=[first])
    assert err.value.field == "id"


def test_builtins_cannot_pass_as_custom():
    with pytest.raises(InvalidInput) as err:
        validate_policy(find_policy("Legacy"))
    assert err.value.field == "builtin"


def test_a_policy_name_with_a_lone_surrogate_is_invalid_input_naming_the_field():
    """Found by the scenario fuzz: the id is derived from the name, and UTF-8 has no lone surrogates."""
    with pytest.raises(InvalidInput) as err:
        policy_from_dict({"name": "\ud800\udc00"})
    assert err.value.field == "name"

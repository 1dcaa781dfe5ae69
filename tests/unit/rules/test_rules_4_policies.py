"""Facts §4 (the built-in policies, row by row) and the validation of custom policies:
every bound inclusive at both ends, `policy_from_dict`'s defaults and unknown-key checks."""
import uuid

import pytest

from ferry.common.errors import InvalidInput, NotFound
from ferry.engine.policies import (
    ADAPTIVE_ID,
    BUILTIN_BY_ID,
    BUILTIN_BY_NAME,
    BUILTIN_POLICIES,
    LEGACY_ID,
    MAX_MIGRATIONS_LIMIT,
    MAX_NAME_LENGTH,
    MAX_STALLING_LIMIT,
    MINIMAL_DOWNTIME_ID,
    POST_COPY_ID,
    SUSPEND_WORKLOAD_ID,
    VERY_LARGE_VMS_ID,
    MigrationPolicy,
    check_policy_allowed,
    find_policy,
    policy_from_dict,
    policy_to_dict,
    validate_policy,
)
from ferry.protocol.schedule import MAX_DOWNTIME_MS, Action, Schedule, StallingStep

D = "setDowntime"


def plain_schedule(policy):
    s = policy.schedule()
    return None if s is None else (
        [(a.name, a.downtime_ms) for a in s.init],
        [(x.limit, x.action.name, x.action.downtime_ms) for x in s.stalling])


STANDARD = [(1, D, 150), (2, D, 200), (3, D, 300), (4, D, 400), (6, D, 500)]

# The facts table, copied: (id, name, maxMigrations, autoConverge, compression, guestEvents, zeroCopy,
# init, stalling, last items).
TABLE = [
    ("80554327-0569-496b-bdeb-fcbbf52b827b", "Minimal downtime", 2, True, False, True, False,
     [(D, 100)], STANDARD, [(-1, "abort", None)]),
    ("80554327-0569-496b-bdeb-fcbbf52b827c", "Suspend workload if needed", 1, True, True, True, False,
     [(D, 100)], STANDARD, [(-1, D, 5000), (-1, "abort", None)]),
    ("a7aeedb2-8d66-4e51-bb22-32595027ce71", "Post-copy migration", 2, True, False, True, False,
     [(D, 100)], [(1, D, 150), (2, D, 200)], [(-1, "postcopy", None), (-1, "abort", None)]),
    ("57237b82-b8c2-425f-b425-114b35219626", "Very large VMs", 1, True, False, True, True,
     [(D, 300)], [(1, D, 400), (2, D, 500), (3, D, 700), (4, D, 1000), (6, D, 1500)],
     [(-1, D, 5000), (-1, "abort", None)]),
]


@pytest.mark.parametrize("row", TABLE, ids=[r[1] for r in TABLE])
def test_rule_4_builtin_policy_row(row):
    pid, name, max_m, ac, comp, ge, zc, init, stalling, last = row
    p = BUILTIN_BY_ID[pid]
    assert (p.name, p.max_migrations, p.auto_converge, p.compression, p.guest_events, p.zerocopy) == (
        name, max_m, ac, comp, ge, zc)
    assert p.builtin is True and p.legacy is False
    assert plain_schedule(p) == (init, stalling + last)   # §3: last items are limit -1
    assert BUILTIN_BY_NAME[name.lower()] is p


def test_rule_4_legacy_sends_no_schedule():
    p = BUILTIN_BY_ID["00000000-0000-0000-0000-000000000000"]
    assert p.id == LEGACY_ID and p.name == "Legacy"
    assert (p.max_migrations, p.auto_converge, p.compression, p.guest_events, p.zerocopy) == (2, False, False,
                                                                                               False, False)
    assert p.builtin is True and p.legacy is True and p.schedule() is None


def test_rule_4_the_builtin_ids():
    """oVirt's five with oVirt's ids, in its order; then Ferry's own Adaptive (deliberately beyond oVirt)."""
    assert [p.id for p in BUILTIN_POLICIES] == [MINIMAL_DOWNTIME_ID, SUSPEND_WORKLOAD_ID, POST_COPY_ID,
                                                VERY_LARGE_VMS_ID, LEGACY_ID, ADAPTIVE_ID]
    assert all(p.builtin for p in BUILTIN_POLICIES)
    assert [p.legacy for p in BUILTIN_POLICIES] == [False, False, False, False, True, False]
    assert all(p.description for p in BUILTIN_POLICIES)


def test_rule_4_zerocopy_policy_offered_only_where_parallel_is_supported():
    very_large = BUILTIN_BY_ID[VERY_LARGE_VMS_ID]
    with pytest.raises(InvalidInput) as e:
        check_policy_allowed(very_large, False, field="cluster.policy")
    assert e.value.field == "cluster.policy" and "Very large VMs" in e.value.reason
    check_policy_allowed(very_large, True)
    check_policy_allowed(BUILTIN_BY_ID[MINIMAL_DOWNTIME_ID], False)


def test_rule_4_find_policy_by_id_or_name_builtins_first():
    assert find_policy("very LARGE vms") is BUILTIN_BY_ID[VERY_LARGE_VMS_ID]
    assert find_policy(" " + POST_COPY_ID.upper() + " ") is BUILTIN_BY_ID[POST_COPY_ID]
    mine = custom_policy(name="Mine")
    assert find_policy("mine", [mine]) is mine
    assert find_policy(mine.id, [mine]) is mine
    with pytest.raises(NotFound):
        find_policy("nope", [mine])
    for bad in ("", "  ", None):
        with pytest.raises(InvalidInput) as e:
            find_policy(bad, field="vm.policy")
        assert e.value.field == "vm.policy"


# ---- validate_policy: the guard, and every bound at both ends ----------------------------

def custom_policy(**kw):
    kw.setdefault("id", str(uuid.uuid4()))
    kw.setdefault("name", "custom")
    return MigrationPolicy(**kw)


@pytest.mark.parametrize("marker", [{"builtin": True}, {"legacy": True}, {"builtin": True, "legacy": True}])
def test_rule_4_custom_policy_cannot_be_builtin_or_legacy(marker):
    with pytest.raises(InvalidInput) as e:
        validate_policy(custom_policy(**marker))
    assert e.value.field == "builtin"


def test_rule_4_a_builtin_fails_validation_as_a_custom_policy():
    for p in BUILTIN_POLICIES:
        with pytest.raises(InvalidInput) as e:
            validate_policy(p)
        assert e.value.field == "builtin"


@pytest.mark.parametrize("n, ok", [(0, False), (1, True), (MAX_MIGRATIONS_LIMIT, True),
                                   (MAX_MIGRATIONS_LIMIT + 1, False), (True, False), (2.0, False)])
def test_rule_4_max_migrations_is_1_to_64_inclusive(n, ok):
    assert MAX_MIGRATIONS_LIMIT == 64
    p = custom_policy(max_migrations=n)
    if ok:
        assert validate_policy(p) is p
    else:
        with pytest.raises(InvalidInput) as e:
            validate_policy(p)
        assert e.value.field == "max_migrations"


@pytest.mark.parametrize("ms, ok", [(0, False), (1, True), (MAX_DOWNTIME_MS, True), (MAX_DOWNTIME_MS + 1, False)])
def test_rule_4_downtime_is_1_to_max_inclusive_in_init_stalling_and_last_items(ms, ok):
    for kw, field in ((dict(init=(Action(D, ms),)), "init[0].params[0]"),
                      (dict(stalling=(StallingStep(1, Action(D, ms)),)), "stalling[0].action.params[0]"),
                      (dict(last_items=(Action(D, ms),)), "last_items[0].params[0]")):
        p = custom_policy(**kw)
        if ok:
            assert validate_policy(p) is p
        else:
            with pytest.raises(InvalidInput) as e:
                validate_policy(p)
            assert e.value.field == field


@pytest.mark.parametrize("limit, ok", [(-1, False), (0, True), (MAX_STALLING_LIMIT, True),
                                       (MAX_STALLING_LIMIT + 1, False)])
def test_rule_4_stalling_limit_is_0_to_max_inclusive(limit, ok):
    assert MAX_STALLING_LIMIT == 1_000_000
    p = custom_policy(stalling=(StallingStep(limit, Action(D, 100)),))
    if ok:
        assert validate_policy(p) is p
    else:
        with pytest.raises(InvalidInput) as e:
            validate_policy(p)
        assert e.value.field == "stalling[0].limit"


def test_rule_4_name_length_is_at_most_128_inclusive():
    assert MAX_NAME_LENGTH == 128
    p = custom_policy(name="n" * MAX_NAME_LENGTH)
    assert validate_policy(p) is p
    with pytest.raises(InvalidInput) as e:
        validate_policy(custom_policy(name="n" * (MAX_NAME_LENGTH + 1)))
    assert e.value.field == "name" and "129" in e.value.reason


def test_rule_4_stalling_limits_may_repeat_but_not_decrease():
    steps = (StallingStep(2, Action(D, 100)), StallingStep(2, Action(D, 200)))
    assert validate_policy(custom_policy(stalling=steps))
    with pytest.raises(InvalidInput) as e:
        validate_policy(custom_policy(stalling=(StallingStep(3, Action(D, 100)), StallingStep(2, Action(D, 200)))))
    assert e.value.field == "stalling[1].limit" and "3" in e.value.reason


def test_rule_4_stalling_limit_0_first_is_allowed():
    assert validate_policy(custom_policy(stalling=(StallingStep(0, Action(D, 100)),)))


def test_rule_4_validate_names_and_ids_are_unique_case_insensitively():
    mine = custom_policy(name="Mine")
    with pytest.raises(InvalidInput) as e:
        validate_policy(custom_policy(name=" mINE "), [mine])
    assert e.value.field == "name"
    with pytest.raises(InvalidInput) as e:
        validate_policy(custom_policy(name="minimal DOWNTIME"))
    assert e.value.field == "name"
    with pytest.raises(InvalidInput) as e:
        validate_policy(custom_policy(id=mine.id.upper(), name="other"), [mine])
    assert (e.value.field, e.value.reason) == ("id", f"{mine.id.upper()} is already the id of policy 'Mine'")
    with pytest.raises(InvalidInput) as e:
        validate_policy(custom_policy(id=LEGACY_ID, name="other"))
    assert e.value.reason == f"{LEGACY_ID} is already the id of built-in policy 'Legacy'"


@pytest.mark.parametrize("kw, field", [
    (dict(id="not-a-uuid"), "id"), (dict(name=""), "name"), (dict(name="  "), "name"),
    (dict(auto_converge=1), "auto_converge"), (dict(compression="yes"), "compression"),
    (dict(guest_events=None), "guest_events"), (dict(zerocopy=0), "zerocopy"),
    (dict(zerocopy=True, compression=True), "compression"),
    (dict(init=(Action("abort"),)), "init[0].name"),
    (dict(init=(Action("postcopy"),)), "init[0].name"),
    (dict(init=(Action("bogus"),)), "init[0].name"),
    (dict(init=(Action(D),)), "init[0].params"),
    (dict(last_items=(Action("abort"), Action(D, 5))), "last_items[1]"),
    (dict(last_items=(Action("postcopy"), Action("postcopy"))), "last_items[1]"),
    (dict(stalling=(StallingStep(1, Action("abort")),), last_items=(Action(D, 5),)), "last_items[0]"),
])
def test_rule_4_custom_policy_errors_name_the_field(kw, field):
    with pytest.raises(InvalidInput) as e:
        validate_policy(custom_policy(**kw))
    assert e.value.field == field


def test_rule_4_postcopy_then_abort_is_a_valid_custom_policy():
    p = custom_policy(last_items=(Action("postcopy"), Action("abort")))
    assert validate_policy(p) is p


# ---- policy_from_dict ----------------------------------------------------------------------

def test_rule_4_policy_from_dict_defaults_each_asserted():
    """A custom policy that leaves a field out gets the safe default, never a built-in's value:
    above all it must not become zero-copy."""
    p = policy_from_dict({"name": "bare"})
    assert p.max_migrations == 2
    assert p.auto_converge is False
    assert p.compression is False
    assert p.guest_events is False
    assert p.zerocopy is False
    assert (p.init, p.stalling, p.last_items) == ((), (), ())
    assert p.description == ""
    assert p.builtin is False and p.legacy is False
    assert p.id == str(uuid.uuid5(uuid.UUID("5b3f4c36-6a2e-4f3e-9d55-2f7e0c3f1a9b"), "bare"))
    assert p.schedule() == Schedule()


def test_rule_4_policy_from_dict_keeps_every_given_field():
    raw = {"name": " Mine ", "id": "11111111-2222-3333-4444-555555555555", "description": "for tests",
           "max_migrations": 3, "auto_converge": True, "compression": False, "guest_events": True,
           "zerocopy": True, "init": [{"name": D, "params": ["150"]}],
           "stalling": [{"limit": "2", "action": {"name": D, "params": [300]}}],
           "last_items": ["abort"]}
    p = policy_from_dict(raw)
    assert (p.name, p.id, p.description, p.max_migrations, p.auto_converge, p.compression,
            p.guest_events, p.zerocopy) == ("Mine", raw["id"], "for tests", 3, True, False, True, True)
    assert p.init == (Action(D, 150),)
    assert p.stalling == (StallingStep(2, Action(D, 300)),)
    assert p.last_items == (Action("abort"),)
    back = policy_to_dict(p)
    assert back["description"] == "for tests" and back["builtin"] is False and back["legacy"] is False
    again = policy_from_dict({k: v for k, v in back.items() if k not in ("builtin", "legacy")})
    assert again == p


def test_rule_4_policy_from_dict_aliases():
    p = policy_from_dict({"name": "a", "maxMigrations": 4, "autoConverge": True, "compressed": True,
                          "enableGuestEvents": True, "lastItems": [{"name": "abort"}],
                          "convergence": [{"limit": 1, "action": {"name": D, "params": [200]}}]})
    assert (p.max_migrations, p.auto_converge, p.compression, p.guest_events) == (4, True, True, True)
    assert p.last_items == (Action("abort"),) and p.stalling == (StallingStep(1, Action(D, 200)),)
    assert policy_from_dict({"name": "b", "zeroCopy": True, "guestEvents": True}).zerocopy is True


def test_rule_4_policy_from_dict_same_name_same_id_case_insensitive():
    assert policy_from_dict({"name": "Abc"}).id == policy_from_dict({"name": " abc"}).id
    assert policy_from_dict({"name": "Abc"}).id != policy_from_dict({"name": "abd"}).id


@pytest.mark.parametrize("raw, field", [
    ({"name": "a", "colour": 1}, "colour"),
    ({"name": "a", "init": [{"name": D, "params": [1], "when": 2}]}, "init[0].when"),
    ({"name": "a", "last_items": [{"name": "abort", "extra": 1}]}, "last_items[0].extra"),
    ({"name": "a", "stalling": [{"limit": 1, "action": {"name": D, "params": [1]}, "note": "x"}]},
     "stalling[0].note"),
    ({"name": "a", "stalling": [{"limit": 1, "action": {"name": D, "params": [1], "z": 1}}]},
     "stalling[0].action.z"),
    ({"name": "a", "stalling": [{"limit": 1}]}, "stalling[0]"),
    ({"name": "a", "stalling": [{"action": {"name": "abort"}}]}, "stalling[0]"),
    ({"name": "a", "stalling": ["abort"]}, "stalling[0]"),
    ({"name": "a", "stalling": {"limit": 1}}, "stalling"),
    ({"name": "a", "init": [7]}, "init[0]"),
    ({"name": "a", "init": [{"params": [1]}]}, "init[0].name"),
    ({"name": "a", "init": [{"name": D, "params": ["x"]}]}, "init[0].params[0]"),
    ({"name": "a", "init": [{"name": D, "params": [True]}]}, "init[0].params[0]"),
    ({"name": "a", "init": [{"name": D, "params": [1, 2]}]}, "init[0].params"),
    ({"name": "a", "last_items": [{"name": "abort", "params": [1]}]}, "last_items[0].params"),
    ({"name": "a", "last_items": [{"name": "jump"}]}, "last_items[0].name"),
    ({"name": "a", "description": 5}, "description"),
    ({"name": 5}, "name"), ({}, "name"), ({"name": " "}, "name"),
])
def test_rule_4_policy_from_dict_errors_name_the_field(raw, field):
    with pytest.raises(InvalidInput) as e:
        policy_from_dict(raw)
    assert e.value.field == field


def test_rule_4_policy_from_dict_refuses_non_objects():
    with pytest.raises(InvalidInput) as e:
        policy_from_dict(["name"])
    assert e.value.field == "policy" and "list" in e.value.reason


def test_rule_4_policy_from_dict_a_single_param_need_not_be_a_list():
    assert policy_from_dict({"name": "a", "init": [{"name": D, "params": 250}]}).init == (Action(D, 250),)


def test_rule_4_policy_from_dict_null_description_is_empty():
    assert policy_from_dict({"name": "a", "description": None}).description == ""

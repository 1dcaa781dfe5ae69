"""ferry.engine.migration_eta: a running migration's record -> eta {seconds, outcome}."""
from __future__ import annotations

import pytest

from ferry.engine.migration_eta import limit_in_force, migration_eta, pending_items, with_eta
from ferry.engine.scenario import parse_scenario

MIB = 1 << 20
ITEMS = ((1, "setDowntime", 150), (2, "setDowntime", 200), (-1, "abort", None))


def plan_dict(policy="Minimal downtime"):
    return parse_scenario({"cluster": {"policy": policy, "bandwidth": "CUSTOM:800"}, "vm": {"vcpus": 2},
                           "source": {"name": "h1"}, "destination": {"name": "h2"}}).plan().to_dict()


def rec(state="RUNNING", policy="Minimal downtime", **figures):
    f = {"agent_state": "running", "data_total": 512 * MIB, "memory_total": 512 * MIB,
         "data_remaining": 100 * MIB, "bandwidth_bps": 50 * MIB, "dirty_rate_bps": 0, "iteration": 1,
         "time_elapsed_ms": 2000, "max_downtime_ms": 100, **figures}
    return {"state": state, "plan": plan_dict(policy), "figures": f}


def test_pending_items_replay_the_agents_one_item_per_iteration_rule():
    assert pending_items(ITEMS, 0) == ITEMS
    assert pending_items(ITEMS, 1) == ITEMS                  # limit 1 < 1 is false
    assert pending_items(ITEMS, 2) == ITEMS[1:]
    assert pending_items(ITEMS, 3) == ITEMS[2:]
    assert pending_items(ITEMS, 4) == ()                     # -1 fired on the next iteration


def test_limit_in_force_is_the_last_setdowntime_run():
    assert limit_in_force(100.0, ITEMS, 0) == 100.0
    assert limit_in_force(100.0, ITEMS, 2) == 150.0
    assert limit_in_force(None, ITEMS, 3) == 200.0


def test_idle_remaining_over_throughput_plus_the_confirm_half_of_the_fixed_cost():
    eta = migration_eta(rec())
    assert eta.outcome == "converge" and eta.seconds == pytest.approx(100 / 50 + 0.75)


def test_a_migration_dirtying_faster_than_it_sends_will_abort_at_the_schedules_end():
    eta = migration_eta(rec(dirty_rate_bps=80 * MIB, iteration=6))
    assert eta.outcome == "abort" and eta.seconds is not None and eta.seconds > 0


def test_legacy_without_the_abort_in_reach_keeps_going_and_its_time_is_known():
    eta = migration_eta(rec(policy="Legacy", dirty_rate_bps=10 * MIB, max_downtime_ms=500))
    assert eta.outcome == "converge" and eta.seconds > 2


@pytest.mark.parametrize("change", [
    {"state": "SUCCEEDED"}, {"state": "PENDING"},
])
def test_no_eta_unless_running(change):
    assert migration_eta({**rec(), **change}) is None


@pytest.mark.parametrize("figures", [
    {"bandwidth_bps": 0},                  # the job just started: no throughput yet
    {"postcopy": True},                    # post-copy pulls the rest: not the pre-copy model
    {"agent_state": "waiting"},            # waiting for the destination's slot
    {"data_total": None, "memory_total": None},
])
def test_no_eta_without_what_it_needs(figures):
    assert migration_eta(rec(**figures)) is None


def test_with_eta_adds_the_wire_form_or_null():
    assert with_eta(rec())["eta"] == {"seconds": 2.8, "outcome": "converge"}
    assert with_eta({"state": "FAILED"})["eta"] is None
    assert with_eta({"state": "RUNNING", "plan": {"params": {"dst": ""}}, "figures": rec()["figures"]})["eta"] is None

"""ferry.engine.migration_eta: a running migration's record -> eta {seconds, outcome}."""
from __future__ import annotations

import pytest

from ferry.engine.migration_eta import (
    limit_in_force,
    migration_eta,
    pass_elapsed_s,
    pending_items,
    premigration,
    with_eta,
)
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


def test_idle_remaining_over_throughput_plus_the_confirm_part_of_the_fixed_cost():
    eta = migration_eta(rec())
    assert eta.outcome == "converge" and eta.seconds == pytest.approx(100 / 50 + 1.35)


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
    assert with_eta(rec())["eta"] == {"seconds": 3.4, "outcome": "converge"}
    assert with_eta({"state": "FAILED"})["eta"] is None
    assert with_eta({"state": "RUNNING", "plan": {"params": {"dst": ""}}, "figures": rec()["figures"]})["eta"] is None


def test_first_pass_eta_uses_the_plans_premigration_measurement_and_the_pass_time():
    """Remaining 400 of 512 MiB at 50 MiB/s, pass 0 (QEMU iteration 1) running 2 s, no job
    dirty rate; measured before: 10 MiB/s linear, 512 touched. Minimal downtime, capped: QEMU
    checks 0.1 s chunks apart, so a pass stops half a chunk (2.5 MiB) under threshold = B x limit.
    n0 (100 ms, 5 MiB): 397.5 sent in 7.95 s, left 2.5 + 10 x 9.95 = 102; n1: 99.5 in 1.99 s,
    left 2.5 + 19.9 = 22.4; n2 (150 ms, 7.5): 17.4 in 0.348 s, left 5 + 3.48 = 8.48; n3 (200 ms,
    10): 0.98 in 0.0196 s, left 7.5 + 0.196 = 7.696 <= 10; final 7.696/50 = 0.15392 s.
    Sum 10.46152 s + 1.35 s. Without the measurement: 400/50 = 8 s (nothing dirtied)."""
    r = rec(data_remaining=400 * MIB, pass_started_ms=0)
    r["plan"]["measured"] = {"dirtyRateMiBs": 10.0, "touchedMiB": 512.0, "dirtyPattern": "linear", "at": 0}
    eta = migration_eta(r)
    assert eta.outcome == "converge"
    assert eta.seconds == pytest.approx(10.46152 + 1.35)
    assert migration_eta(rec(data_remaining=400 * MIB)).seconds == pytest.approx(8 + 1.35, abs=0.1)


@pytest.mark.parametrize("measured", [None, "fast", {"dirtyRateMiBs": -1}, {"dirtyRateMiBs": 1, "dirtyPattern": "x"},
                                      {"touchedMiB": 100}])
def test_an_unreadable_premigration_measurement_is_ignored(measured):
    assert premigration({"measured": measured}) is None


def test_pass_elapsed_from_the_pass_start_or_the_job_start_in_the_first_pass():
    assert pass_elapsed_s({"time_elapsed_ms": 9000, "pass_started_ms": 7500}, 3) == 1.5
    assert pass_elapsed_s({"time_elapsed_ms": 9000}, 0) == 9.0
    assert pass_elapsed_s({"time_elapsed_ms": 9000}, 3) == 0.0          # unknown: none carried
    assert pass_elapsed_s({}, 0) == 0.0

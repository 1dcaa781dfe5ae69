"""The policies benchmark's pure parts: parameters from the engine's planner, outcomes, summaries."""
from __future__ import annotations

import pytest

from ferry.bench.policy_bench import (
    ABORTED,
    CONVERGED,
    DEFAULT_POLICIES,
    iterations,
    outcome_name,
    parse_policies,
    policy_params,
    summarize_policy,
)
from ferry.common.errors import InvalidInput, NotFound
from ferry.engine.policies import find_policy
from ferry.lab.plan import LabPlan

H1, H2 = LabPlan(4).host(1), LabPlan(4).host(2)


@pytest.mark.parametrize("name", DEFAULT_POLICIES)
def test_every_policy_gets_the_same_cap_and_the_lab_destination(name):
    params, plan = policy_params(find_policy(name), H1, H2, cap_mib_s=40)
    assert params["maxBandwidth"] == 40
    assert params["dst"] == "198.18.4.3:54321" and params["dstqemu"] == "198.18.4.3"
    assert plan["policy"]["name"] == name


def test_policies_keep_their_own_schedules_and_features():
    minimal, _ = policy_params(find_policy("Minimal downtime"), H1, H2, cap_mib_s=40)
    assert minimal["convergenceSchedule"]["init"] == [{"name": "setDowntime", "params": ["100"]}]
    assert minimal["convergenceSchedule"]["stalling"][-1]["action"]["name"] == "abort"
    assert minimal["autoConverge"] is True and "parallel" not in minimal
    large, _ = policy_params(find_policy("Very large VMs"), H1, H2, cap_mib_s=40)
    assert large["zerocopy"] is True and large["parallel"] >= 2
    legacy, _ = policy_params(find_policy("Legacy"), H1, H2, cap_mib_s=40)
    assert "convergenceSchedule" not in legacy and legacy["autoConverge"] is False


def test_bad_cap_and_unknown_policy():
    with pytest.raises(InvalidInput, match="cap"):
        policy_params(find_policy("Legacy"), H1, H2, cap_mib_s=0)
    with pytest.raises(NotFound):
        parse_policies("Minimal downtime,No such policy")
    with pytest.raises(InvalidInput, match="policies"):
        parse_policies(" , ")
    assert [p.name for p in parse_policies("legacy, minimal downtime")] == ["Legacy", "Minimal downtime"]


def test_outcomes_and_iterations():
    assert outcome_name("succeeded") == CONVERGED and outcome_name("aborted") == ABORTED
    assert outcome_name("failed") == "failed"
    assert iterations({"iterations": 5}, {"iteration": 0}, 9) == 5
    assert iterations(None, {"iteration": 0}, 9) == 9
    assert iterations(None, {"iteration": 4}, None) == 4
    assert iterations(None, {"iteration": 0}, None) is None


def test_summary_counts_outcomes_and_downtime_of_converged_runs_only():
    runs = [{"outcome": CONVERGED, "wall_s": 20.0, "iterations": 12, "verified": True,
             "figures": {"downtime_ms": 450}, "actions": [{"n": None, "action": "setDowntime(100)"}], "flags": ["A"]},
            {"outcome": ABORTED, "wall_s": 30.0, "iterations": 9, "verified": True, "figures": None,
             "actions": [], "flags": ["A"]}]
    s = summarize_policy("Minimal downtime", runs)
    assert (s["runs"], s["converged_runs"], s["aborted_runs"], s["other_runs"]) == (2, 1, 1, 0)
    assert s["downtime_ms"] == {"median": 450.0, "min": 450.0, "max": 450.0, "n": 1}
    assert s["time_s"]["median"] == 25.0 and s["verified"] == 2

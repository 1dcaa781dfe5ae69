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


def test_harder_workloads_are_sizes_and_percentages_of_the_cap():
    from ferry.bench.policy_bench import Workload, parse_workloads
    got = parse_workloads("512:50, 512:80,512:100,4096:120", 40)
    assert [(w.memory_mib, w.dirty_mib_s, w.fill_mib, w.cap_mib_s) for w in got] == \
        [(512, 20, 320, 40), (512, 32, 320, 40), (512, 40, 320, 40), (4096, 48, 2560, 40)]
    assert parse_workloads("2048:120:640@80", 40) == [Workload(2048, 96, 640, 80)]
    assert parse_workloads("512:300", 40, doomed=True, field="doomed")[0].doomed
    for bad in ("", "512", "512:x", "100:50", "512:0", "512:50:8", "512:50:600", "512:50@0", "512:50@x"):
        with pytest.raises(InvalidInput) as err:
            parse_workloads(bad, 40)
        assert err.value.field == "workloads"


def test_parts_merge_into_one_result_with_a_summary_per_policy_and_workload():
    from ferry.bench.policy_bench import merge, run_downtime
    run = {"outcome": CONVERGED, "wall_s": 9.0, "iterations": 2, "verified": True, "figures": None,
           "agent_downtime_ms": 9, "postcopy": True, "actions": [], "flags": [], "cap_mib_s": 40}
    part = {"kind": "policies", "started_at": "2026-12-02T17:00:00", "ended_at": "2026-12-02T17:10:00",
            "machine": {"load_avg_at_start": [1.0]}, "workload": {"workloads": [{"memory_mib": 512}]},
            "runs": [{**run, "policy": "Adaptive", "memory_mib": 512, "dirty_mib_s": 48}]}
    later = {**part, "started_at": "2026-12-02T17:20:00", "ended_at": "2026-12-02T17:30:00",
             "workload": {"workloads": [{"memory_mib": 1024}]},
             "runs": [{**run, "policy": "Adaptive", "memory_mib": 1024, "dirty_mib_s": 96, "cap_mib_s": 80}]}
    both = merge([part, later])
    assert (both["started_at"], both["ended_at"]) == ("2026-12-02T17:00:00", "2026-12-02T17:30:00")
    assert [s["memory_mib"] for s in both["summary"]] == [512, 1024] and len(both["parts"]) == 2
    assert both["summary"][0]["downtime_ms"]["median"] == 9      # post-copy: the agent's (QEMU's) figure
    assert run_downtime({"figures": {"downtime_ms": 30}, "agent_downtime_ms": 9}) == 30
    again = {**later, "runs": [{**run, "policy": "Adaptive", "memory_mib": 512, "dirty_mib_s": 48, "wall_s": 7.0}]}
    redone = merge([part, later, again])
    assert [(s["memory_mib"], s["time_s"]["median"]) for s in redone["summary"]] == [(1024, 9.0), (512, 7.0)]
    with pytest.raises(InvalidInput):
        merge([{"kind": "migrate"}])


def test_a_merged_result_merged_again_keeps_each_of_its_parts():
    from ferry.bench.policy_bench import merge
    run = {"outcome": CONVERGED, "wall_s": 9.0, "iterations": 2, "verified": True, "figures": None,
           "agent_downtime_ms": 9, "postcopy": False, "actions": [], "flags": [], "cap_mib_s": 40,
           "policy": "Adaptive", "dirty_mib_s": 48}
    def part(hour, mib):
        return {"kind": "policies", "started_at": f"2026-12-02T{hour}:00:00", "ended_at": f"2026-12-02T{hour}:10:00",
                "machine": {"load_avg_at_start": [float(hour)]}, "workload": {"workloads": [{"memory_mib": mib}]},
                "runs": [{**run, "memory_mib": mib}]}
    again = merge([merge([part(17, 512), part(18, 1024)]), part(19, 2048)])
    assert [p["started_at"][11:13] for p in again["parts"]] == ["17", "18", "19"]
    assert [p["load_avg_at_start"] for p in again["parts"]] == [[17.0], [18.0], [19.0]]
    assert [s["memory_mib"] for s in again["summary"]] == [512, 1024, 2048]


def test_adaptive_plan_carries_the_measured_dirty_rate_and_parallel_drops_postcopy():
    from ferry.bench.policy_bench import policy_params
    from ferry.engine.policies import ADAPTIVE_ID, BUILTIN_BY_ID
    src, dst = H1, H2
    params, _ = policy_params(BUILTIN_BY_ID[ADAPTIVE_ID], src, dst, cap_mib_s=40, dirty_rate_mibs=38.14)
    assert params["adaptive"]["dirtyRateMiBs"] == 38.1 and params["adaptive"]["allowPostcopy"] is True
    assert params["maxBandwidth"] == 40
    params, _ = policy_params(BUILTIN_BY_ID[ADAPTIVE_ID], src, dst, cap_mib_s=40, parallel=2)
    assert params["parallel"] == 2 and params["adaptive"]["allowPostcopy"] is False
    assert "dirtyRateMiBs" not in params["adaptive"]


def test_the_downtime_bound_is_the_schedule_the_agent_runs():
    from ferry.bench.policy_bench import downtime_bound, policy_params
    from ferry.engine.policies import BUILTIN_POLICIES
    bounds = {p.name: downtime_bound(policy_params(p, H1, H2, cap_mib_s=40)[0]) for p in BUILTIN_POLICIES}
    assert bounds == {"Minimal downtime": 500, "Suspend workload if needed": 5000, "Post-copy migration": 200,
                      "Very large VMs": 5000, "Legacy": 500, "Adaptive": 2000}    # Legacy: Vdsm's own steps


def test_a_deferred_abort_is_kept_in_the_raw_result():
    from ferry.bench.policy_bench import action_record
    waited = {"n": 9, "action": "abort", "ok": True, "at": 1.0, "deferred": "the switch-over is under way"}
    assert action_record(waited) == {"n": 9, "action": "abort", "ok": True, "reason": None,
                                     "deferred": "the switch-over is under way"}
    assert "deferred" not in action_record({"n": 2, "action": "setDowntime(100)", "ok": True})

"""Issue 17's targets judged from a policies benchmark result (ferry.bench.policy_report)."""
from __future__ import annotations

from ferry.bench.policy_report import NONE, section, start_forecast, targets


def run(policy, outcome, wall, *, mem=512, dirty=48, cap=40, doomed=False, downtime=None, bound=2000,
        adaptive=None, parallel=None, postcopy=False, verified=True):
    params = {"adaptive": adaptive} if adaptive else {}
    return {"policy": policy, "outcome": outcome, "wall_s": wall, "memory_mib": mem, "dirty_mib_s": dirty,
            "cap_mib_s": cap, "fill_mib": 320, "doomed": doomed, "figures": None, "agent_downtime_ms": downtime,
            "downtime_bound_ms": bound, "params": params, "parallel": parallel, "postcopy": postcopy,
            "verified": verified, "actions": [], "iterations": 3, "measured_dirty_mib_s": 50.0}


def spec(rate, touched=420, allow_postcopy=True):
    return {"maxDowntimeMs": 2000, "dirtyRateMiBs": rate, "touchedMiB": touched, "allowPostcopy": allow_postcopy}


def test_the_start_forecast_names_the_strategy_that_finishes_within_bounds():
    assert start_forecast(run("Adaptive", "converged", 9, dirty=5, adaptive=spec(5))) == "pre-copy"
    assert start_forecast(run("Adaptive", "converged", 9, dirty=20, adaptive=spec(21))) == \
        "post-copy (sooner than pre-copy)"
    assert start_forecast(run("Adaptive", "converged", 9, adaptive=spec(150))) == "post-copy"
    assert start_forecast(run("Adaptive", "converged", 9, dirty=20, adaptive=spec(21, allow_postcopy=False))) == \
        "pre-copy"
    doomed = run("Adaptive", "aborted", 3, dirty=120, doomed=True, parallel=2, adaptive=spec(150, allow_postcopy=False))
    assert start_forecast(doomed) == NONE
    assert start_forecast(run("Minimal downtime", "aborted", 25)) == "?"


def test_targets_met_and_missed_are_told_apart():
    rs = [run("Adaptive", "converged", 8.0, downtime=9, adaptive=spec(150), postcopy=True),
          run("Very large VMs", "converged", 20.0, downtime=180, bound=5000),
          run("Legacy", "converged", 27.0, downtime=20, bound=500),
          run("Adaptive", "aborted", 3.0, dirty=120, doomed=True, parallel=2, adaptive=spec(150, allow_postcopy=False)),
          run("Minimal downtime", "aborted", 25.0, dirty=120, doomed=True, bound=500),
          run("Suspend workload if needed", "aborted", 24.0, dirty=120, doomed=True, bound=5000)]
    t = {x["target"][:20]: x for x in targets({"runs": rs})}
    assert all(x["met"] is True for x in t.values()), t
    assert "8.0 s vs Very large VMs 20.0 s" in t["no slower than the b"]["detail"]
    assert "12%" in t["a doomed migration a"]["detail"]          # 3.0 of the median 24.5 s
    rs[0] = {**rs[0], "wall_s": 22.0}                              # slower than Very large VMs now
    rs[2] = {**rs[2], "agent_downtime_ms": 700}                    # Legacy over its 500 ms bound
    t = {x["target"][:20]: x for x in targets({"runs": rs})}
    assert t["no slower than the b"]["met"] is False and t[">= 20% faster than V"]["met"] is False
    assert t["downtime never above"]["met"] is False and "700 > 500" in t["downtime never above"]["detail"]


def test_a_converged_run_without_a_downtime_fails_the_bound_target_instead_of_passing_it():
    rs = [run("Adaptive", "converged", 8.0, downtime=None, adaptive=spec(150), postcopy=True)]
    [bound] = [x for x in targets({"runs": rs}) if x["target"].startswith("downtime")]
    assert bound["met"] is False and "1 without a reported downtime" in bound["detail"]


def test_the_section_has_a_row_per_policy_and_the_targets_table():
    rs = [run("Adaptive", "converged", 8.0, downtime=9, adaptive=spec(150), postcopy=True),
          run("Very large VMs", "converged", 20.0, downtime=180, bound=5000)]
    res = {"runs": rs, "started_at": "2026-12-02T17:00:00", "ended_at": "2026-12-02T17:10:00",
           "machine": {"load_avg_at_start": [1.5]}}
    text = "\n".join(section(res, {"policies": "benchmarks/policies.png"}, "## H", ["- machine"]))
    assert "| 512 MiB, fill 320, 48 MiB/s (120% of 40), measured 50 | post-copy | Adaptive | converged (post-copy)" \
        in text, text
    assert "9 (2000)" in text and "### Issue 17's targets" in text and "benchmarks/policies.png" in text


def test_the_actions_cell_says_which_abort_waited_and_which_action_failed():
    from ferry.bench.policy_report import _actions
    run = {"actions": [{"action": "setDowntime(5000)", "ok": True}, {"action": "postcopy", "ok": False},
                       {"action": "abort", "ok": True, "deferred": "the switch-over is under way"}]}
    assert _actions(run) == "setDowntime(5000), postcopy (failed), abort (deferred)"

"""ferry.engine.recommend and `--recommend` (issue 17 item 1): every policy forecast, ranked by
outcome, total time (5% ties) and downtime, with the reason."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ferry.cli.main import cli
from ferry.engine.policies import BUILTIN_POLICIES
from ferry.engine.recommend import Candidate, rank, recommendation
from ferry.engine.scenario import parse_scenario
from tests.unit.engine.test_forecast_api import DIRTY_ANSWER, running_vm
from tests.unit.engine.test_operations_api import api as api  # noqa: F401 - the fixture

SCENARIOS = Path(__file__).resolve().parents[3] / "docs" / "scenarios"


def c(name, outcome, total, downtime=None):
    return Candidate(name.lower(), name, {"outcome": outcome, "totalSeconds": total, "downtimeMs": downtime,
                                          "iterations": 3, "reason": f"{name} reason"})


def test_outcome_first_then_time_then_downtime():
    ranked = rank([c("Aborts", "abort", 5.0), c("Slow", "converge", 60.0, 10), c("Post", "postcopy", 20.0, 0),
                   c("Fast", "converge", 20.0, 300), c("Never", "abort", None),
                   Candidate("x", "Unusable", None, "cannot be used here: no parallel")])
    assert [r.policy_name for r in ranked] == ["Fast", "Slow", "Post", "Aborts", "Never", "Unusable"]


def test_totals_within_5_percent_tie_and_downtime_decides():
    ranked = rank([c("A", "converge", 100.0, 700), c("B", "converge", 100.5, 200), c("C", "converge", 130.0, 1)])
    assert [r.policy_name for r in ranked] == ["B", "A", "C"]


def test_recommendation_names_the_best_and_why():
    rec = recommendation([c("Minimal downtime", "abort", 25.0), c("Legacy", "converge", 29.4, 20)])
    assert rec["recommended"] == {"id": "legacy", "name": "Legacy"}
    assert rec["reason"].startswith("Legacy is forecast to converge in 29.4 s with 20 ms downtime")
    assert "only one" in rec["reason"]
    assert [r["policy"]["name"] for r in rec["ranking"]] == ["Legacy", "Minimal downtime"]


def test_nothing_finishes_no_recommendation_and_the_reason_says_so():
    rec = recommendation([c("A", "abort", 30.0), c("B", "abort", None)])
    assert rec["recommended"] is None and rec["reason"].startswith("no policy is forecast to finish")


def test_scenario_recommend_forecasts_every_builtin_and_custom_policy():
    s = parse_scenario({"cluster": {"policy": "Minimal downtime", "bandwidth": "CUSTOM:640"},
                        "vm": {"vcpus": 2, "memory_mib": 512, "touched_mib": 400, "dirty_rate_mibs": 32},
                        "source": {"name": "h1"}, "destination": {"name": "h2"},
                        "policies": [{"name": "Patient", "init": [{"name": "setDowntime", "params": [2000]}],
                                      "stalling": [], "last_items": []}]})
    rec = s.recommend()
    names = {r["policy"]["name"] for r in rec["ranking"]}
    assert names == {p.name for p in BUILTIN_POLICIES} | {"Patient"}   # every built-in (Adaptive too) and the custom one
    assert rec["recommended"] is not None
    by = {r["policy"]["name"]: r for r in rec["ranking"]}
    assert by["Minimal downtime"]["outcome"] == "abort"        # 32 MiB/s against 40: as the lab does


def test_cli_recommend_from_a_scenario():
    result = CliRunner().invoke(cli, ["plan", "--scenario", str(SCENARIOS / "large-vm-forecast.yaml"), "--recommend"])
    assert result.exit_code == 0, result.output
    assert "Recommended: " in result.output and "why: " in result.output
    js = CliRunner().invoke(cli, ["plan", "--scenario", str(SCENARIOS / "large-vm-forecast.yaml"), "--recommend",
                                  "--json"])
    assert len(json.loads(js.output)["ranking"]) == len(BUILTIN_POLICIES)
    bad = CliRunner().invoke(cli, ["plan", "--scenario", str(SCENARIOS / "large-vm-forecast.yaml"), "--recommend",
                                   "--policy", "Legacy"])
    assert bad.exit_code == 2 and "--policy" in bad.output


def test_rest_recommend_measures_once_and_ranks_every_policy(api):  # noqa: F811
    client, world = api
    agent = running_vm(client, world, dirty={**DIRTY_ANSWER})
    r = client.post("/api/vms/vm1/recommend", json={})
    assert r.status_code == 200, r.text
    body = r.json()
    assert sum(1 for m, _ in agent.calls if m == "VM.getDirtyRate") == 1
    assert len(body["ranking"]) == len(BUILTIN_POLICIES) and body["recommended"]["name"] and body["reason"]
    assert body["measured"]["touchedMiB"] == 256.0

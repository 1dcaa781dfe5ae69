"""`ferry plan --scenario`: human and JSON output; bad input is exit code 2 naming the field."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ferry.cli.main import cli
from ferry.cli.plan import format_schedule, render_plan

SCENARIOS = Path(__file__).resolve().parents[3] / "docs" / "scenarios"


def run(*args):
    return CliRunner().invoke(cli, ["plan", *args])


def test_json_output_has_params_flags_and_explanation():
    result = run("--scenario", str(SCENARIOS / "very-large-vm.yaml"), "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["params"]["zerocopy"] is True and plan["params"]["parallel"] == 2
    assert "VIR_MIGRATE_ZEROCOPY" in plan["libvirt_flags"]
    assert {"field": "parallel", "from": "DISABLED", "to": "AUTO_PARALLEL, 2 connections",
            "reason": "required by zero-copy of policy Very large VMs"} in plan["explanation"]


def test_human_output_reads_as_a_plan():
    result = run("--scenario", str(SCENARIOS / "encrypted.yaml"))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Plan for bigdb: h1 → h2, policy Very large VMs (cluster)" in out
    assert "VIR_MIGRATE_TLS" in out and "VIR_MIGRATE_ZEROCOPY" not in out
    assert "- zerocopy: on (policy Very large VMs) → off: migration encryption is enabled" in out


def test_policy_option_plans_with_another_policy():
    result = run("--scenario", str(SCENARIOS / "very-large-vm.yaml"), "--policy", "legacy", "--json")
    plan = json.loads(result.output)
    assert plan["policy"]["name"] == "Legacy" and plan["policy"]["origin"] == "requested"
    assert "zerocopy" not in plan["params"] and "convergenceSchedule" not in plan["params"]


@pytest.mark.parametrize("args, message", [
    (["--scenario", "/nonexistent/s.yaml"], "--scenario: no such file"),
    ([], "VM: give a VM name or --scenario FILE"),
    (["vm1", "--scenario", "x.yaml"], "VM: give either a VM or --scenario FILE, not both"),
    (["--policy", "Turbo"], "policy: unknown policy 'Turbo'"),
    (["--to", "h3"], "--to: only with a VM"),
])
def test_bad_invocations_exit_2(args, message, tmp_path):
    if args[:1] == ["--policy"] or args[:1] == ["--to"]:
        args = ["--scenario", str(SCENARIOS / "old-agent.yaml"), *args]
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("text, message", [
    ("cluster:\n  parallel: 300\nvm: {vcpus: 2}\nsource: {name: a}\ndestination: {name: b}\n",
     "cluster.parallel: must be an integer from 2 to 255"),
    ("cluster:\n  bandwidth: CUSTOM\nvm: {vcpus: 2}\nsource: {name: a}\ndestination: {name: b}\n",
     "cluster.bandwidth.custom_mbps: CUSTOM bandwidth needs a value in Mbps"),
    ("cluster:\n  policy: Nope\nvm: {vcpus: 2}\nsource: {name: a}\ndestination: {name: b}\n",
     "cluster.policy: unknown policy 'Nope'"),
    ("vm: {vcpus: 2\n", "scenario: not valid YAML or JSON"),
])
def test_bad_scenario_files_exit_2_naming_the_field(text, message, tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(text)
    result = run("--scenario", str(f))
    assert result.exit_code == 2, result.output
    assert f"error: {f}: {message}" in result.output
    assert "Traceback" not in result.output


def test_render_shows_missing_flags_and_empty_explanation():
    text = render_plan({"vm": "v", "source": "a", "destination": "b", "policy": {"name": "Legacy", "origin": "cluster"},
                        "params": {"dst": "b", "tunneled": False}, "libvirt_flags": None, "explanation": []})
    assert "(not available)" in text and "(none: everything is as set)" in text and "tunneled  false" in text


def test_format_schedule():
    assert format_schedule({"init": [{"name": "setDowntime", "params": ["100"]}],
                            "stalling": [{"limit": 1, "action": {"name": "setDowntime", "params": ["150"]}},
                                         {"limit": -1, "action": {"name": "abort", "params": []}}]}) == (
        "init: setDowntime 100 | after 1: setDowntime 150 | last: abort")


# --- live mode: the engine's plan endpoint, with httpx's mock transport in place of the engine ---

import httpx  # noqa: E402

from ferry.client import engine_client  # noqa: E402
from ferry.engine.scenario import load_scenario_text  # noqa: E402


@pytest.fixture
def engine(monkeypatch):
    """A fake engine answering POST /api/vms/{vm}/plan; records the requests."""
    seen = []
    plan = load_scenario_text((SCENARIOS / "very-large-vm.yaml").read_text()).plan().to_dict()

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, json.loads(request.content or b"null")))
        if request.url.path == "/api/vms/bigdb/plan":
            return httpx.Response(200, json=plan)
        if request.url.raw_path == b"/api/vms/small%20one/plan":
            return httpx.Response(422, json={"detail": {"field": "policy", "reason":
                                  "policy 'Very large VMs' uses zero-copy migrations, which need parallel migrations"}})
        return httpx.Response(404, json={"detail": {"kind": "VM", "name": "ghost", "message": "VM 'ghost' not found"}})

    monkeypatch.setattr(engine_client.EngineClient, "from_env", classmethod(
        lambda cls: cls("http://engine.test", transport=httpx.MockTransport(handler))))
    return seen


def test_live_plan_posts_to_and_policy(engine):
    result = run("bigdb", "--to", "h2", "--policy", "Very large VMs", "--json")
    assert result.exit_code == 0, result.output
    assert engine == [("POST", "/api/vms/bigdb/plan", {"to": "h2", "policy": "Very large VMs"})]
    assert json.loads(result.output)["params"]["zerocopy"] is True


def test_live_plan_defaults_are_null_and_output_is_human(engine):
    result = run("bigdb")
    assert engine[0][2] == {"to": None, "policy": None}
    assert "Plan for bigdb: h1 → h2" in result.output


def test_live_plan_engine_errors_exit_2_naming_the_field(engine):
    result = run("small one", "--policy", "Very large VMs")
    assert result.exit_code == 2
    assert "error: policy: policy 'Very large VMs' uses zero-copy" in result.output
    result = run("ghost")
    assert result.exit_code == 2 and "VM 'ghost' not found" in result.output

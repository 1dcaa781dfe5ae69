"""`ferry cluster|host|vm|policy` and `ferry plan VM` against a real engine served over HTTP:
tables by default, the engine's JSON with --json, and exit code 2 naming the field for bad input."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ferry.cli.main import cli

from .conftest import KERNEL


def run(*args: str, code: int = 0):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def run_json(*args: str):
    return json.loads(run(*args, "--json").stdout)


def lab():
    run("cluster", "add", "c1", "--policy", "Very large VMs")
    run("host", "add", "h1", "--cluster", "c1", "--address", "127.0.0.2", "--link-speed", "25000", "--status", "UP")
    run("host", "add", "h2", "--cluster", "c1", "--address", "127.0.0.3", "--link-speed", "40000", "--status", "UP")
    run("vm", "add", "vm1", "--cluster", "c1", "--memory", "1024", "--vcpus", "4", "--kernel", KERNEL, "--host", "h1")


def test_cluster_commands(engine_url):
    out = run("cluster", "add", "c1", "--parallel", "CUSTOM:8", "--bandwidth", "5000", "--encrypted").stdout
    assert "CUSTOM:8" in out and "CUSTOM:5000 Mbps" in out
    c = run_json("cluster", "set", "c1", "--policy", "Post-copy migration", "--no-encrypted",
                 "--resilience", "DO_NOT_MIGRATE")
    assert (c["policy"]["name"], c["encrypted"], c["resilience"]) == ("Post-copy migration", False, "DO_NOT_MIGRATE")
    assert c["parallel"] == {"mode": "CUSTOM", "connections": 8}
    assert [x["name"] for x in run_json("cluster", "list")] == ["c1"]
    assert "Post-copy migration" in run("cluster", "list").stdout
    assert run_json("cluster", "show", "c1") == c
    run("cluster", "remove", "c1")
    assert run_json("cluster", "list") == []


@pytest.mark.parametrize("args, words", [
    (["cluster", "add", "c1", "--parallel", "1"], "parallel.connections"),
    (["cluster", "add", "c1", "--parallel", "300"], "parallel.connections"),
    (["cluster", "add", "c1", "--parallel", "sometimes"], "parallel"),
    (["cluster", "add", "c1", "--bandwidth", "CUSTOM"], "bandwidth.custom_mbps"),
    (["cluster", "add", "c1", "--bandwidth", "CUSTOM:"], "bandwidth.custom_mbps"),
    (["cluster", "add", "c1", "--policy", "Warp speed"], "policy: unknown policy 'Warp speed'"),
    (["cluster", "add", "c1", "--policy", "Very large VMs", "--no-parallel-supported"],
     "does not support parallel migrations"),
    (["cluster", "add", "c1", "--resilience", "PRAY"], "resilience"),
    (["cluster", "set", "c1"], "nothing to change"),
    (["cluster", "show", "ghost"], "cluster 'ghost' not found"),
])
def test_bad_cluster_input_exits_2_naming_the_field(engine_url, args, words):
    if args[1] in ("set", "show"):
        run("cluster", "add", "c1")
    result = run(*args, code=2)
    assert words in result.stderr
    assert "Traceback" not in result.output


def test_host_and_vm_commands(engine_url):
    lab()
    h = run_json("host", "set", "h1", "--capabilities", '{"zerocopy_migrations": true}', "--migration-address",
                 "10.0.0.2")
    assert (h["zerocopy"], h["migration_address"], h["migration_network_up"]) == ("YES", "10.0.0.2", True)
    assert "127.0.0.3" in run("host", "list", "--cluster", "c1").stdout
    assert run_json("host", "show", "h2")["agent_url"] == "https://127.0.0.3:54321/"

    vm = run_json("vm", "set", "vm1", "--encrypted", "on", "--parallel", "4", "--downtime", "500")
    o = vm["overrides"]
    assert (o["encrypted"], o["parallel"], o["downtime_ms"]) == (True, {"mode": "CUSTOM", "connections": 4}, 500)
    vm = run_json("vm", "set", "vm1", "--encrypted", "inherit", "--parallel", "inherit")
    assert (vm["overrides"]["encrypted"], vm["overrides"]["parallel"], vm["overrides"]["downtime_ms"]) == (None, None, 500)
    assert "vm1" in run("vm", "list").stdout
    assert "inherit" in run("vm", "show", "vm1").stdout
    assert "vm1" in run("host", "remove", "h1", code=2).stderr
    run("vm", "set", "vm1", "--host", "none")
    run("vm", "remove", "vm1")
    run("host", "remove", "h1")
    assert [x["name"] for x in run_json("host", "list")] == ["h2"]


@pytest.mark.parametrize("args, words", [
    (["vm", "set", "vm1", "--parallel", "1"], "parallel.connections"),
    (["vm", "set", "vm1", "--parallel", "300"], "parallel.connections"),
    (["vm", "set", "vm1", "--policy", "nope"], "policy: unknown policy"),
    (["vm", "set", "vm1", "--downtime", "soon"], "downtime_ms"),
    (["vm", "set", "vm1", "--vcpus", "0"], "vcpus"),
    (["vm", "set", "vm1", "--host", "h9"], "host"),
    (["vm", "add", "vm2", "--cluster", "c1", "--memory", "64", "--vcpus", "1", "--kernel", "/etc/shadow"], "kernel"),
    (["host", "add", "h3", "--cluster", "c1", "--address", "not an address"], "address"),
    (["host", "set", "h1", "--link-speed", "fast"], "link_speed_mbps"),
    (["host", "set", "h1", "--capabilities", "{oops"], "capabilities"),
])
def test_bad_host_and_vm_input_exits_2_naming_the_field(engine_url, args, words):
    lab()
    result = run(*args, code=2)
    assert words in result.stderr
    assert "Traceback" not in result.output


def test_zero_copy_override_in_a_cluster_without_parallel_support_exits_2(engine_url):
    lab()
    run("cluster", "set", "c1", "--policy", "Minimal downtime", "--no-parallel-supported")
    result = run("vm", "set", "vm1", "--policy", "Very large VMs", code=2)
    assert "policy:" in result.stderr and "does not support parallel migrations" in result.stderr


def test_policy_commands(engine_url, tmp_path):
    listed = run_json("policy", "list")
    assert [p["name"] for p in listed][:5] == ["Minimal downtime", "Suspend workload if needed",
                                                "Post-copy migration", "Very large VMs", "Legacy"]
    assert "57237b82-b8c2-425f-b425-114b35219626" in run("policy", "list").stdout
    f = tmp_path / "p.yaml"
    f.write_text("name: Patient\nmax_migrations: 1\ninit: [{name: setDowntime, params: [200]}]\n"
                 "stalling:\n  - {limit: 2, action: {name: setDowntime, params: [600]}}\nlast_items: [abort]\n")
    p = run_json("policy", "add", str(f))
    assert p["name"] == "Patient" and p["builtin"] is False
    assert "setDowntime 600" in run("policy", "show", "patient").stdout
    f.write_text("name: Patient\nmax_migrations: 2\nlast_items: [abort]\n")
    assert run_json("policy", "set", "Patient", str(f))["max_migrations"] == 2
    assert "built-in" in run("policy", "remove", "Legacy", code=2).stderr
    run("policy", "remove", "Patient")
    assert "not found" in run("policy", "show", "Patient", code=2).stderr
    f.write_text("name: Broken\nstalling: [{limit: 1, action: {name: explode}}]\n")
    assert "stalling[0].action.name" in run("policy", "add", str(f), code=2).stderr
    assert "file" in run("policy", "add", str(tmp_path / "missing.yaml"), code=2).stderr


def test_plan_on_live_inventory(engine_url):
    lab()
    plan = run_json("plan", "vm1", "--to", "h2")
    assert plan["params"]["zerocopy"] is True and plan["params"]["parallel"] >= 2
    assert any(e["field"] == "parallel" for e in plan["explanation"])
    text = run("plan", "vm1").stdout
    assert "h2" in text and "zero-copy" in text
    run("cluster", "set", "c1", "--policy", "Legacy", "--no-parallel-supported")
    result = run("plan", "vm1", "--policy", "Very large VMs", code=2)
    assert "policy" in result.stderr and "parallel migrations are not supported" in result.stderr
    assert "to: unknown host 'h9'" in run("plan", "vm1", "--to", "h9", code=2).stderr


def test_engine_not_running_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("FERRY_ENGINE_URL", "http://127.0.0.1:9")
    result = run("cluster", "list", code=1)
    assert "cannot reach the Ferry engine at http://127.0.0.1:9" in result.stderr

"""Scenario documents of any shape: the only error is InvalidInput naming a field, and the CLI
exits 2 with it, never a traceback (issue 13.3). A key given as null means its default."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferry.cli.main import cli
from ferry.common.errors import InvalidInput
from ferry.engine.options import ParallelMode
from ferry.engine.scenario import (
    CLUSTER_KEYS,
    HOST_KEYS,
    TOP_KEYS,
    VM_KEYS,
    load_scenario_text,
    parse_scenario,
)

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 300_000), st.integers(), st.floats(allow_nan=False),
    st.sampled_from(["", "AUTO", "AUTO_PARALLEL", "DISABLED", "CUSTOM", "CUSTOM:4", "CUSTOM:x", "8", "-1",
                     "HYPERVISOR_DEFAULT", "CUSTOM:10000", "yes", "no", "unknown", "Very large VMs",
                     "Legacy", "h1", "h2", "::1", "[fd00::1]:54321", "h:port", "setDowntime", "abort",
                     "postcopy"]),
    st.text(max_size=8),
)
JSONISH = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=8)
ACTION = st.one_of(SCALARS, st.fixed_dictionaries({"name": SCALARS}, optional={"params": JSONISH}))
POLICY = st.fixed_dictionaries(
    {"name": st.one_of(st.sampled_from(["P1", "P2", "Legacy"]), SCALARS)},
    optional={"max_migrations": SCALARS, "zerocopy": SCALARS, "compression": SCALARS,
              "auto_converge": SCALARS, "guest_events": SCALARS, "id": SCALARS, "description": SCALARS,
              "init": st.lists(ACTION, max_size=2),
              "stalling": st.lists(st.one_of(JSONISH, st.fixed_dictionaries(
                  {"limit": SCALARS, "action": ACTION})), max_size=2),
              "last_items": st.lists(ACTION, max_size=2), "bogus": SCALARS})


def section(keys, extra=JSONISH):
    """A mapping over the format's own keys (each maybe left out) with any values."""
    return st.dictionaries(st.sampled_from(sorted(keys)), st.one_of(SCALARS, extra), max_size=len(keys))


HOST = st.one_of(section(HOST_KEYS), st.fixed_dictionaries(
    {"name": st.sampled_from(["h1", "h2"])}, optional={k: SCALARS for k in HOST_KEYS - {"name"}}))
# Near-valid documents: each key from a pool of mostly good values, so that many plan.
POLICY_NAMES = st.sampled_from([None, "Minimal downtime", "Very large VMs", "Post-copy migration",
                                "Suspend workload if needed", "Legacy", "Huge", "nope"])
GOOD_POLICY = st.fixed_dictionaries({"name": st.just("Huge")}, optional={
    "max_migrations": st.sampled_from([1, 2, 64, 65, None]), "zerocopy": st.sampled_from([True, False, None]),
    "compression": st.sampled_from([False, True]), "auto_converge": st.booleans(),
    "last_items": st.sampled_from([["abort"], ["postcopy", "abort"], [], ["abort", "postcopy"]])})


def good_host(name: str):
    return st.fixed_dictionaries({"name": st.just(name)}, optional={
        "address": st.sampled_from([None, "192.0.2.1", "fd00::2", "[fd00::2]:54321", "h:x", ""]),
        "migration_address": st.sampled_from([None, "198.51.100.1", ""]),
        "migration_network_up": st.sampled_from([None, True, False]),
        "link_speed_mbps": st.one_of(st.none(), st.integers(-1, 400_000)),
        "zerocopy": st.sampled_from([None, True, False, "yes", "no", "unknown", "maybe"])})


NEAR_VALID = st.fixed_dictionaries({
    "vm": st.fixed_dictionaries({"vcpus": st.one_of(st.integers(1, 300), st.sampled_from([0, None, "4"]))}, optional={
        "policy": POLICY_NAMES, "parallel": st.sampled_from([None, "AUTO", "AUTO_PARALLEL", "DISABLED", "CUSTOM:4",
                                                             8, 256, "x", True]),
        "encrypted": st.sampled_from([None, True, False]), "paused": st.sampled_from([None, True, False]),
        "compressed": st.sampled_from([None, True, False]), "auto_converge": st.sampled_from([None, True]),
        "downtime_ms": st.sampled_from([None, 1, 800, 0, 4_000_000]), "name": st.sampled_from([None, "db", ""])}),
    "source": good_host("h1"), "destination": good_host("h2")}, optional={
    "cluster": st.fixed_dictionaries({}, optional={
        "policy": POLICY_NAMES, "parallel": st.sampled_from([None, "AUTO", "AUTO_PARALLEL", "DISABLED", "CUSTOM:16",
                                                             "CUSTOM", 2, "2", 1]),
        "bandwidth": st.sampled_from([None, "AUTO", "HYPERVISOR_DEFAULT", "CUSTOM:10000", 5, {"mode": "CUSTOM"},
                                      {"custom_mbps": 100}, "CUSTOM:", "fast"]),
        "encrypted": st.sampled_from([None, True, False]), "parallel_supported": st.sampled_from([None, True, False]),
        "auto_converge": st.sampled_from([None, True]), "compressed": st.sampled_from([None, True, "yes"])}),
    "policies": st.lists(GOOD_POLICY, max_size=1)})

DOCUMENT = st.one_of(
    NEAR_VALID, NEAR_VALID,
    JSONISH,
    st.fixed_dictionaries({}, optional={
        "cluster": st.one_of(SCALARS, section(CLUSTER_KEYS)),
        "vm": st.one_of(SCALARS, section(VM_KEYS), st.fixed_dictionaries(
            {"vcpus": st.integers(1, 64)}, optional={k: SCALARS for k in VM_KEYS - {"vcpus"}})),
        "source": HOST, "destination": HOST,
        "policies": st.one_of(SCALARS, st.lists(POLICY, max_size=2)),
        "description": SCALARS, "extra": SCALARS}),
)


def plan_or_invalid(doc) -> InvalidInput | None:
    try:
        scenario = parse_scenario(doc)
        scenario.plan()
        for policy in scenario.policies:
            scenario.plan(policy.name)
    except InvalidInput as exc:
        assert exc.field is not None and exc.reason
        return exc
    return None


@settings(max_examples=400, deadline=None)
@given(DOCUMENT)
def test_any_document_plans_or_raises_invalid_input(doc):
    if isinstance(doc, dict) and set(doc) <= TOP_KEYS | {"extra"}:
        plan_or_invalid(doc)
    text = json.dumps(doc)
    try:
        load_scenario_text(text).plan()
    except InvalidInput:
        pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENT)
def test_the_cli_exits_2_on_bad_documents_and_never_with_a_traceback(doc):
    error = plan_or_invalid(doc) if isinstance(doc, dict) else InvalidInput("scenario", "not a mapping")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.json"
        path.write_text(json.dumps(doc))
        result = CliRunner().invoke(cli, ["plan", "--scenario", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    if error is not None:
        assert result.exit_code == 2 and "error:" in result.output, result.output
    else:
        assert result.exit_code == 0, result.output


BASE = {"vm": {"vcpus": 4}, "source": {"name": "h1"}, "destination": {"name": "h2"}}


def test_null_cluster_keys_mean_their_defaults():
    nulls = {**BASE, "cluster": {k: None for k in CLUSTER_KEYS}}
    s = parse_scenario(nulls)
    assert s.cluster == parse_scenario(BASE).cluster
    assert s.cluster.parallel.mode is ParallelMode.DISABLED and s.cluster.parallel_supported is True


def test_null_vm_and_host_keys_mean_their_defaults():
    doc = {"vm": {"vcpus": 4, **{k: None for k in VM_KEYS if k != "vcpus"}},
           "source": {"name": "h1", **{k: None for k in HOST_KEYS if k != "name"}},
           "destination": {"name": "h2"}}
    s = parse_scenario(doc)
    assert (s.vm_name, s.source.address, s.paused) == ("vm", "h1", False)
    assert s.vm == parse_scenario(BASE).vm and s.source == parse_scenario(BASE).source

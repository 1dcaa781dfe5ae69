"""Scenario files: the documented examples load and plan as documented; bad input names the field."""
from __future__ import annotations

from pathlib import Path

import pytest

from ferry.common.errors import InvalidInput
from ferry.engine.options import BandwidthMode, ParallelMode, ZeroCopySupport
from ferry.engine.policies import MINIMAL_DOWNTIME_ID, VERY_LARGE_VMS_ID
from ferry.engine.scenario import load_scenario_text, parse_scenario

SCENARIOS = Path(__file__).resolve().parents[3] / "docs" / "scenarios"


def load(name: str):
    return load_scenario_text((SCENARIOS / name).read_text())


def test_very_large_vm_example():
    s = load("very-large-vm.yaml")
    assert s.cluster.policy_id == VERY_LARGE_VMS_ID and s.vcpus == 64
    assert s.source.zerocopy is ZeroCopySupport.YES and s.source.migration_network_up
    p = s.plan()
    assert p.params.to_wire()["zerocopy"] is True and p.params.to_wire()["parallel"] == 2
    assert p.params.to_wire()["dstqemu"] == "198.51.100.12" and p.params.to_wire()["maxBandwidth"] == 3125
    assert [e.field for e in p.explanation] == ["parallel", "autoConverge"]


def test_encrypted_example():
    p = load("encrypted.yaml").plan()
    w = p.params.to_wire()
    assert "zerocopy" not in w and w["parallel"] == 9 and w["encrypted"] is True
    assert any(e.field == "zerocopy" and "encryption" in e.reason for e in p.explanation)


def test_old_agent_example():
    p = load("old-agent.yaml").plan()
    assert p.params.to_wire()["zerocopy"] is True and p.params.to_wire()["parallel"] == 4
    assert next(e for e in p.explanation if e.field == "zerocopy").to == "sent, unconfirmed"


def test_unsupported_source_example():
    p = load("unsupported-source.yaml").plan()
    assert "zerocopy" not in p.params.to_wire() and "parallel" not in p.params.to_wire()


def test_custom_policy_json_example():
    s = load("custom-policy.json")
    assert [pol.name for pol in s.policies] == ["Huge and idle"]
    assert s.cluster.policy_id == MINIMAL_DOWNTIME_ID and s.vm.policy_id == s.policies[0].id
    p = s.plan()
    assert p.policy_name == "Huge and idle" and p.policy_origin == "VM override"
    w = p.params.to_wire()
    assert w["zerocopy"] is True and w["parallel"] == 2 and "maxBandwidth" not in w
    # a dry run may ask for another policy
    assert "zerocopy" not in s.plan("minimal downtime").params.to_wire()


def test_every_example_file_plans():
    files = sorted(SCENARIOS.glob("*.y*ml")) + sorted(SCENARIOS.glob("*.json"))
    assert len(files) >= 5
    for f in files:
        assert load_scenario_text(f.read_text()).plan().params.to_wire()["dst"]


MINIMAL = {"vm": {"vcpus": 2}, "source": {"name": "a"}, "destination": {"name": "b"}}


def test_defaults():
    s = parse_scenario(MINIMAL)
    assert s.cluster.policy_id == MINIMAL_DOWNTIME_ID
    assert s.cluster.parallel.mode is ParallelMode.DISABLED and s.cluster.parallel_supported
    assert s.cluster.bandwidth.mode is BandwidthMode.AUTO
    assert s.source.address == "a" and s.source.zerocopy is ZeroCopySupport.UNKNOWN
    assert not s.source.migration_network_up and s.vm_name == "vm" and not s.paused


@pytest.mark.parametrize("value, mode, mbps", [
    ("AUTO", BandwidthMode.AUTO, None), ("hypervisor_default", BandwidthMode.HYPERVISOR_DEFAULT, None),
    ("CUSTOM:10000", BandwidthMode.CUSTOM, 10000), (5000, BandwidthMode.CUSTOM, 5000),
    ({"mode": "CUSTOM", "custom_mbps": 7}, BandwidthMode.CUSTOM, 7),
])
def test_bandwidth_forms(value, mode, mbps):
    s = parse_scenario({**MINIMAL, "cluster": {"bandwidth": value}})
    assert (s.cluster.bandwidth.mode, s.cluster.bandwidth.custom_mbps) == (mode, mbps)


@pytest.mark.parametrize("value, expected", [
    (True, ZeroCopySupport.YES), (False, ZeroCopySupport.NO), (None, ZeroCopySupport.UNKNOWN),
    ("unknown", ZeroCopySupport.UNKNOWN), ("YES", ZeroCopySupport.YES),
])
def test_zerocopy_forms(value, expected):
    s = parse_scenario({**MINIMAL, "source": {"name": "a", "zerocopy": value}})
    assert s.source.zerocopy is expected


@pytest.mark.parametrize("data, field", [
    ({**MINIMAL, "cluster": {"parallel": 1}}, "cluster.parallel"),
    ({**MINIMAL, "cluster": {"parallel": 300}}, "cluster.parallel"),
    ({**MINIMAL, "cluster": {"parallel": "SOMETIMES"}}, "cluster.parallel"),
    ({**MINIMAL, "vm": {"vcpus": 2, "parallel": "CUSTOM"}}, "vm.parallel"),
    ({**MINIMAL, "cluster": {"bandwidth": "CUSTOM"}}, "cluster.bandwidth.custom_mbps"),
    ({**MINIMAL, "cluster": {"bandwidth": "CUSTOM:-5"}}, "cluster.bandwidth.custom_mbps"),
    ({**MINIMAL, "cluster": {"bandwidth": "FAST"}}, "cluster.bandwidth"),
    ({**MINIMAL, "cluster": {"policy": "Quick"}}, "cluster.policy"),
    ({**MINIMAL, "vm": {"vcpus": 2, "policy": 7}}, "vm.policy"),
    ({**MINIMAL, "cluster": {"encrypted": "maybe"}}, "cluster.encrypted"),
    ({**MINIMAL, "cluster": {"colour": "red"}}, "cluster.colour"),
    ({**MINIMAL, "extra": 1}, "extra"),
    ({**MINIMAL, "vm": {}}, "vm.vcpus"),
    ({**MINIMAL, "vm": {"vcpus": 0}}, "vm.vcpus"),
    ({**MINIMAL, "vm": {"vcpus": "many"}}, "vm.vcpus"),
    ({**MINIMAL, "vm": {"vcpus": 2, "downtime_ms": 0}}, "vm.downtime_ms"),
    ({"vm": {"vcpus": 2}, "destination": {"name": "b"}}, "source"),
    ({**MINIMAL, "source": {"address": "x"}}, "source.name"),
    ({**MINIMAL, "source": {"name": "a", "zerocopy": "perhaps"}}, "source.zerocopy"),
    ({**MINIMAL, "source": {"name": "a", "link_speed_mbps": 0}}, "source.link_speed_mbps"),
    ({**MINIMAL, "destination": {"name": "a"}}, "destination.name"),
    ({**MINIMAL, "policies": [{"name": "p", "max_migrations": 0}]}, "policies[0].max_migrations"),
    ({**MINIMAL, "policies": {"name": "p"}}, "policies"),
])
def test_bad_scenarios_name_the_field(data, field):
    with pytest.raises(InvalidInput) as err:
        parse_scenario(data)
    assert err.value.field == field, str(err.value)


@pytest.mark.parametrize("text, reason", [
    ("", "empty"), ("- a\n- b\n", "must be a mapping"), ("cluster: [\n", "line"),
    ('{"vm": ', "not valid YAML or JSON"),
])
def test_unreadable_text(text, reason):
    with pytest.raises(InvalidInput) as err:
        load_scenario_text(text)
    assert err.value.field == "scenario" and reason in err.value.reason


def test_unknown_requested_policy():
    with pytest.raises(InvalidInput) as err:
        parse_scenario(MINIMAL).plan("Turbo")
    assert err.value.field == "policy" and "Very large VMs" in err.value.reason

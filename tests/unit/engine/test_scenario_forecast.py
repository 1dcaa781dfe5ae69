"""Scenario keys for `ferry plan --scenario FILE --forecast`: vm.memory_mib, vm.touched_mib,
vm.dirty_rate_mibs, source/destination measured_mibs; the documented 1.5 TiB example."""
from __future__ import annotations

from pathlib import Path

import pytest

from ferry.common.errors import InvalidInput
from ferry.engine.scenario import load_scenario_text, parse_scenario

SCENARIOS = Path(__file__).resolve().parents[3] / "docs" / "scenarios"


def doc(vm=None, src=None, dst=None, cluster=None):
    return {"cluster": {"policy": "Minimal downtime", "bandwidth": "CUSTOM:800", **(cluster or {})},
            "vm": {"vcpus": 2, **(vm or {})}, "source": {"name": "h1", **(src or {})},
            "destination": {"name": "h2", **(dst or {})}}


def test_the_large_vm_example_converges_under_very_large_vms_on_the_measured_figure():
    s = load_scenario_text((SCENARIOS / "large-vm-forecast.yaml").read_text())
    fc = s.forecast()["forecast"]
    inp = fc["inputs"]
    assert (inp["memoryMiB"], inp["touchedMiB"], inp["dirtyRateMiBs"]) == (1572864, 1258291, 400)
    assert (inp["bandwidthMiBs"], inp["bandwidthSource"]) == (2400, "measured")   # the lower host's figure
    # iteration 0 alone: 1258291 MiB / 2400 MiB/s = 524 s, but for what is unsent at QEMU's first
    # check under the 300 ms threshold: 2400 * (0.300 - 0.050 / 2) = 660 MiB (an uncapped check
    # chunk is 50 ms); dirty 400 at 2400 shrinks 6x per iteration
    assert fc["outcome"] == "converge" and 524 < fc["totalSeconds"] < 700
    assert fc["steps"][0]["seconds"] == pytest.approx((1258291 - 660) / 2400, abs=0.01)


def test_the_large_vm_example_under_post_copy_aborts_because_parallel_drops_post_copy():
    fc = load_scenario_text((SCENARIOS / "large-vm-forecast.yaml").read_text()).forecast(
        "Post-copy migration")["forecast"]
    assert fc["outcome"] == "abort" and fc["inputs"]["postcopyAllowed"] is False


def test_keys_reach_the_forecast():
    s = parse_scenario(doc(vm={"memory_mib": 1024, "touched_mib": 600, "dirty_rate_mibs": 0},
                           src={"measured_mibs": 30}, dst={"measured_mibs": 40}))
    fc = s.forecast()["forecast"]
    assert fc["inputs"]["bandwidthMiBs"] == 30 and fc["inputs"]["bandwidthSource"] == "measured"
    assert fc["totalSeconds"] == pytest.approx(600 / 30 + 1.5)


def test_touched_defaults_to_all_memory_and_dirty_to_zero():
    fc = parse_scenario(doc(vm={"memory_mib": 500})).forecast()["forecast"]
    assert fc["inputs"]["touchedMiB"] == 500 and fc["inputs"]["dirtyRateMiBs"] == 0
    assert fc["totalSeconds"] == pytest.approx(500 / 50 + 1.5)


def test_a_forecast_needs_the_memory():
    with pytest.raises(InvalidInput) as err:
        parse_scenario(doc()).forecast()
    assert err.value.field == "vm.memory_mib"


def test_a_plan_alone_does_not_need_the_new_keys():
    assert parse_scenario(doc()).plan().params.max_bandwidth == 50


@pytest.mark.parametrize("vm, src, field", [
    ({"memory_mib": 0}, {}, "vm.memory_mib"),
    ({"memory_mib": "big"}, {}, "vm.memory_mib"),
    ({"memory_mib": True}, {}, "vm.memory_mib"),
    ({"memory_mib": 512, "touched_mib": -1}, {}, "vm.touched_mib"),
    ({"memory_mib": 512, "dirty_rate_mibs": "fast"}, {}, "vm.dirty_rate_mibs"),
    ({"memory_mib": 512}, {"measured_mibs": 0}, "source.measured_mibs"),
    ({"memory_mib": 512}, {"measured_mibs": float("nan")}, "source.measured_mibs"),
])
def test_bad_values_name_the_field(vm, src, field):
    with pytest.raises(InvalidInput) as err:
        parse_scenario(doc(vm=vm, src=src))
    assert err.value.field == field


def test_touched_above_memory_is_refused_at_forecast_time():
    with pytest.raises(InvalidInput) as err:
        parse_scenario(doc(vm={"memory_mib": 512, "touched_mib": 600})).forecast()
    assert err.value.field == "vm.touched_mib"


def test_null_means_not_given():
    s = parse_scenario(doc(vm={"memory_mib": 512, "touched_mib": None, "dirty_rate_mibs": None},
                           src={"measured_mibs": None}))
    assert s.forecast()["forecast"]["inputs"]["bandwidthSource"] == "cap"

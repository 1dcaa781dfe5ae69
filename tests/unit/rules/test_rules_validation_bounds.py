"""The engine's input checks at their bounds (engine/validation.py, engine/options.py): every range
inclusive at both ends, so `<= hi` -> `< hi` or a limit moved by one is caught."""
import pytest

from ferry.common.errors import InvalidInput
from ferry.engine.options import (
    BandwidthMode,
    BandwidthSetting,
    ParallelMode,
    ParallelSetting,
    short_form,
)
from ferry.engine.validation import (
    MAX_LINK_SPEED_MBPS,
    check_optional_int,
    policy_input,
)
from ferry.protocol.schedule import MAX_DOWNTIME_MS


@pytest.mark.parametrize("lo, hi", [(1, MAX_LINK_SPEED_MBPS), (1, MAX_DOWNTIME_MS), (0, 100)])
def test_optional_int_range_is_inclusive_at_both_ends(lo, hi):
    assert check_optional_int("f", lo, lo, hi) == lo
    assert check_optional_int("f", hi, lo, hi) == hi
    assert check_optional_int("f", None, lo, hi) is None
    for bad in (lo - 1, hi + 1):
        with pytest.raises(InvalidInput) as e:
            check_optional_int("f", bad, lo, hi)
        assert (e.value.field, e.value.reason) == ("f", f"must be from {lo} to {hi}, got {bad}")
    for bad in (True, 1.0, "1"):
        with pytest.raises(InvalidInput):
            check_optional_int("f", bad, lo, hi)


def test_the_store_limits():
    # a VM's downtime: the VM.migrate limit itself, so the store takes every downtime the planner sends
    assert (MAX_LINK_SPEED_MBPS, MAX_DOWNTIME_MS) == (10_000_000, 3_600_000)


def test_parallel_short_forms():
    assert short_form("CUSTOM:8") == ("CUSTOM", 8) and short_form(" 8 ") == ("CUSTOM", 8)
    assert short_form("auto-parallel") == ("AUTO_PARALLEL", None)
    assert short_form("CUSTOM:lots") == ("CUSTOM", "lots") and short_form("CUSTOM:") == ("CUSTOM", "")
    assert ParallelSetting.parse("255") == ParallelSetting(ParallelMode.CUSTOM, 255)
    assert ParallelSetting.parse("custom:2") == ParallelSetting(ParallelMode.CUSTOM, 2)
    assert ParallelSetting.parse("disabled") == ParallelSetting(ParallelMode.DISABLED)
    assert str(ParallelSetting(ParallelMode.CUSTOM, 4)) == "CUSTOM:4" and str(ParallelSetting(ParallelMode.AUTO)) == "AUTO"
    for bad, field in (("256", "parallel.connections"), ("1", "parallel.connections"), ("CUSTOM", "vm.parallel"),
                       ("AUTO:3", "vm.parallel"), ("FAST", "vm.parallel")):
        with pytest.raises(InvalidInput) as e:
            ParallelSetting.parse(bad, "vm.parallel")
        assert e.value.field == field
    with pytest.raises(InvalidInput) as e:
        ParallelSetting(ParallelMode.AUTO, 4)
    assert e.value.field == "parallel.connections"


def test_bandwidth_setting_custom_needs_a_positive_value():
    assert BandwidthSetting(BandwidthMode.CUSTOM, 1).custom_mbps == 1
    for bad in (0, -1, None, True, 1.5):
        with pytest.raises(InvalidInput) as e:
            BandwidthSetting(BandwidthMode.CUSTOM, bad)
        assert e.value.field == "bandwidth.custom_mbps"
    with pytest.raises(InvalidInput):
        BandwidthSetting(BandwidthMode.AUTO, 100)


def test_rule_4_policy_input_drops_false_markers_and_refuses_true_ones():
    assert policy_input({"name": "a", "builtin": False, "legacy": False}) == {"name": "a"}
    for marker in ("builtin", "legacy"):
        with pytest.raises(InvalidInput) as e:
            policy_input({"name": "a", marker: True})
        assert e.value.field == marker
    with pytest.raises(InvalidInput) as e:
        policy_input(["a"])
    assert e.value.field == "policy"

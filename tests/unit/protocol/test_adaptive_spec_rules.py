"""The `adaptive` parameter's bounds and errors, one rule per test (ferry.protocol.adaptive).

Each bad value is refused with InvalidInput naming the field (`adaptive.<key>`) and saying why.
"""
import pytest

from ferry.common.errors import InvalidInput
from ferry.protocol.adaptive import AdaptiveSpec
from ferry.protocol.schedule import MAX_DOWNTIME_MS


def _refused(field, reason=None, **kw):
    with pytest.raises(InvalidInput) as e:
        AdaptiveSpec(**kw)
    assert e.value.field == field
    if reason is not None:
        assert e.value.reason == reason
    return e.value


def test_initial_downtime_is_1_ms_at_least_and_named_when_wrong():
    assert AdaptiveSpec(initial_downtime_ms=1).initial_downtime_ms == 1
    _refused("adaptive.initialDowntimeMs", f"must be 1..{MAX_DOWNTIME_MS}, got 0", initial_downtime_ms=0)
    _refused("adaptive.initialDowntimeMs", "must be an integer, got 1.5", initial_downtime_ms=1.5)
    _refused("adaptive.initialDowntimeMs", "must be an integer, got True", initial_downtime_ms=True)


def test_max_downtime_bound_is_inclusive_at_both_ends():
    assert AdaptiveSpec(max_downtime_ms=MAX_DOWNTIME_MS).max_downtime_ms == MAX_DOWNTIME_MS
    assert AdaptiveSpec(max_downtime_ms=1, initial_downtime_ms=1).max_downtime_ms == 1
    _refused("adaptive.maxDowntimeMs", f"must be 1..{MAX_DOWNTIME_MS}, got 0", max_downtime_ms=0,
             initial_downtime_ms=1)


def test_allow_postcopy_must_be_a_boolean_and_the_error_names_it():
    _refused("adaptive.allowPostcopy", "must be true or false, got 1", allow_postcopy=1)


def test_a_dirty_rate_of_zero_is_valid_a_boolean_or_negative_one_is_not():
    assert AdaptiveSpec(dirty_rate_mibs=0).dirty_rate_mibs == 0
    assert AdaptiveSpec(dirty_rate_mibs=0.5).dirty_rate_mibs == 0.5
    _refused("adaptive.dirtyRateMiBs", "must be a number >= 0, got True", dirty_rate_mibs=True)
    _refused("adaptive.dirtyRateMiBs", "must be a number >= 0, got -1", dirty_rate_mibs=-1)
    _refused("adaptive.dirtyRateMiBs", "must be a number >= 0, got '5'", dirty_rate_mibs="5")


def test_wire_errors_name_the_field_and_list_the_known_keys():
    with pytest.raises(InvalidInput) as e:
        AdaptiveSpec.from_wire({"maxDowntimeMs": 500, "bogus": 1})
    assert e.value.field == "adaptive.bogus"
    assert e.value.reason == ("unknown key (known: maxDowntimeMs, initialDowntimeMs, allowPostcopy, "
                              "maxThrottlePct, maxSecondsPerGiB, dirtyRateMiBs, touchedMiB)")
    with pytest.raises(InvalidInput) as e:
        AdaptiveSpec.from_wire({})
    assert (e.value.field, e.value.reason) == ("adaptive.maxDowntimeMs",
                                               "is required (the policy's maximum downtime, ms)")


@pytest.mark.parametrize("value", [True, 2.5, "x", [1]])
def test_a_wire_integer_that_is_not_one_is_refused_naming_its_field(value):
    with pytest.raises(InvalidInput) as e:
        AdaptiveSpec.from_wire({"maxDowntimeMs": 500, "maxThrottlePct": value})
    assert (e.value.field, e.value.reason) == ("adaptive.maxThrottlePct", f"must be an integer, got {value!r}")

"""The `adaptive` VM.migrate parameter's wire form."""
from __future__ import annotations

import pytest

from ferry.common.errors import InvalidInput
from ferry.protocol.adaptive import AdaptiveSpec


def test_round_trip_keeps_every_bound():
    spec = AdaptiveSpec(max_downtime_ms=1500, initial_downtime_ms=200, allow_postcopy=False, max_throttle_pct=80,
                        max_seconds_per_gib=30, dirty_rate_mibs=41.5, touched_mib=640.0)
    assert AdaptiveSpec.from_wire(spec.to_wire()) == spec


def test_only_the_maximum_downtime_is_required():
    spec = AdaptiveSpec.from_wire({"maxDowntimeMs": "800"})
    assert (spec.max_downtime_ms, spec.initial_downtime_ms, spec.allow_postcopy) == (800, 300, True)
    assert AdaptiveSpec.from_wire({"maxDowntimeMs": 200}).initial_downtime_ms == 200
    assert "dirtyRateMiBs" not in spec.to_wire() and "touchedMiB" not in spec.to_wire()


@pytest.mark.parametrize(("raw", "field", "words"), [
    ([], "adaptive", "must be an object"),
    ({}, "adaptive.maxDowntimeMs", "is required"),
    ({"maxDowntimeMs": 0}, "adaptive.maxDowntimeMs", "must be 1..3600000"),
    ({"maxDowntimeMs": True}, "adaptive.maxDowntimeMs", "must be an integer"),
    ({"maxDowntimeMs": 500, "initialDowntimeMs": 600}, "adaptive.initialDowntimeMs", "must not exceed"),
    ({"maxDowntimeMs": 500, "allowPostcopy": "yes"}, "adaptive.allowPostcopy", "true or false"),
    ({"maxDowntimeMs": 500, "maxThrottlePct": 100}, "adaptive.maxThrottlePct", "1..99"),
    ({"maxDowntimeMs": 500, "maxSecondsPerGiB": 0}, "adaptive.maxSecondsPerGiB", "1..86400"),
    ({"maxDowntimeMs": 500, "dirtyRateMiBs": -1}, "adaptive.dirtyRateMiBs", ">= 0"),
    ({"maxDowntimeMs": 500, "touchedMiB": "640"}, "adaptive.touchedMiB", ">= 0"),
    ({"maxDowntimeMs": 500, "fast": True}, "adaptive.fast", "unknown key"),
])
def test_bad_values_name_the_field(raw, field, words):
    with pytest.raises(InvalidInput) as err:
        AdaptiveSpec.from_wire(raw)
    assert err.value.field == field and words in str(err.value)


def test_budget_scales_with_memory_with_a_floor():
    spec = AdaptiveSpec(max_seconds_per_gib=64)
    assert spec.budget_seconds(512) == 32 and spec.budget_seconds(4096) == 256
    assert spec.budget_seconds(64) == 10

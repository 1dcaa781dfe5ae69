"""Facts §5 step 5: the parallel connection count, rule by rule, with the words it is explained in."""
import pytest

from ferry.engine.options import MAX_PARALLEL_CONNECTIONS, ParallelMode, ParallelSetting
from ferry.engine.parallel import (
    MBPS_PER_CONNECTION,
    ParallelResolution,
    automatic_connections,
    resolve_parallel,
)

AUTO = ParallelSetting(ParallelMode.AUTO)
AUTO_PARALLEL = ParallelSetting(ParallelMode.AUTO_PARALLEL)
DISABLED = ParallelSetting(ParallelMode.DISABLED)


def custom(n):
    return ParallelSetting(ParallelMode.CUSTOM, n)


def test_rule_5_5_one_connection_per_10240_mbps():
    assert MBPS_PER_CONNECTION == 10240
    assert automatic_connections(20480, 64) == (2, "min(20480 Mbps / 10240 = 2, 64 vCPUs) = 2")
    assert automatic_connections(20479, 64) == (None, "min(20479 Mbps / 10240 = 1, 64 vCPUs) = 1, below 2")
    assert automatic_connections(30720, 64)[0] == 3


def test_rule_5_5_auto_never_more_connections_than_vcpus():
    assert automatic_connections(102400, 4) == (4, "min(102400 Mbps / 10240 = 10, 4 vCPUs) = 4")
    assert automatic_connections(102400, 1) == (None, "min(102400 Mbps / 10240 = 10, 1 vCPU) = 1, below 2")


def test_rule_5_5_unknown_bandwidth_gives_no_automatic_count():
    assert automatic_connections(None, 8) == (None, "the migration bandwidth is unknown")


def test_rule_5_5_auto_below_two_is_not_parallel():
    r = resolve_parallel(AUTO, enforce=False, bandwidth_mbps=10240, vcpus=8)
    assert r == ParallelResolution(AUTO, ParallelMode.AUTO, None, derivation=(
        "min(10240 Mbps / 10240 = 1, 8 vCPUs) = 1, below 2; AUTO does not use parallel connections then"))
    assert not r.parallel and r.describe() == "off"
    r = resolve_parallel(AUTO, enforce=False, bandwidth_mbps=None, vcpus=8)
    assert r.connections is None and r.derivation.endswith("AUTO does not use parallel connections then")


def test_rule_5_5_auto_parallel_below_two_uses_two():
    r = resolve_parallel(AUTO_PARALLEL, enforce=False, bandwidth_mbps=None, vcpus=8)
    assert (r.connections, r.mode, r.enforced) == (2, ParallelMode.AUTO_PARALLEL, False)
    assert r.derivation == "the migration bandwidth is unknown; AUTO_PARALLEL uses at least 2"
    assert r.parallel and r.describe() == "AUTO_PARALLEL, 2 connections"


def test_rule_5_5_auto_parallel_above_two_uses_the_count():
    r = resolve_parallel(AUTO_PARALLEL, enforce=False, bandwidth_mbps=51200, vcpus=8)
    assert (r.connections, r.derivation) == (5, "min(51200 Mbps / 10240 = 5, 8 vCPUs) = 5")


def test_rule_5_5_auto_above_two_is_parallel():
    r = resolve_parallel(AUTO, enforce=False, bandwidth_mbps=40960, vcpus=8)
    assert (r.connections, r.mode, r.enforced, r.capped_at_max, r.capped_by_vcpus) == (
        4, ParallelMode.AUTO, False, False, False)
    assert r.describe() == "AUTO, 4 connections"


def test_rule_5_5_disabled_is_never_parallel_without_enforce():
    r = resolve_parallel(DISABLED, enforce=False, bandwidth_mbps=10**6, vcpus=64)
    assert r == ParallelResolution(DISABLED, ParallelMode.DISABLED, None,
                                   derivation="parallel migration is disabled")


@pytest.mark.parametrize("setting", [DISABLED, AUTO])
def test_rule_5_5_enforce_turns_disabled_and_auto_into_auto_parallel(setting):
    r = resolve_parallel(setting, enforce=True, bandwidth_mbps=None, vcpus=8)
    assert (r.mode, r.connections, r.enforced, r.requested) == (ParallelMode.AUTO_PARALLEL, 2, True, setting)


@pytest.mark.parametrize("setting", [AUTO_PARALLEL, custom(4)])
def test_rule_5_5_enforce_leaves_auto_parallel_and_custom(setting):
    r = resolve_parallel(setting, enforce=True, bandwidth_mbps=None, vcpus=8)
    assert r.enforced is False and r.mode is setting.mode


def test_rule_5_5_custom_is_min_n_and_max_2_vcpus():
    r = resolve_parallel(custom(8), enforce=False, bandwidth_mbps=None, vcpus=4)
    assert (r.connections, r.capped_by_vcpus, r.capped_at_max) == (4, True, False)
    assert r.derivation == "CUSTOM 8, at most max(2, 4 vCPUs) = 4"
    assert r.describe() == "CUSTOM, 4 connections"
    r = resolve_parallel(custom(4), enforce=False, bandwidth_mbps=None, vcpus=4)
    assert (r.connections, r.capped_by_vcpus) == (4, False)         # exactly the vCPUs: not capped
    r = resolve_parallel(custom(3), enforce=False, bandwidth_mbps=None, vcpus=1)
    assert (r.connections, r.capped_by_vcpus) == (2, True)
    assert r.derivation == "CUSTOM 3, at most max(2, 1 vCPU) = 2"
    r = resolve_parallel(custom(2), enforce=False, bandwidth_mbps=None, vcpus=1)
    assert (r.connections, r.capped_by_vcpus) == (2, False)          # never below two


def test_rule_5_5_result_capped_at_255_at_exactly_255_and_above():
    assert MAX_PARALLEL_CONNECTIONS == 255
    r = resolve_parallel(custom(255), enforce=False, bandwidth_mbps=None, vcpus=255)
    assert (r.connections, r.capped_at_max, r.capped_by_vcpus) == (255, False, False)
    assert r.derivation == "CUSTOM 255, at most max(2, 255 vCPUs) = 255"
    r = resolve_parallel(AUTO, enforce=False, bandwidth_mbps=255 * 10240, vcpus=300)
    assert (r.connections, r.capped_at_max) == (255, False)
    r = resolve_parallel(AUTO, enforce=False, bandwidth_mbps=256 * 10240, vcpus=300)
    assert (r.connections, r.capped_at_max) == (255, True)
    assert r.derivation == "min(2621440 Mbps / 10240 = 256, 300 vCPUs) = 256; capped at 255"
    r = resolve_parallel(AUTO_PARALLEL, enforce=False, bandwidth_mbps=10**9, vcpus=1000)
    assert (r.connections, r.capped_at_max) == (255, True)


def test_rule_5_5_describe_singular_and_off():
    assert ParallelResolution(AUTO, ParallelMode.AUTO, 1).describe() == "AUTO, 1 connection"
    assert ParallelResolution(AUTO, ParallelMode.AUTO, None).describe() == "off"
    assert ParallelResolution(AUTO, ParallelMode.AUTO, None).parallel is False
    assert ParallelResolution(AUTO, ParallelMode.AUTO, 0).parallel is True   # None, not 0, is "off"


@pytest.mark.parametrize("n", [1, 256, 0, True, "4", None])
def test_rule_5_5_custom_must_be_2_to_255(n):
    from ferry.common.errors import InvalidInput
    with pytest.raises(InvalidInput) as e:
        ParallelSetting(ParallelMode.CUSTOM, n)
    assert e.value.field == "parallel.connections"


def test_rule_5_5_custom_bounds_are_inclusive():
    assert ParallelSetting(ParallelMode.CUSTOM, 2).connections == 2
    assert ParallelSetting(ParallelMode.CUSTOM, 255).connections == 255

"""Facts §5, what the planner says about each step (plan_rules): the notes and explanation
entries an admin reads in `ferry plan`, kept whole when several steps speak at once, and the
bounds a plan carries (the VM's downtime, the Adaptive policy's limits)."""
from dataclasses import replace

import pytest

from ferry.common.errors import InvalidInput
from ferry.engine import plan_rules
from ferry.engine.bandwidth import cluster_bandwidth
from ferry.engine.options import (
    BandwidthMode,
    BandwidthSetting,
    ClusterMigrationOptions,
    HostMigrationInfo,
    ParallelMode,
    ParallelSetting,
    VmMigrationOverrides,
)
from ferry.engine.planner import plan_migration
from ferry.engine.policies import ADAPTIVE_ID, MINIMAL_DOWNTIME_ID, SUSPEND_WORKLOAD_ID, find_policy
from ferry.protocol.adaptive import AdaptiveSpec
from ferry.protocol.schedule import MAX_DOWNTIME_MS


def _host(name, speed=10000):
    return HostMigrationInfo(name=name, address=f"198.18.0.{name[-1]}:54321", link_speed_mbps=speed)


def _plan(cluster, vm=VmMigrationOverrides(), policy=None, paused=False, src=None, dst=None):
    return plan_migration(cluster, vm, policy or find_policy(cluster.policy_id), src or _host("h1"),
                          dst or _host("h2"), vcpus=4, paused=paused)


def _custom(n):
    return ParallelSetting(ParallelMode.CUSTOM, n)


def test_rule_5_step_5_parallel_in_a_cluster_without_it_is_noted_with_the_reason():
    p = _plan(ClusterMigrationOptions(policy_id=MINIMAL_DOWNTIME_ID, parallel=_custom(4), parallel_supported=False))
    assert p.params.parallel is None
    assert "parallel: CUSTOM:4 → off: parallel migrations are not supported in this cluster" in p.notes


@pytest.mark.parametrize("bandwidth, src_speed, dst_speed, derivation", [
    (BandwidthSetting(BandwidthMode.AUTO), None, 10000,
     "bandwidth: AUTO: h1 does not report its migration link speed, and AUTO needs both hosts' speeds"),
    (BandwidthSetting(BandwidthMode.CUSTOM, 1000), 10000, 10000, "bandwidth: CUSTOM 1000 Mbps"),
    (BandwidthSetting(BandwidthMode.AUTO), 4, 4,
     "bandwidth: AUTO: slower migration link of h1 4 Mbps, h2 4 Mbps = 4 Mbps"),
    (BandwidthSetting(BandwidthMode.AUTO), 10000, 20000,
     "bandwidth: AUTO: slower migration link of h1 10000 Mbps, h2 20000 Mbps = 10000 Mbps"),
])
def test_rule_5_step_8_the_bandwidth_derivation_is_noted_whatever_maxbandwidth_becomes(
        bandwidth, src_speed, dst_speed, derivation):
    # not sent, divided (CUSTOM), raised to 1 MiB/s, or a plain share: each adds its own entry
    # or note to the derivation, never replaces it
    p = _plan(ClusterMigrationOptions(policy_id=MINIMAL_DOWNTIME_ID, bandwidth=bandwidth),
              src=_host("h1", src_speed), dst=_host("h2", dst_speed))
    assert derivation in p.notes
    assert any(e.field == "maxBandwidth" for e in p.explanation) or any(
        n.startswith("maxBandwidth: ") for n in p.notes)


def test_rule_5_step_8_called_alone_the_divisor_is_the_vms_own_policy():
    cluster = ClusterMigrationOptions(policy_id=MINIMAL_DOWNTIME_ID)
    bandwidth = cluster_bandwidth(cluster.bandwidth, _host("h1"), _host("h2"))
    mibps, reasons = plan_rules.rule_8_max_bandwidth(cluster, find_policy(MINIMAL_DOWNTIME_ID), bandwidth)
    assert mibps == 625
    assert reasons.notes[-1] == ("maxBandwidth: 625 MiB/s = 1250 MiB/s / 2: policy Minimal downtime runs "
                                 "up to 2 migrations at once")


def test_rule_5_step_9_the_auto_converge_entry_stays_when_compression_is_dropped_for_parallel():
    # Suspend workload sets auto-converge on (the admin left it off) and asks for compression,
    # which parallel connections rule out: both are said
    p = _plan(ClusterMigrationOptions(policy_id=SUSPEND_WORKLOAD_ID, parallel=_custom(4)))
    assert (p.params.auto_converge, p.params.compressed, p.params.parallel) == (True, False, 4)
    assert [str(e) for e in p.explanation] == [
        "autoConverge: off → on: policy Suspend workload if needed sets auto-converge on"]
    assert ("compressed: off: policy Suspend workload if needed asks for compression, but libvirt "
            "refuses compression with parallel connections") in p.notes


@pytest.mark.parametrize("downtime, ok", [(1, True), (MAX_DOWNTIME_MS, True), (MAX_DOWNTIME_MS + 1, False)])
def test_rule_5_the_vms_legacy_downtime_is_capped_at_the_vm_migrate_limit(downtime, ok):
    cluster = ClusterMigrationOptions(policy_id=MINIMAL_DOWNTIME_ID)
    vm = VmMigrationOverrides(downtime_ms=downtime)
    if ok:
        assert _plan(cluster, vm).params.downtime == downtime
    else:
        with pytest.raises(InvalidInput) as e:
            _plan(cluster, vm)
        assert e.value.field == "downtime"


@pytest.mark.parametrize("parallel, paused, why", [
    (None, False, ""),
    (_custom(2), False, " (post-copy not allowed: parallel connections)"),
    (None, True, " (post-copy not allowed: the VM is paused)"),
])
def test_rule_5_adaptive_note_says_why_post_copy_is_not_allowed(parallel, paused, why):
    cluster = ClusterMigrationOptions(policy_id=ADAPTIVE_ID, parallel=parallel or ParallelSetting(ParallelMode.DISABLED))
    p = _plan(cluster, paused=paused)
    assert p.params.adaptive.allow_postcopy is (why == "")
    assert [n for n in p.notes if n.startswith("adaptive:")] == [
        f"adaptive: the agent picks the strategy from a live forecast within 2000 ms of downtime{why}; "
        "an agent without it runs the convergenceSchedule sent beside it"]


@pytest.mark.parametrize("bound, initial", [(1000, 300), (200, 200)])
def test_rule_5_adaptive_bounds_are_the_policys_and_start_at_300_ms_or_the_bound(bound, initial):
    policy = replace(find_policy(ADAPTIVE_ID), adaptive_max_downtime_ms=bound)
    p = _plan(ClusterMigrationOptions(policy_id=ADAPTIVE_ID), policy=policy)
    assert p.params.adaptive == AdaptiveSpec(max_downtime_ms=bound, initial_downtime_ms=initial, allow_postcopy=True)

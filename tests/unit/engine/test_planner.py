"""The planner on worked examples: what an admin reads, and the rules the matrix holds fixed."""
from __future__ import annotations

import json

import pytest

from ferry.common.errors import InvalidInput
from ferry.engine.bandwidth import cluster_bandwidth, max_bandwidth_mibps
from ferry.engine.options import (
    BandwidthMode,
    BandwidthSetting,
    ClusterMigrationOptions,
    HostMigrationInfo,
    ParallelMode,
    ParallelSetting,
    VmMigrationOverrides,
    ZeroCopySupport,
)
from ferry.engine.parallel import automatic_connections, resolve_parallel
from ferry.engine.planner import effective_policy_id, plan_migration
from ferry.engine.policies import (
    BUILTIN_BY_ID,
    LEGACY_ID,
    MINIMAL_DOWNTIME_ID,
    POST_COPY_ID,
    VERY_LARGE_VMS_ID,
)

VERY_LARGE = BUILTIN_BY_ID[VERY_LARGE_VMS_ID]
H1 = HostMigrationInfo("h1", "127.0.0.2", "10.9.0.2", True, 25_000, ZeroCopySupport.YES)
H2 = HostMigrationInfo("h2", "127.0.0.3", "10.9.0.3", True, 100_000, ZeroCopySupport.YES)


def plan(cluster=None, vm=None, policy=VERY_LARGE, source=H1, destination=H2, **kw):
    cluster = cluster or ClusterMigrationOptions(policy_id=policy.id)
    kw.setdefault("vcpus", 8)
    return plan_migration(cluster, vm or VmMigrationOverrides(), policy, source, destination, **kw)


def entry(p, field):
    found = [e for e in p.explanation if e.field == field]
    assert len(found) == 1, (field, p.explanation)
    return found[0]


def test_very_large_vms_forces_parallel_and_says_why():
    p = plan()
    assert p.params.to_wire()["zerocopy"] is True and p.params.to_wire()["parallel"] == 2
    assert str(entry(p, "parallel")) == (
        "parallel: DISABLED → AUTO_PARALLEL, 2 connections: required by zero-copy of policy Very large VMs")
    assert "VIR_MIGRATE_ZEROCOPY" in p.libvirt_flags and "VIR_MIGRATE_PARALLEL" in p.libvirt_flags
    assert p.libvirt_typed_params["parallel.connections"] == 2


def test_encryption_turns_zero_copy_off_and_leaves_parallel_alone():
    p = plan(vm=VmMigrationOverrides(encrypted=True))
    assert "zerocopy" not in p.params.to_wire() and "parallel" not in p.params.to_wire()
    e = entry(p, "zerocopy")
    assert (e.from_, e.to) == ("on (policy Very large VMs)", "off")
    assert e.reason.startswith("migration encryption is enabled (VM override)")
    assert "VIR_MIGRATE_TLS" in p.libvirt_flags and "VIR_MIGRATE_ZEROCOPY" not in p.libvirt_flags


def test_source_without_zero_copy_is_not_sent_it():
    p = plan(source=HostMigrationInfo("h1", "127.0.0.2", link_speed_mbps=25_000, zerocopy=ZeroCopySupport.NO))
    assert "zerocopy" not in p.params.to_wire()
    assert str(entry(p, "zerocopy")) == (
        "zerocopy: on (policy Very large VMs) → not sent: source host h1 reports zero-copy unsupported")
    # parallel stays as the admin set it: nothing needs it any more
    assert "parallel" not in p.params.to_wire()


def test_older_agent_is_sent_zero_copy_anyway_with_a_note():
    p = plan(source=HostMigrationInfo("h1", "127.0.0.2", link_speed_mbps=25_000))
    assert p.params.to_wire()["zerocopy"] is True
    e = entry(p, "zerocopy")
    assert e.to == "sent, unconfirmed"
    assert "does not report" in e.reason and "not recognized" in e.reason


def test_gate_off_means_no_zero_copy_and_no_parallel():
    cluster = ClusterMigrationOptions(policy_id=VERY_LARGE.id, parallel=ParallelSetting(ParallelMode.CUSTOM, 4),
                                      parallel_supported=False)
    p = plan(cluster)
    assert "zerocopy" not in p.params.to_wire() and "parallel" not in p.params.to_wire()
    assert "parallel migrations are not supported in this cluster" in entry(p, "zerocopy").reason
    assert str(entry(p, "parallel")) == "parallel: CUSTOM:4 → off: parallel migrations are not supported in this cluster"


def test_all_reasons_against_zero_copy_are_listed_together():
    cluster = ClusterMigrationOptions(policy_id=VERY_LARGE.id, encrypted=True, parallel_supported=False)
    source = HostMigrationInfo("h1", "127.0.0.2", zerocopy=ZeroCopySupport.NO)
    reason = entry(plan(cluster, source=source), "zerocopy").reason
    assert "not supported in this cluster" in reason and "encryption" in reason
    assert "h1 reports zero-copy unsupported" in reason


def test_vm_overrides_win_over_the_cluster():
    cluster = ClusterMigrationOptions(policy_id=LEGACY_ID, parallel=ParallelSetting(ParallelMode.DISABLED),
                                      encrypted=True, auto_converge=True, compressed=True)
    vm = VmMigrationOverrides(parallel=ParallelSetting(ParallelMode.CUSTOM, 4), encrypted=False,
                              auto_converge=False, compressed=False, downtime_ms=800)
    p = plan(cluster, vm, policy=BUILTIN_BY_ID[LEGACY_ID])
    assert p.params.to_wire()["parallel"] == 4
    assert p.params.to_wire()["encrypted"] is False and p.params.to_wire()["autoConverge"] is False
    assert p.params.to_wire()["compressed"] is False and p.params.to_wire()["downtime"] == 800
    assert "convergenceSchedule" not in p.params.to_wire()       # Legacy: the agent's own steps
    assert p.explanation == ()                          # nothing differs from what was set


def test_effective_policy_is_the_vms_else_the_clusters():
    cluster = ClusterMigrationOptions(policy_id=MINIMAL_DOWNTIME_ID)
    assert effective_policy_id(cluster, VmMigrationOverrides()) == (MINIMAL_DOWNTIME_ID, "cluster")
    assert effective_policy_id(cluster, VmMigrationOverrides(policy_id=POST_COPY_ID)) == (POST_COPY_ID, "VM override")
    p = plan(cluster, VmMigrationOverrides(policy_id=POST_COPY_ID), policy=BUILTIN_BY_ID[MINIMAL_DOWNTIME_ID])
    assert p.policy_origin == "requested" and any("asked for this plan" in n for n in p.notes)


def test_post_copy_dropped_when_paused():
    post_copy = BUILTIN_BY_ID[POST_COPY_ID]
    running = plan(policy=post_copy)
    stalling = running.params.to_wire()["convergenceSchedule"]["stalling"]
    assert [s["action"]["name"] for s in stalling][-2:] == ["postcopy", "abort"]
    assert "VIR_MIGRATE_POSTCOPY" in running.libvirt_flags
    paused = plan(policy=post_copy, paused=True)
    assert "postcopy" not in json.dumps(paused.params.to_wire()["convergenceSchedule"])
    assert entry(paused, "convergenceSchedule").reason == "the VM is paused, and post-copy needs a running VM"


def test_suspend_workload_compression_is_not_sent_with_parallel_connections():
    suspend = BUILTIN_BY_ID["80554327-0569-496b-bdeb-fcbbf52b827c"]
    cluster = ClusterMigrationOptions(policy_id=suspend.id, parallel=ParallelSetting(ParallelMode.CUSTOM, 4))
    p = plan(cluster, policy=suspend)
    assert p.params.to_wire()["parallel"] == 4 and p.params.to_wire()["compressed"] is False
    assert any(n.startswith("compressed: off: policy Suspend workload if needed asks for compression") for n in p.notes)
    serial = plan(ClusterMigrationOptions(policy_id=suspend.id), policy=suspend)
    assert serial.params.to_wire()["compressed"] is True
    assert str(entry(serial, "compressed")) == "compressed: off → on: policy Suspend workload if needed sets compression on"


def test_dstqemu_only_when_the_migration_network_is_up_on_both_hosts():
    assert plan().params.to_wire()["dstqemu"] == "10.9.0.3"
    down = HostMigrationInfo("h1", "127.0.0.2", "10.9.0.2", False, 25_000, ZeroCopySupport.YES)
    p = plan(source=down)
    assert "dstqemu" not in p.params.to_wire()
    assert any("migration network is not up on h1" in n for n in p.notes)
    assert p.libvirt_typed_params["migrate_uri"] == "tcp://127.0.0.3"


def test_custom_bandwidth_is_shared_by_the_policys_concurrent_migrations():
    minimal = BUILTIN_BY_ID[MINIMAL_DOWNTIME_ID]
    cluster = ClusterMigrationOptions(policy_id=minimal.id, bandwidth=BandwidthSetting(BandwidthMode.CUSTOM, 10_000))
    p = plan(cluster, policy=minimal)
    assert p.params.to_wire()["maxBandwidth"] == 625                 # 10000 / 8 / 2
    assert str(entry(p, "maxBandwidth")) == (
        "maxBandwidth: CUSTOM 10000 Mbps → 625 MiB/s: 1250 MiB/s / 2: policy Minimal downtime runs up to 2 migrations at once")


def test_hypervisor_default_sends_no_bandwidth_and_makes_auto_unknown():
    cluster = ClusterMigrationOptions(policy_id=VERY_LARGE.id, bandwidth=BandwidthSetting(BandwidthMode.HYPERVISOR_DEFAULT))
    p = plan(cluster)
    assert "maxBandwidth" not in p.params.to_wire()
    assert p.params.to_wire()["parallel"] == 2           # unknown bandwidth: AUTO_PARALLEL's minimum
    assert not [e for e in p.explanation if e.field == "maxBandwidth"]


def test_to_dict_is_json_with_the_documented_keys():
    d = plan(vm_name="big").to_dict()
    json.dumps(d)
    assert {"vm", "source", "destination", "policy", "params", "libvirt_flags", "libvirt_typed_params",
            "flag_notes", "flag_warnings", "explanation", "notes"} <= set(d)
    assert d["policy"] == {"id": VERY_LARGE_VMS_ID, "name": "Very large VMs", "origin": "cluster"}
    assert d["explanation"][0].keys() == {"field", "from", "to", "reason"}


@pytest.mark.parametrize("vcpus", [0, -1, True, 2.5, None])
def test_bad_vcpus_names_the_field(vcpus):
    with pytest.raises(InvalidInput) as err:
        plan(vcpus=vcpus)
    assert err.value.field == "vcpus"


# --- the numbers of the two helpers, exactly ------------------------------------------------

@pytest.mark.parametrize("mbps, vcpus, n", [
    (None, 8, None), (20_479, 8, None), (20_480, 8, 2), (40_000, 8, 3), (100_000, 4, 4),
    (100_000, 1, None), (1_000_000, 64, 64),
])
def test_automatic_connection_count(mbps, vcpus, n):
    assert automatic_connections(mbps, vcpus)[0] == n


@pytest.mark.parametrize("setting, enforce, mbps, vcpus, n, mode", [
    (ParallelSetting(ParallelMode.AUTO), False, None, 8, None, ParallelMode.AUTO),
    (ParallelSetting(ParallelMode.AUTO), True, None, 8, 2, ParallelMode.AUTO_PARALLEL),
    (ParallelSetting(ParallelMode.DISABLED), True, 100_000, 8, 8, ParallelMode.AUTO_PARALLEL),
    (ParallelSetting(ParallelMode.DISABLED), False, 100_000, 8, None, ParallelMode.DISABLED),
    (ParallelSetting(ParallelMode.AUTO_PARALLEL), False, 10_000, 8, 2, ParallelMode.AUTO_PARALLEL),
    (ParallelSetting(ParallelMode.CUSTOM, 8), True, None, 1, 2, ParallelMode.CUSTOM),
    (ParallelSetting(ParallelMode.CUSTOM, 8), False, None, 4, 4, ParallelMode.CUSTOM),
    (ParallelSetting(ParallelMode.CUSTOM, 255), False, None, 300, 255, ParallelMode.CUSTOM),
    (ParallelSetting(ParallelMode.AUTO), False, 5_000_000, 400, 255, ParallelMode.AUTO),
])
def test_resolve_parallel(setting, enforce, mbps, vcpus, n, mode):
    r = resolve_parallel(setting, enforce=enforce, bandwidth_mbps=mbps, vcpus=vcpus)
    assert (r.connections, r.mode) == (n, mode)


def test_rule_5_8_auto_bandwidth_is_the_slower_link_and_needs_both_speeds():
    slow = HostMigrationInfo("a", "x", link_speed_mbps=1_000)
    unknown = HostMigrationInfo("b", "y", link_speed_mbps=None)
    fast = HostMigrationInfo("c", "z", link_speed_mbps=10_000)
    auto = BandwidthSetting(BandwidthMode.AUTO)
    assert cluster_bandwidth(auto, slow, fast).mbps == 1_000
    assert cluster_bandwidth(auto, fast, slow).mbps == 1_000
    # oVirt needs both speeds: one unknown is no AUTO bandwidth at all, as both unknown are.
    assert cluster_bandwidth(auto, unknown, fast).mbps is None
    assert cluster_bandwidth(auto, fast, unknown).mbps is None
    assert cluster_bandwidth(auto, unknown, unknown).mbps is None
    assert max_bandwidth_mibps(cluster_bandwidth(auto, slow, fast), 2) == 62   # 1000 / 8 / 2
    tiny = cluster_bandwidth(BandwidthSetting(BandwidthMode.CUSTOM, 5), slow, fast)
    assert max_bandwidth_mibps(tiny, 1) == 1                                  # never 0 (= unlimited)


@pytest.mark.parametrize("unknown_side", ["source", "destination"])
def test_rule_5_8_one_unknown_link_speed_sends_no_bandwidth_and_auto_is_not_parallel(unknown_side):
    """Facts §5 step 8: with EITHER speed unknown nothing is sent, AUTO parallel has no
    bandwidth to count connections from (not parallel), AUTO_PARALLEL uses 2."""
    hosts = {"source": HostMigrationInfo("h1", "127.0.0.2", link_speed_mbps=100_000),
             "destination": HostMigrationInfo("h2", "127.0.0.3", link_speed_mbps=100_000)}
    name = hosts[unknown_side].name
    hosts[unknown_side] = HostMigrationInfo(name, hosts[unknown_side].address, link_speed_mbps=None)
    minimal = BUILTIN_BY_ID[MINIMAL_DOWNTIME_ID]

    def with_parallel(mode):
        cluster = ClusterMigrationOptions(policy_id=minimal.id, parallel=ParallelSetting(mode))
        return plan(cluster, policy=minimal, vcpus=16, **hosts)

    auto = with_parallel(ParallelMode.AUTO)
    wire = auto.params.to_wire()
    assert "maxBandwidth" not in wire and "parallel" not in wire
    assert entry(auto, "maxBandwidth").reason == (
        f"{name} does not report its migration link speed, and AUTO needs both hosts' speeds")
    assert auto.libvirt_typed_params["bandwidth"] == 52          # the agent's own default
    assert with_parallel(ParallelMode.AUTO_PARALLEL).params.parallel == 2


def test_rule_5_8_max_bandwidth_divides_by_the_cluster_policys_max_migrations():
    """Facts §5 step 8 (issue 13's example): VM policy Very large VMs (max 1) on a cluster whose
    policy is Minimal downtime (max 2), links 200000 and 20480 Mbps: 20480 / 8 / 2 = 1280, not
    2560; the explanation names the policy divided by."""
    minimal = BUILTIN_BY_ID[MINIMAL_DOWNTIME_ID]
    cluster = ClusterMigrationOptions(policy_id=minimal.id)
    vm = VmMigrationOverrides(policy_id=VERY_LARGE.id)
    src = HostMigrationInfo("h1", "127.0.0.2", link_speed_mbps=200_000, zerocopy=ZeroCopySupport.YES)
    dst = HostMigrationInfo("h2", "127.0.0.3", link_speed_mbps=20_480)
    for given in (minimal, None):          # passed, or found among the built-ins by the cluster's id
        p = plan(cluster, vm, VERY_LARGE, src, dst, cluster_policy=given)
        assert p.params.max_bandwidth == 1280 and p.policy_origin == "VM override"
        assert ("maxBandwidth: 1280 MiB/s = 2560 MiB/s / 2: policy Minimal downtime runs up to 2 migrations "
                "at once (the cluster's policy: the link is shared with the cluster's other migrations)") in p.notes
    same = plan(ClusterMigrationOptions(policy_id=VERY_LARGE.id), source=src, destination=dst)
    assert same.params.max_bandwidth == 2560                    # the cluster's own policy: max 1


def test_rule_5_8_a_custom_cluster_policy_not_given_is_said_in_a_note():
    cluster = ClusterMigrationOptions(policy_id="11111111-2222-3333-4444-555555555555")
    p = plan(cluster, VmMigrationOverrides(policy_id=VERY_LARGE.id), VERY_LARGE)
    assert p.params.max_bandwidth == 25_000 // 8 // VERY_LARGE.max_migrations
    assert any("was not given to the planner" in n for n in p.notes)

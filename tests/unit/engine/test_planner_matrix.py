"""The planner over the whole matrix, against expectations computed here from facts §5.

5 policies × 4 parallel settings × encryption (VM on / VM off / inherit on / inherit off) ×
parallel gate on/off, and inside each case source zero-copy support yes/no/unknown × vCPUs ×
bandwidth modes. The expected values are computed from the rules as written in
ovirt-migration-facts.md §4-5 and the seed page, with the policies' numbers copied from the
facts table, not read from the planner or the policy objects.
"""
from __future__ import annotations

import itertools

import pytest

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
from ferry.engine.planner import plan_migration
from ferry.engine.policies import BUILTIN_BY_ID

# Facts §4, copied: id -> (name, maxMigrations, autoConverge, compression, guestEvents, zeroCopy,
# has a postcopy action, legacy)
FACTS_POLICIES = {
    "80554327-0569-496b-bdeb-fcbbf52b827b": ("Minimal downtime", 2, True, False, True, False, False, False),
    "80554327-0569-496b-bdeb-fcbbf52b827c": ("Suspend workload if needed", 1, True, True, True, False, False, False),
    "a7aeedb2-8d66-4e51-bb22-32595027ce71": ("Post-copy migration", 2, True, False, True, False, True, False),
    "57237b82-b8c2-425f-b425-114b35219626": ("Very large VMs", 1, True, False, True, True, False, False),
    "00000000-0000-0000-0000-000000000000": ("Legacy", 2, False, False, False, False, False, True),
}

PARALLEL_SETTINGS = {
    "AUTO": ParallelSetting(ParallelMode.AUTO),
    "AUTO_PARALLEL": ParallelSetting(ParallelMode.AUTO_PARALLEL),
    "DISABLED": ParallelSetting(ParallelMode.DISABLED),
    "CUSTOM:16": ParallelSetting(ParallelMode.CUSTOM, 16),
}
CUSTOM_N = 16

# name -> (VM override, cluster value)
ENCRYPTION = {"vm-on": (True, False), "vm-off": (False, True), "inherit-on": (None, True),
              "inherit-off": (None, False)}

# name -> (setting, source link Mbps, destination link Mbps)
BANDWIDTH = {
    "auto-40G": (BandwidthSetting(BandwidthMode.AUTO), 40_000, 100_000),
    "auto-unknown": (BandwidthSetting(BandwidthMode.AUTO), None, None),
    "auto-one-known": (BandwidthSetting(BandwidthMode.AUTO), None, 25_000),
    "hypervisor-default": (BandwidthSetting(BandwidthMode.HYPERVISOR_DEFAULT), 40_000, 40_000),
    "custom-1G": (BandwidthSetting(BandwidthMode.CUSTOM, 1_000), 40_000, 40_000),
    "custom-400G": (BandwidthSetting(BandwidthMode.CUSTOM, 400_000), 40_000, 40_000),
    "custom-3T": (BandwidthSetting(BandwidthMode.CUSTOM, 3_000_000), None, None),
}
VCPUS = (1, 2, 4, 64, 300)
SUPPORT = (ZeroCopySupport.YES, ZeroCopySupport.NO, ZeroCopySupport.UNKNOWN)

# The user's own cluster settings for the fields a policy may override.
USER_COMPRESSED = True
USER_AUTO_CONVERGE = False


def expected_bandwidth_mbps(bw_name: str) -> int | None:
    setting, src, dst = BANDWIDTH[bw_name]
    if setting.mode is BandwidthMode.HYPERVISOR_DEFAULT:
        return None
    if setting.mode is BandwidthMode.CUSTOM:
        return setting.custom_mbps
    # Facts §5 step 8: AUTO needs both hosts' link speeds; either unknown is no bandwidth.
    return min(src, dst) if src and dst else None


def expected(policy_id, parallel_name, enc_name, gate, support, vcpus, bw_name) -> dict:
    _, max_mig, pol_ac, pol_comp, pol_ge, pol_zc, pol_postcopy, legacy = FACTS_POLICIES[policy_id]
    vm_enc, cl_enc = ENCRYPTION[enc_name]
    encrypted = vm_enc if vm_enc is not None else cl_enc
    bw = expected_bandwidth_mbps(bw_name)

    zerocopy = pol_zc and gate and not encrypted and support is not ZeroCopySupport.NO
    mode = PARALLEL_SETTINGS[parallel_name].mode
    enforced = zerocopy and mode in (ParallelMode.DISABLED, ParallelMode.AUTO)
    if enforced:
        mode = ParallelMode.AUTO_PARALLEL
    custom_capped = capped_255 = False
    if not gate or mode is ParallelMode.DISABLED:
        n = None
    elif mode is ParallelMode.CUSTOM:
        n = min(CUSTOM_N, max(2, vcpus))
        custom_capped = n < CUSTOM_N
    else:
        n = None if bw is None else min(bw // 10240, vcpus)
        if n is not None and n < 2:
            n = None
        if n is None and mode is ParallelMode.AUTO_PARALLEL:
            n = 2
    if n is not None and n > 255:
        n, capped_255 = 255, True

    compressed = USER_COMPRESSED and n is None
    auto_converge = USER_AUTO_CONVERGE
    if not legacy:
        compressed, auto_converge = pol_comp, pol_ac
    if n is not None:
        compressed = False   # libvirt refuses compression with parallel connections
    postcopy_kept = pol_postcopy and n is None
    if bw is None:
        max_bw = None
    else:
        max_bw = max(1, bw // 8 // max_mig)
    limit = 1 if n is not None else max_mig

    fields = set()
    if pol_zc and (not zerocopy or support is ZeroCopySupport.UNKNOWN):
        fields.add("zerocopy")
    if (not gate and parallel_name != "DISABLED") or (gate and (enforced or custom_capped or capped_255)):
        fields.add("parallel")
    if compressed != USER_COMPRESSED:
        fields.add("compressed")
    if auto_converge != USER_AUTO_CONVERGE:
        fields.add("autoConverge")
    if pol_postcopy and not postcopy_kept:
        fields.add("convergenceSchedule")
    setting = BANDWIDTH[bw_name][0]
    if setting.mode is BandwidthMode.AUTO and bw is None:
        fields.add("maxBandwidth")
    if setting.mode is BandwidthMode.CUSTOM and max_bw != setting.custom_mbps // 8:
        fields.add("maxBandwidth")

    return {
        "zerocopy": zerocopy, "parallel": n, "compressed": compressed, "autoConverge": auto_converge,
        "encrypted": encrypted, "enableGuestEvents": pol_ge, "maxBandwidth": max_bw,
        "limit": limit, "postcopy": postcopy_kept, "legacy": legacy, "fields": fields,
        "enforced": enforced,
    }


def make_inputs(policy_id, parallel_name, enc_name, gate, support, vcpus, bw_name):
    vm_enc, cl_enc = ENCRYPTION[enc_name]
    setting, src_speed, dst_speed = BANDWIDTH[bw_name]
    cluster = ClusterMigrationOptions(
        policy_id=policy_id, parallel=PARALLEL_SETTINGS[parallel_name], encrypted=cl_enc,
        bandwidth=setting, auto_converge=USER_AUTO_CONVERGE, compressed=USER_COMPRESSED,
        parallel_supported=gate,
    )
    vm = VmMigrationOverrides(encrypted=vm_enc)
    src = HostMigrationInfo("src", "127.0.0.2", link_speed_mbps=src_speed, zerocopy=support)
    dst = HostMigrationInfo("dst", "127.0.0.3", "10.9.0.3", True, dst_speed, ZeroCopySupport.YES)
    return cluster, vm, src, dst


def _has_postcopy(schedule: dict | None) -> bool:
    if schedule is None:
        return False
    return any(item["action"]["name"] == "postcopy" for item in schedule["stalling"])


@pytest.mark.parametrize("gate", [True, False], ids=["gate-on", "gate-off"])
@pytest.mark.parametrize("enc_name", list(ENCRYPTION))
@pytest.mark.parametrize("parallel_name", list(PARALLEL_SETTINGS))
@pytest.mark.parametrize("policy_id", list(FACTS_POLICIES), ids=[v[0] for v in FACTS_POLICIES.values()])
def test_plan_matches_the_rules(policy_id, parallel_name, enc_name, gate):
    policy = BUILTIN_BY_ID[policy_id]
    for support, vcpus, bw_name in itertools.product(SUPPORT, VCPUS, BANDWIDTH):
        case = (policy_id, parallel_name, enc_name, gate, support, vcpus, bw_name)
        where = f"{policy.name}/{parallel_name}/{enc_name}/gate={gate}/{support.value}/{vcpus} vCPUs/{bw_name}"
        cluster, vm, src, dst = make_inputs(*case)
        plan = plan_migration(cluster, vm, policy, src, dst, vcpus=vcpus)
        exp = expected(*case)
        p = plan.params.to_wire()

        assert p.get("zerocopy", False) is exp["zerocopy"], where
        assert p.get("parallel") == exp["parallel"], where
        assert p["compressed"] is exp["compressed"], where
        assert p["autoConverge"] is exp["autoConverge"], where
        assert p["encrypted"] is exp["encrypted"], where
        assert p["enableGuestEvents"] is exp["enableGuestEvents"], where
        assert p.get("maxBandwidth") == exp["maxBandwidth"], where
        assert p["incomingLimit"] == p["outgoingLimit"] == exp["limit"], where
        assert ("convergenceSchedule" not in p) is exp["legacy"], where
        assert _has_postcopy(p.get("convergenceSchedule")) is exp["postcopy"], where
        assert p["dst"] == "127.0.0.3" and p["method"] == "online" and p["tunneled"] is False, where
        assert p["abortOnError"] is True, where

        assert {e.field for e in plan.explanation} == exp["fields"], where
        for entry in plan.explanation:
            assert entry.reason and entry.from_ != entry.to, (where, entry)

        flags = set(plan.libvirt_flags)
        assert ("VIR_MIGRATE_ZEROCOPY" in flags) is exp["zerocopy"], where
        assert ("VIR_MIGRATE_PARALLEL" in flags) is (exp["parallel"] is not None), where
        assert ("VIR_MIGRATE_TLS" in flags) is exp["encrypted"], where
        assert ("VIR_MIGRATE_POSTCOPY" in flags) is exp["postcopy"], where
        assert plan.flag_warnings == (), where


def test_matrix_covers_every_zero_copy_outcome():
    """The matrix above is only worth something if it reaches each outcome of the rules."""
    outcomes = set()
    for case in itertools.product(FACTS_POLICIES, PARALLEL_SETTINGS, ENCRYPTION, (True, False),
                                  SUPPORT, VCPUS, BANDWIDTH):
        exp = expected(*case)
        outcomes.add((exp["zerocopy"], exp["enforced"], exp["parallel"] is None, exp["parallel"] == 255))
    assert (True, True, False, False) in outcomes     # zero-copy forcing parallel on
    assert (True, False, False, False) in outcomes    # zero-copy with parallel already on
    assert (False, False, True, False) in outcomes    # neither
    assert (False, False, False, True) in outcomes    # 255 cap

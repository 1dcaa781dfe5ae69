"""Facts §5, step by step: how the engine builds VM.migrate. One or more tests per numbered step
(step 8's worked cases are test_rule_5_8_* in tests/unit/engine/test_planner.py); where Ferry
deliberately differs from oVirt the test says so in its name (see docs/planner-scenarios.md)."""
from dataclasses import replace

import pytest

from ferry.common.errors import InvalidInput
from ferry.engine import plan_rules as rules
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
from ferry.engine.planner import effective_policy_id, plan_migration
from ferry.engine.policies import (
    BUILTIN_BY_ID,
    LEGACY_ID,
    MINIMAL_DOWNTIME_ID,
    POST_COPY_ID,
    SUSPEND_WORKLOAD_ID,
    VERY_LARGE_VMS_ID,
    MigrationPolicy,
)
from ferry.protocol.schedule import ABORT, POSTCOPY, SET_DOWNTIME, Action

LEGACY = BUILTIN_BY_ID[LEGACY_ID]
MINIMAL = BUILTIN_BY_ID[MINIMAL_DOWNTIME_ID]
SUSPEND = BUILTIN_BY_ID[SUSPEND_WORKLOAD_ID]
POST_COPY = BUILTIN_BY_ID[POST_COPY_ID]
VERY_LARGE = BUILTIN_BY_ID[VERY_LARGE_VMS_ID]
SRC = HostMigrationInfo("h1", "127.0.0.2", "10.9.0.2", True, 25_000, ZeroCopySupport.YES)
DST = HostMigrationInfo("h2", "127.0.0.3", "10.9.0.3", True, 100_000, ZeroCopySupport.YES)
DISABLED = ParallelSetting(ParallelMode.DISABLED)
AUTO = ParallelSetting(ParallelMode.AUTO)


def plan(policy=MINIMAL, cluster=None, vm=None, source=SRC, destination=DST, **kw):
    cluster = cluster or ClusterMigrationOptions(policy_id=policy.id)
    kw.setdefault("vcpus", 8)
    return plan_migration(cluster, vm or VmMigrationOverrides(), policy, source, destination, **kw)


def fields(p):
    return {e.field: e for e in p.explanation}


# ---- step 1 and 2 -------------------------------------------------------------------------

@pytest.mark.parametrize("vm, cluster, expected", [
    (None, None, (False, "default")), (None, True, (True, "cluster")), (None, False, (False, "cluster")),
    (True, False, (True, "VM override")), (False, True, (False, "VM override")), (True, None, (True, "VM override")),
])
def test_rule_5_1_and_5_2_vm_override_else_cluster_else_off(vm, cluster, expected):
    c = ClusterMigrationOptions(LEGACY_ID, auto_converge=bool(cluster), encrypted=bool(cluster))
    v = VmMigrationOverrides(auto_converge=vm, encrypted=vm)
    if cluster is None:
        assert rules.first_set(vm, None) == expected
    else:
        assert rules.rule_2_encrypted(c, v) == expected
        assert rules.rule_1_auto_converge(c, v) is expected[0]
    assert rules.first_set(None, None, default=True) == (True, "default")


def test_rule_5_1_legacy_sends_the_admins_auto_converge():
    assert plan(LEGACY, vm=VmMigrationOverrides(auto_converge=True)).params.auto_converge is True
    assert plan(LEGACY).params.auto_converge is False
    c = ClusterMigrationOptions(LEGACY_ID, auto_converge=True)
    assert plan(LEGACY, cluster=c).params.auto_converge is True


def test_rule_5_2_encrypted_is_sent_as_set():
    c = ClusterMigrationOptions(MINIMAL_DOWNTIME_ID, encrypted=True)
    assert plan(cluster=c).params.encrypted is True
    assert plan(cluster=c, vm=VmMigrationOverrides(encrypted=False)).params.encrypted is False


# ---- step 3 -------------------------------------------------------------------------------

def test_rule_5_3_effective_policy_vm_else_cluster():
    c = ClusterMigrationOptions(MINIMAL_DOWNTIME_ID)
    assert effective_policy_id(c, VmMigrationOverrides()) == (MINIMAL_DOWNTIME_ID, "cluster")
    assert effective_policy_id(c, VmMigrationOverrides(policy_id=POST_COPY_ID)) == (POST_COPY_ID, "VM override")
    assert plan(POST_COPY, cluster=c, vm=VmMigrationOverrides(policy_id=POST_COPY_ID)).policy_origin == "VM override"
    assert plan(cluster=c).policy_origin == "cluster"


def test_rule_5_3_a_requested_policy_is_said_in_a_note():
    p = plan(POST_COPY, cluster=ClusterMigrationOptions(MINIMAL_DOWNTIME_ID))
    assert p.policy_origin == "requested"
    assert (f"policy: Post-copy migration was asked for this plan instead of the cluster's policy "
            f"({MINIMAL_DOWNTIME_ID})") in p.notes
    assert (p.policy_id, p.policy_name) == (POST_COPY_ID, "Post-copy migration")


# ---- step 4 -------------------------------------------------------------------------------

def test_rule_5_4_zerocopy_needs_the_policy_parallel_support_and_no_tls():
    assert plan(VERY_LARGE).params.zerocopy is True
    assert plan(MINIMAL).params.zerocopy is False and "zerocopy" not in fields(plan(MINIMAL))
    no_parallel = ClusterMigrationOptions(VERY_LARGE_VMS_ID, parallel_supported=False)
    p = plan(VERY_LARGE, cluster=no_parallel)
    assert p.params.zerocopy is False
    e = fields(p)["zerocopy"]
    assert (e.from_, e.to) == ("on (policy Very large VMs)", "off")
    assert e.reason == "parallel migrations are not supported in this cluster, and zero-copy needs them"
    p = plan(VERY_LARGE, vm=VmMigrationOverrides(encrypted=True))
    assert p.params.zerocopy is False
    assert fields(p)["zerocopy"].reason == ("migration encryption is enabled (VM override); QEMU cannot "
                                            "combine zero-copy with TLS")


def test_rule_5_4_zerocopy_sent_unconfirmed_to_a_source_that_does_not_report_it():
    p = plan(VERY_LARGE, source=replace(SRC, zerocopy=ZeroCopySupport.UNKNOWN))
    assert p.params.zerocopy is True and p.params.parallel == 2
    e = fields(p)["zerocopy"]
    assert e.to == "sent, unconfirmed" and e.reason.startswith("source host h1 does not report")


def test_deliberately_differs_zerocopy_not_sent_to_a_source_reporting_it_unsupported():
    """oVirt sends zerocopy whatever the host; Ferry knows the source's capability and does not
    send it where the agent says it cannot work (the agent would drop it anyway)."""
    p = plan(VERY_LARGE, source=replace(SRC, zerocopy=ZeroCopySupport.NO))
    assert p.params.zerocopy is False and "zerocopy" not in p.params.to_wire()
    e = fields(p)["zerocopy"]
    assert (e.to, e.reason) == ("not sent", "source host h1 reports zero-copy unsupported")


def test_deliberately_differs_parallel_not_forced_when_the_source_reports_zerocopy_unsupported():
    """oVirt forces AUTO_PARALLEL for a zero-copy policy (step 5's enforce); with zero-copy not
    sent (the source reports it unsupported) nothing needs parallel, so Ferry leaves the admin's
    setting: DISABLED stays off (docs/scenarios/unsupported-source.yaml)."""
    p = plan(VERY_LARGE, source=replace(SRC, zerocopy=ZeroCopySupport.NO))
    assert p.params.parallel is None and "parallel" not in fields(p)
    assert p.params.outgoing_limit == 1          # Very large VMs: maxMigrations 1
    assert plan(VERY_LARGE).params.parallel == 2  # the source can: forced, as oVirt does


def test_deliberately_differs_zerocopy_off_with_the_policys_compression():
    """QEMU refuses zero-copy with compression; oVirt would send both. Custom policies cannot
    have both (validate_policy); a policy built in code that has both plans without zero-copy."""
    both = replace(VERY_LARGE, id="11111111-1111-1111-1111-111111111111", name="both", compression=True,
                   builtin=False)
    zerocopy, why = rules.rule_4_zerocopy(both, ClusterMigrationOptions(both.id), False, "default", SRC)
    assert zerocopy is False
    assert why.explanation[0].reason == "policy both also asks for compression, which QEMU cannot combine with zero-copy"
    zerocopy, why = rules.rule_4_zerocopy(both, ClusterMigrationOptions(both.id, parallel_supported=False),
                                          True, "cluster", replace(SRC, zerocopy=ZeroCopySupport.NO))
    assert zerocopy is False and why.explanation[0].to == "off"
    reason = why.explanation[0].reason                           # every reason, joined
    assert reason.startswith("parallel migrations are not supported") and "(cluster)" in reason
    assert reason.endswith("; source host h1 reports zero-copy unsupported") and "compression" in reason


# ---- step 5 -------------------------------------------------------------------------------

def test_rule_5_5_vm_parallel_overrides_the_clusters():
    c = ClusterMigrationOptions(MINIMAL_DOWNTIME_ID, parallel=DISABLED)
    p = plan(cluster=c, vm=VmMigrationOverrides(parallel=ParallelSetting(ParallelMode.CUSTOM, 4)))
    assert p.params.parallel == 4
    c = ClusterMigrationOptions(MINIMAL_DOWNTIME_ID, parallel=ParallelSetting(ParallelMode.CUSTOM, 4))
    assert plan(cluster=c, vm=VmMigrationOverrides(parallel=DISABLED)).params.parallel is None
    assert plan(cluster=c).params.parallel == 4


def test_rule_5_5_no_parallel_where_the_cluster_does_not_support_it():
    c = ClusterMigrationOptions(MINIMAL_DOWNTIME_ID, parallel=ParallelSetting(ParallelMode.CUSTOM, 4),
                                parallel_supported=False)
    p = plan(cluster=c)
    assert p.params.parallel is None
    e = fields(p)["parallel"]
    assert (e.from_, e.to, e.reason) == ("CUSTOM:4", "off", "parallel migrations are not supported in this cluster")
    c = replace(c, parallel=DISABLED)
    assert "parallel" not in fields(plan(cluster=c))


def test_rule_5_5_the_explanation_says_each_cap():
    c = ClusterMigrationOptions(MINIMAL_DOWNTIME_ID, parallel=ParallelSetting(ParallelMode.CUSTOM, 8))
    e = fields(plan(cluster=c, vcpus=4))["parallel"]
    assert (e.from_, e.to, e.reason) == ("CUSTOM:8", "CUSTOM, 4 connections",
                                         "CUSTOM is limited to max(2, the VM's 4 vCPUs) connections")
    c = ClusterMigrationOptions(MINIMAL_DOWNTIME_ID, parallel=AUTO,
                                bandwidth=BandwidthSetting(BandwidthMode.CUSTOM, 300 * 10240))
    p = plan(cluster=c, vcpus=300)
    assert p.params.parallel == 255 and fields(p)["parallel"].reason == "at most 255 connections"
    c = replace(c, bandwidth=BandwidthSetting(BandwidthMode.CUSTOM, 255 * 10240))
    p = plan(cluster=c, vcpus=300)
    assert p.params.parallel == 255 and "parallel" not in fields(p)       # exactly 255: no cap
    assert any(n.startswith("parallel: AUTO → AUTO, 255 connections: ") for n in p.notes)


# ---- step 6 -------------------------------------------------------------------------------

def test_rule_5_6_compression_only_without_parallel():
    c = ClusterMigrationOptions(LEGACY_ID, compressed=True)
    assert plan(LEGACY, cluster=c).params.compressed is True
    c = replace(c, parallel=ParallelSetting(ParallelMode.CUSTOM, 4))
    p = plan(LEGACY, cluster=c)
    assert p.params.compressed is False and p.params.parallel == 4
    e = fields(p)["compressed"]
    assert (e.from_, e.to, e.reason) == ("on", "off", "compression is not used with parallel connections")
    assert rules.rule_6_compressed(c, VmMigrationOverrides(compressed=False), None)[:2] == (False, False)
    assert rules.rule_6_compressed(c, VmMigrationOverrides(), 3)[:2] == (True, False)


def test_rule_5_6_legacy_with_compression_off_and_no_parallel():
    p = plan(LEGACY)
    assert p.params.compressed is False and p.params.parallel is None
    assert "compressed" not in fields(p) and "VIR_MIGRATE_COMPRESSED" not in p.libvirt_flags
    p = plan(LEGACY, vm=VmMigrationOverrides(compressed=True))
    assert p.params.compressed is True and "compressed" not in fields(p)
    assert "VIR_MIGRATE_COMPRESSED" in p.libvirt_flags


# ---- step 7 -------------------------------------------------------------------------------

def test_rule_5_7_postcopy_dropped_with_parallel_init_kept():
    c = ClusterMigrationOptions(POST_COPY_ID, parallel=ParallelSetting(ParallelMode.CUSTOM, 2))
    p = plan(POST_COPY, cluster=c)
    s = p.params.schedule
    assert s.init == (Action(SET_DOWNTIME, 100),)             # the init of a schedule whose post-copy was dropped
    assert [str(x.action) for x in s.stalling] == ["setDowntime(150)", "setDowntime(200)", "abort"]
    e = fields(p)["convergenceSchedule"]
    assert (e.from_, e.to, e.reason) == ("policy Post-copy migration with post-copy", "without post-copy",
                                         "post-copy is not used with parallel connections")
    assert "VIR_MIGRATE_POSTCOPY" not in p.libvirt_flags
    assert p.params.to_wire()["convergenceSchedule"]["init"] == [{"name": "setDowntime", "params": ["100"]}]


def test_rule_5_7_postcopy_dropped_for_a_paused_vm():
    p = plan(POST_COPY, paused=True)
    assert not p.params.schedule.has_postcopy and p.params.schedule.init == (Action(SET_DOWNTIME, 100),)
    assert fields(p)["convergenceSchedule"].reason == "the VM is paused, and post-copy needs a running VM"
    p = plan(POST_COPY)
    assert p.params.schedule.has_postcopy and "VIR_MIGRATE_POSTCOPY" in p.libvirt_flags
    assert "convergenceSchedule" not in fields(p)


def test_rule_5_7_no_explanation_when_nothing_was_dropped():
    c = ClusterMigrationOptions(MINIMAL_DOWNTIME_ID, parallel=ParallelSetting(ParallelMode.CUSTOM, 2))
    p = plan(cluster=c, paused=True)
    assert "convergenceSchedule" not in fields(p) and p.params.schedule == MINIMAL.schedule()
    assert plan(LEGACY, paused=True).params.schedule is None


# ---- step 8 (edges; the worked cases are in test_planner.py) --------------------------------

def test_rule_5_8_custom_bandwidth_shared_is_explained():
    c = ClusterMigrationOptions(MINIMAL_DOWNTIME_ID, bandwidth=BandwidthSetting(BandwidthMode.CUSTOM, 8000))
    p = plan(cluster=c)
    assert p.params.max_bandwidth == 500
    e = fields(p)["maxBandwidth"]
    assert (e.from_, e.to, e.reason) == ("CUSTOM 8000 Mbps", "500 MiB/s",
                                         "1000 MiB/s / 2: policy Minimal downtime runs up to 2 migrations at once")
    c = replace(c, policy_id=SUSPEND_WORKLOAD_ID)
    p = plan(SUSPEND, cluster=c)
    assert p.params.max_bandwidth == 1000 and "maxBandwidth" not in fields(p)   # / 1: as set
    assert "maxBandwidth: 1000 MiB/s = 1000 MiB/s / 1: policy Suspend workload if needed runs up to 1 " \
           "migration at once" in p.notes


def test_deliberately_differs_max_bandwidth_never_0():
    """Below 8 Mbps, Mbps / 8 is 0 MiB/s, which the agent reads as unlimited (oVirt would send
    it): Ferry sends 1 MiB/s and says why."""
    c = ClusterMigrationOptions(MINIMAL_DOWNTIME_ID)
    p = plan(cluster=c, source=replace(SRC, link_speed_mbps=5))
    assert p.params.max_bandwidth == 1
    e = fields(p)["maxBandwidth"]
    assert (e.from_, e.to) == ("AUTO", "1 MiB/s") and "unlimited" in e.reason


def test_rule_5_8_auto_0_mbps_link_sends_nothing_and_says_why():
    p = plan(source=replace(SRC, link_speed_mbps=0))
    assert p.params.max_bandwidth is None and "maxBandwidth" not in p.params.to_wire()
    e = fields(p)["maxBandwidth"]
    assert (e.from_, e.to) == ("AUTO", "not sent (agent default 52 MiB/s)")
    assert e.reason.startswith("h1 does not report its migration link speed")
    c = ClusterMigrationOptions(MINIMAL_DOWNTIME_ID, bandwidth=BandwidthSetting(BandwidthMode.HYPERVISOR_DEFAULT))
    p = plan(cluster=c)
    assert p.params.max_bandwidth is None and "maxBandwidth" not in fields(p)


# ---- step 9 -------------------------------------------------------------------------------

def test_rule_5_9_a_real_policy_overrides_auto_converge_compression_and_guest_events():
    c = ClusterMigrationOptions(SUSPEND_WORKLOAD_ID, auto_converge=False, compressed=False)
    p = plan(SUSPEND, cluster=c)
    assert (p.params.auto_converge, p.params.compressed, p.params.enable_guest_events) == (True, True, True)
    f = fields(p)
    assert (f["autoConverge"].from_, f["autoConverge"].to, f["autoConverge"].reason) == (
        "off", "on", "policy Suspend workload if needed sets auto-converge on")
    assert (f["compressed"].from_, f["compressed"].to, f["compressed"].reason) == (
        "off", "on", "policy Suspend workload if needed sets compression on")
    c = ClusterMigrationOptions(MINIMAL_DOWNTIME_ID, auto_converge=True, compressed=True)
    p = plan(cluster=c)
    assert (p.params.auto_converge, p.params.compressed) == (True, False)
    assert "autoConverge" not in fields(p)
    assert fields(p)["compressed"].reason == "policy Minimal downtime sets compression off"


def test_rule_5_9_legacy_keeps_the_admins_values():
    c = ClusterMigrationOptions(LEGACY_ID, auto_converge=True, compressed=True)
    p = plan(LEGACY, cluster=c)
    assert (p.params.auto_converge, p.params.compressed, p.params.enable_guest_events) == (True, True, False)
    assert not {"autoConverge", "compressed"} & set(fields(p))


def test_deliberately_differs_compression_not_applied_to_a_parallel_migration():
    """libvirt refuses COMPRESSED with PARALLEL unless a multifd method is named; oVirt would
    send the policy's compression anyway."""
    c = ClusterMigrationOptions(SUSPEND_WORKLOAD_ID, parallel=ParallelSetting(ParallelMode.CUSTOM, 4))
    p = plan(SUSPEND, cluster=c)
    assert p.params.compressed is False and p.params.parallel == 4
    assert "compressed" not in fields(p)       # off as set: a note, not an explanation
    assert ("compressed: off: policy Suspend workload if needed asks for compression, but libvirt refuses "
            "compression with parallel connections") in p.notes
    p = plan(SUSPEND, cluster=replace(c, compressed=True))
    e = fields(p)["compressed"]
    assert (e.from_, e.to) == ("on", "off") and "libvirt refuses" in e.reason


# ---- step 10 and 11 -------------------------------------------------------------------------

def test_rule_5_10_limits_1_with_parallel_else_max_migrations():
    assert (plan().params.incoming_limit, plan().params.outgoing_limit) == (2, 2)
    assert plan(SUSPEND).params.outgoing_limit == 1
    c = ClusterMigrationOptions(MINIMAL_DOWNTIME_ID, parallel=ParallelSetting(ParallelMode.CUSTOM, 4))
    p = plan(cluster=c)
    assert (p.params.incoming_limit, p.params.outgoing_limit) == (1, 1)
    assert ("incomingLimit/outgoingLimit: 1: one migration at a time when it uses parallel connections"
            in p.notes)
    assert "incomingLimit/outgoingLimit: 2: policy Minimal downtime allows 2 at once" in plan().notes


def test_rule_5_10_max_migrations_below_1_is_refused():
    for bad in (0, -1, "2"):
        broken = replace(MINIMAL, max_migrations=bad)
        with pytest.raises(InvalidInput) as e:
            plan(broken)
        assert e.value.field == "policy.max_migrations"
    assert plan(replace(MINIMAL, max_migrations=1)).params.outgoing_limit == 1
    with pytest.raises(InvalidInput) as e:
        plan(replace(MINIMAL, max_migrations=65))
    assert e.value.field == "outgoingLimit"
    assert plan(replace(MINIMAL, max_migrations=64)).params.outgoing_limit == 64


def test_rule_5_10_a_cluster_policy_below_1_is_refused_too():
    c = ClusterMigrationOptions(MINIMAL_DOWNTIME_ID)
    with pytest.raises(InvalidInput) as e:
        plan(POST_COPY, cluster=c, cluster_policy=replace(MINIMAL, max_migrations=0))
    assert e.value.field == "policy.max_migrations"


@pytest.mark.parametrize("vcpus", [0, -1, True, 2.0])
def test_rule_5_bad_vcpus_are_refused(vcpus):
    with pytest.raises(InvalidInput) as e:
        plan(vcpus=vcpus)
    assert e.value.field == "vcpus"


@pytest.mark.parametrize("address", ["", "  ", None])
def test_rule_5_destination_without_an_address_is_refused(address):
    with pytest.raises(InvalidInput) as e:
        plan(destination=replace(DST, address=address))
    assert e.value.field == "dst"


def test_rule_5_11_dstqemu_only_when_the_migration_network_is_up_on_both():
    assert plan().params.dstqemu == "10.9.0.3"
    p = plan(source=replace(SRC, migration_network_up=False))
    assert p.params.dstqemu is None
    assert "dstqemu: not sent (the migration network is not up on h1): QEMU's data goes to 127.0.0.3" in p.notes
    p = plan(source=replace(SRC, migration_network_up=False), destination=replace(DST, migration_network_up=False))
    assert "dstqemu: not sent (the migration network is not up on h1, h2): QEMU's data goes to 127.0.0.3" in p.notes
    p = plan(destination=replace(DST, migration_address=None))
    assert p.params.dstqemu is None
    assert "dstqemu: not sent (h2 has no migration network address): QEMU's data goes to 127.0.0.3" in p.notes
    assert plan().libvirt_typed_params["migrate_uri"] == "tcp://10.9.0.3"


def test_rule_5_every_plan_sends_abort_on_error_and_the_destination():
    p = plan()
    assert p.params.abort_on_error is True and p.params.dst == "127.0.0.3"
    assert (p.source, p.destination) == ("h1", "h2")


def test_rule_5_vm_downtime_is_sent_and_noted_under_a_schedule():
    p = plan(LEGACY, vm=VmMigrationOverrides(downtime_ms=800))
    assert p.params.downtime == 800 and not any(n.startswith("downtime:") for n in p.notes)
    p = plan(vm=VmMigrationOverrides(downtime_ms=800))
    assert p.params.downtime == 800
    assert ("downtime: 800 ms is sent, but policy Minimal downtime's schedule sets the downtimes; the agent "
            "uses it only without a schedule") in p.notes
    with pytest.raises(InvalidInput) as e:
        plan(vm=VmMigrationOverrides(downtime_ms=0))
    assert e.value.field == "downtime"


def test_rule_5_8_cluster_policy_for_sources():
    c = ClusterMigrationOptions(MINIMAL_DOWNTIME_ID)
    assert rules.cluster_policy_for(c, POST_COPY, SUSPEND) == (SUSPEND, rules.NONE)
    assert rules.cluster_policy_for(c, MINIMAL, None) == (MINIMAL, rules.NONE)
    assert rules.cluster_policy_for(c, POST_COPY, None) == (MINIMAL, rules.NONE)
    custom = MigrationPolicy("22222222-2222-2222-2222-222222222222", "mine")
    policy, why = rules.cluster_policy_for(ClusterMigrationOptions("33333333-3333-3333-3333-333333333333"),
                                           custom, None)
    assert policy is custom and len(why.notes) == 1 and why.explanation == ()


def test_rule_5_explanation_entry_forms():
    e = rules.ExplanationEntry("f", "a", "b", "why")
    assert e.to_dict() == {"field": "f", "from": "a", "to": "b", "reason": "why"}
    assert str(e) == "f: a → b: why"
    assert rules.onoff(True) == "on" and rules.onoff(False) == "off"
    r = rules.Reasons((e,), ("n1",)) + rules.Reasons((), ("n2",))
    assert r == rules.Reasons((e,), ("n1", "n2"))


def test_rule_5_plan_to_dict():
    p = plan(POST_COPY, paused=True)
    d = p.to_dict()
    assert d["policy"] == {"id": POST_COPY_ID, "name": "Post-copy migration", "origin": "cluster"}
    assert d["params"] == p.params.to_wire() and d["libvirt_flags"] == list(p.libvirt_flags)
    assert d["explanation"] == [e.to_dict() for e in p.explanation] and d["notes"] == list(p.notes)
    assert d["vm"] is None and (d["source"], d["destination"]) == ("h1", "h2")
    assert d["libvirt_typed_params"] == p.libvirt_typed_params and d["flag_warnings"] == [] == list(p.flag_warnings)
    assert d["flag_notes"] == list(p.flag_notes)
    assert p.parallel_connections is None and p.zerocopy is False
    assert plan(vm_name="web").to_dict()["vm"] == "web"
    assert [s.action.name for s in p.params.schedule.stalling][-1] == ABORT and POSTCOPY not in [
        s.action.name for s in p.params.schedule.stalling]

"""Properties of the planner over generated inputs (hypothesis), built-in and custom policies."""
from __future__ import annotations

import json
import os

from hypothesis import given, settings
from hypothesis import strategies as st

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
from ferry.engine.policies import BUILTIN_POLICIES, policy_from_dict

# Under `make mutation` (mutmut sets MUTANT_UNDER_TEST) each mutant reruns these: fewer
# examples keep a run in minutes; the normal suite keeps 400.
_EXAMPLES = 40 if os.environ.get("MUTANT_UNDER_TEST") else 400

parallel_settings = st.one_of(
    st.sampled_from([ParallelSetting(m) for m in (ParallelMode.AUTO, ParallelMode.AUTO_PARALLEL,
                                                  ParallelMode.DISABLED)]),
    st.integers(2, 255).map(lambda n: ParallelSetting(ParallelMode.CUSTOM, n)),
)
bandwidths = st.one_of(
    st.sampled_from([BandwidthSetting(BandwidthMode.AUTO), BandwidthSetting(BandwidthMode.HYPERVISOR_DEFAULT)]),
    st.integers(1, 10_000_000).map(lambda v: BandwidthSetting(BandwidthMode.CUSTOM, v)),
)
maybe_bool = st.one_of(st.none(), st.booleans())

downtime = st.integers(1, 10_000)
actions = st.one_of(
    downtime.map(lambda ms: {"name": "setDowntime", "params": [ms]}),
    st.just({"name": "postcopy"}),
)


@st.composite
def custom_policies(draw):
    zerocopy = draw(st.booleans())
    limits = sorted(draw(st.lists(st.integers(0, 50), max_size=6)))
    last = draw(st.lists(actions, max_size=2, unique_by=lambda a: a["name"]))
    if draw(st.booleans()):
        last.append({"name": "abort"})
    return policy_from_dict({
        "name": draw(st.text("abcdefgh ", min_size=1, max_size=12).filter(str.strip)) + " custom",
        "max_migrations": draw(st.integers(1, 8)),
        "auto_converge": draw(st.booleans()),
        "compression": False if zerocopy else draw(st.booleans()),
        "guest_events": draw(st.booleans()),
        "zerocopy": zerocopy,
        "init": [{"name": "setDowntime", "params": [draw(downtime)]}],
        "stalling": [{"limit": n, "action": {"name": "setDowntime", "params": [draw(downtime)]}} for n in limits],
        "last_items": last,
    })


policies = st.one_of(st.sampled_from(BUILTIN_POLICIES), custom_policies())


@st.composite
def hosts(draw, name):
    return HostMigrationInfo(
        name=name, address=f"127.0.0.{draw(st.integers(2, 9))}",
        migration_address=draw(st.one_of(st.none(), st.just("10.1.0.5"))),
        migration_network_up=draw(st.booleans()),
        link_speed_mbps=draw(st.one_of(st.none(), st.integers(0, 4_000_000))),
        zerocopy=draw(st.sampled_from(ZeroCopySupport)),
    )


@st.composite
def inputs(draw):
    policy = draw(policies)
    cluster = ClusterMigrationOptions(
        policy_id=policy.id, parallel=draw(parallel_settings), encrypted=draw(st.booleans()),
        bandwidth=draw(bandwidths), auto_converge=draw(st.booleans()), compressed=draw(st.booleans()),
        parallel_supported=draw(st.booleans()),
    )
    vm = VmMigrationOverrides(
        parallel=draw(st.one_of(st.none(), parallel_settings)), encrypted=draw(maybe_bool),
        auto_converge=draw(maybe_bool), compressed=draw(maybe_bool),
        downtime_ms=draw(st.one_of(st.none(), downtime)),
    )
    return dict(cluster=cluster, vm=vm, policy=policy, source=draw(hosts("h1")),
                destination=draw(hosts("h2")), vcpus=draw(st.integers(1, 512)), paused=draw(st.booleans()))


def _plan(i):
    return plan_migration(i["cluster"], i["vm"], i["policy"], i["source"], i["destination"],
                          vcpus=i["vcpus"], paused=i["paused"])


def _first(*values):
    return next((v for v in values if v is not None), False)


@settings(max_examples=_EXAMPLES, deadline=None)
@given(inputs())
def test_a_plan_always_exists_and_is_safe(i):
    plan = _plan(i)   # never raises for valid input
    p = plan.params.to_wire()
    encrypted = _first(i["vm"].encrypted, i["cluster"].encrypted)
    assert p["encrypted"] is encrypted
    if p.get("zerocopy"):
        assert p["parallel"] >= 2
        assert not p["encrypted"] and not p["compressed"]
        assert i["source"].zerocopy is not ZeroCopySupport.NO
        assert i["cluster"].parallel_supported and i["policy"].zerocopy
    if "parallel" in p:
        assert 2 <= p["parallel"] <= 255 and i["cluster"].parallel_supported
        assert not p["compressed"]
        assert p["incomingLimit"] == p["outgoingLimit"] == 1
    else:
        assert p["incomingLimit"] == p["outgoingLimit"] == i["policy"].max_migrations
    if "maxBandwidth" in p:
        assert p["maxBandwidth"] >= 1
    # libvirt and QEMU would accept what the agent builds from it.
    assert plan.flag_warnings == ()
    assert ("VIR_MIGRATE_ZEROCOPY" in plan.libvirt_flags) is bool(p.get("zerocopy"))
    json.dumps(plan.to_dict())


@settings(max_examples=_EXAMPLES, deadline=None)
@given(inputs())
def test_every_forced_change_is_explained(i):
    plan = _plan(i)
    p = plan.params.to_wire()
    fields = {e.field for e in plan.explanation}
    policy, cluster, vm = i["policy"], i["cluster"], i["vm"]
    requested = vm.parallel if vm.parallel is not None else cluster.parallel

    if policy.zerocopy and not p.get("zerocopy"):
        assert "zerocopy" in fields
    if p.get("zerocopy") and i["source"].zerocopy is ZeroCopySupport.UNKNOWN:
        assert "zerocopy" in fields
    if "parallel" in p and requested.mode is ParallelMode.DISABLED:
        assert "parallel" in fields
    if requested.mode is ParallelMode.CUSTOM and p.get("parallel") != requested.connections:
        assert "parallel" in fields
    if p["compressed"] != _first(vm.compressed, cluster.compressed):
        assert "compressed" in fields
    if p["autoConverge"] != _first(vm.auto_converge, cluster.auto_converge):
        assert "autoConverge" in fields
    wanted_postcopy = any(a.name == "postcopy" for a in policy.last_items) or any(
        s.action.name == "postcopy" for s in policy.stalling)
    sent = p.get("convergenceSchedule") or {"stalling": []}
    sent_postcopy = any(s["action"]["name"] == "postcopy" for s in sent["stalling"])
    if wanted_postcopy and not sent_postcopy:
        assert "convergenceSchedule" in fields
    for entry in plan.explanation:
        assert entry.reason.strip() and entry.from_ != entry.to

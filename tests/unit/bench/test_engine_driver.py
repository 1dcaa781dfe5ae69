"""How a benchmark mode becomes engine settings, and a lab guest an inventory entry."""
from __future__ import annotations

from ferry.bench.engine_driver import (
    CLUSTER,
    PLAIN_POLICY,
    UNCAPPED_MBPS,
    ZEROCOPY_POLICY,
    bench_policy,
    cluster_settings,
    guest_body,
)
from ferry.bench.matrix import parse_mode
from ferry.bench.policy_bench import host_info
from ferry.engine.options import (
    BandwidthMode,
    BandwidthSetting,
    ClusterMigrationOptions,
    ParallelSetting,
    VmMigrationOverrides,
)
from ferry.engine.planner import plan_migration
from ferry.engine.policies import MigrationPolicy
from ferry.lab.guest import Workload, workload_spec
from ferry.lab.lab import Guest
from ferry.lab.plan import LabPlan
from ferry.protocol.schedule import Action

H1, H2 = LabPlan(4).host(1), LabPlan(4).host(2)


def test_modes_become_cluster_settings():
    assert cluster_settings(parse_mode("plain"))["parallel"] == {"mode": "DISABLED"}
    assert cluster_settings(parse_mode("plain"))["policy"] == PLAIN_POLICY
    z = cluster_settings(parse_mode("zerocopy4"))
    assert z["policy"] == ZEROCOPY_POLICY and z["parallel"] == {"mode": "CUSTOM", "connections": 4}
    assert z["bandwidth"] == {"mode": "CUSTOM", "custom_mbps": UNCAPPED_MBPS}


def _policy(body: dict) -> MigrationPolicy:
    return MigrationPolicy(id="11111111-2222-3333-4444-555555555555", name=body["name"],
                           max_migrations=body["max_migrations"], auto_converge=body["auto_converge"],
                           compression=body["compression"], guest_events=body["guest_events"],
                           zerocopy=body["zerocopy"], init=tuple(Action.from_params(a["name"], a["params"])
                                                                 for a in body["init"]))


def test_the_engines_planner_turns_the_settings_into_the_modes_parameters():
    """What the engine will plan for each mode, by the planner itself: the right connection
    count, zero-copy only in zerocopyN, no convergence actions, an uncapped bandwidth."""
    for text, parallel, zerocopy in (("plain", None, False), ("parallel4", 4, False), ("zerocopy4", 4, True)):
        mode = parse_mode(text)
        s = cluster_settings(mode)
        policy = _policy(bench_policy(s["policy"], mode.zerocopy))
        cluster = ClusterMigrationOptions(policy_id=policy.id, parallel=ParallelSetting.parse(
            f"CUSTOM:{mode.parallel}" if mode.parallel else "DISABLED"),
            bandwidth=BandwidthSetting(BandwidthMode.CUSTOM, s["bandwidth"]["custom_mbps"]))
        plan = plan_migration(cluster, VmMigrationOverrides(), policy, host_info(H1), host_info(H2), vcpus=4)
        assert plan.params.to_wire().get("parallel") == parallel
        assert bool(plan.params.to_wire().get("zerocopy")) is zerocopy
        assert plan.params.to_wire()["convergenceSchedule"] == {"init": [], "stalling": []}
        assert plan.params.to_wire()["maxBandwidth"] == UNCAPPED_MBPS // 8
        assert plan.params.to_wire()["autoConverge"] is False and plan.params.to_wire()["compressed"] is False


def test_guest_body_registers_the_running_lab_guest():
    spec = workload_spec(name="bench-1024-0", kernel="/k", initrd="/i", accel="tcg", memory_mib=1024, vcpus=4,
                         workload=Workload(864, 0), memtune_hard_limit_kib=8192)
    body = guest_body(Guest("bench-1024-0", H1, spec, 5.0), H1)
    assert body["cluster"] == CLUSTER and body["host"] == H1.name and body["status"] == "UP"
    assert body["uuid"] == spec.effective_uuid and body["vcpus"] == 4 and body["memtune_hard_limit_kib"] == 8192
    assert "ferry.fill=864" in body["cmdline"]

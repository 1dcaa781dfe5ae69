"""The built-in Adaptive policy: Ferry's own, going beyond oVirt (issue 17 item 2)."""
from __future__ import annotations

from ferry.engine.options import (
    ClusterMigrationOptions,
    HostMigrationInfo,
    ParallelMode,
    ParallelSetting,
    VmMigrationOverrides,
)
from ferry.engine.planner import plan_migration
from ferry.engine.policies import (
    ADAPTIVE_ID,
    ADAPTIVE_MAX_DOWNTIME_MS,
    BUILTIN_POLICIES,
    MINIMAL_DOWNTIME_ID,
    find_policy,
    policy_to_dict,
)
from ferry.protocol.adaptive import AdaptiveSpec
from ferry.protocol.migrate_params import BASE_MIGRATE_PARAMS, MigrateParams

SRC = HostMigrationInfo(name="h1", address="198.18.0.2:54321", migration_address="198.18.0.2",
                        migration_network_up=True)
DST = HostMigrationInfo(name="h2", address="198.18.0.3:54321", migration_address="198.18.0.3",
                        migration_network_up=True)


def plan(parallel=None, paused=False, policy_id=ADAPTIVE_ID):
    setting = ParallelSetting(ParallelMode.CUSTOM, parallel) if parallel else ParallelSetting(ParallelMode.DISABLED)
    return plan_migration(ClusterMigrationOptions(policy_id=policy_id, parallel=setting), VmMigrationOverrides(),
                          find_policy(policy_id), SRC, DST, vcpus=4, paused=paused)


def test_adaptive_beyond_ovirt_is_a_builtin_with_a_fixed_id():
    p = find_policy("adaptive")
    assert p.id == ADAPTIVE_ID == "f3c1a2d4-7b5e-4c8a-9e21-6d0b3a5f7c19"
    assert p.builtin and not p.legacy and p is BUILTIN_POLICIES[-1]
    assert (p.max_migrations, p.auto_converge, p.zerocopy, p.compression) == (2, True, False, False)
    assert p.adaptive_max_downtime_ms == ADAPTIVE_MAX_DOWNTIME_MS == 2000
    assert "beyond oVirt" in p.description
    assert policy_to_dict(p)["builtin"] is True


def test_adaptive_fallback_schedule_stays_within_the_same_maximum_downtime():
    schedule = find_policy(ADAPTIVE_ID).schedule()
    downtimes = [a.downtime_ms for a in schedule.init] + [
        s.action.downtime_ms for s in schedule.stalling if s.action.downtime_ms is not None]
    assert max(downtimes) == ADAPTIVE_MAX_DOWNTIME_MS
    assert [str(s.action) for s in schedule.stalling[-2:]] == ["postcopy", "abort"]


def test_planner_sends_adaptive_bounds_beside_the_fallback_schedule():
    p = plan()
    wire = p.to_dict()["params"]
    assert wire["adaptive"] == {"maxDowntimeMs": 2000, "initialDowntimeMs": 300, "allowPostcopy": True,
                                "maxThrottlePct": 99, "maxSecondsPerGiB": 64}
    assert wire["convergenceSchedule"]["stalling"][-1]["action"]["name"] == "abort"
    assert "VIR_MIGRATE_POSTCOPY" in p.libvirt_flags and "VIR_MIGRATE_AUTO_CONVERGE" in p.libvirt_flags
    assert any(n.startswith("adaptive:") for n in p.notes)


def test_planner_disallows_postcopy_for_adaptive_with_parallel_connections():
    p = plan(parallel=2)
    assert p.params.parallel == 2
    assert p.params.adaptive.allow_postcopy is False
    assert not p.params.schedule.has_postcopy
    assert "VIR_MIGRATE_POSTCOPY" not in p.libvirt_flags
    assert any("parallel connections" in n for n in p.notes if n.startswith("adaptive:"))


def test_planner_disallows_postcopy_for_a_paused_vm():
    p = plan(paused=True)
    assert p.params.adaptive.allow_postcopy is False and "VIR_MIGRATE_POSTCOPY" not in p.libvirt_flags


def test_other_policies_send_no_adaptive_key():
    assert "adaptive" not in plan(policy_id=MINIMAL_DOWNTIME_ID).to_dict()["params"]


def test_an_older_agent_ignores_adaptive_and_runs_the_fallback_schedule():
    """An agent that predates `adaptive` logs it as not recognized and runs the schedule."""
    wire = plan().params.to_wire()
    assert "adaptive" in BASE_MIGRATE_PARAMS
    older = {k: v for k, v in wire.items() if k != "adaptive"}
    parsed, unrecognized = MigrateParams.from_wire(older)
    assert unrecognized == () and parsed.adaptive is None
    assert parsed.effective_schedule() == find_policy(ADAPTIVE_ID).schedule()
    again, _ = MigrateParams.from_wire(wire)
    assert again.adaptive == AdaptiveSpec(max_downtime_ms=2000)

"""Which figures of a running migration's record the live ETA reads, one rule per test
(ferry.engine.migration_eta). The live model is replaced by a spy that records what it is given."""
from __future__ import annotations

import pytest

from ferry.engine import migration_eta as me
from ferry.engine.forecasting import IN_PASS_CHUNK_CAPPED_S, IN_PASS_CHUNK_FREE_S
from ferry.engine.migration_eta import migration_eta, pending_items, premigration
from ferry.forecast.live import Eta, LiveStats, PreMigration
from ferry.forecast.model import SWITCHOVER_SYNCS
from tests.unit.engine.test_migration_eta import plan_dict

MIB = 1 << 20


@pytest.fixture
def spy(monkeypatch):
    calls = []

    def fake(stats, **kw):
        calls.append((stats, kw))
        return Eta(1.0, "converge", "spy")
    monkeypatch.setattr(me, "live_eta", fake)
    return calls


def _rec(policy="Minimal downtime", plan=None, **figures):
    return {"state": "RUNNING", "plan": plan or plan_dict(policy),
            "figures": {"agent_state": "running", "bandwidth_bps": 50 * MIB, **figures}}


def test_the_memory_figures_serve_when_the_data_figures_are_missing(spy):
    migration_eta(_rec(memory_remaining=80 * MIB, data_total=512 * MIB, memory_processed=40 * MIB,
                       time_elapsed_ms=1500))
    stats, kw = spy[-1]
    # iteration unknown: the first pass; its downtime limit the schedule's init (100 ms)
    assert stats == LiveStats(remaining_mib=80.0, dirty_rate_mibs=0.0, throughput_mibs=50.0, iteration=0,
                              elapsed_s=1.5, downtime_ms=100.0, pass_elapsed_s=1.5, processed_mib=40.0)
    assert (kw["touched_mib"], kw["memory_mib"]) == (512.0, 512.0)


def test_the_data_figures_win_and_the_memory_total_is_the_guests_size(spy):
    migration_eta(_rec(data_remaining=70 * MIB, memory_remaining=80 * MIB, memory_total=1024 * MIB,
                       data_total=512 * MIB, data_processed=30 * MIB, memory_processed=40 * MIB, iteration=3,
                       dirty_rate_bps=2 * MIB))
    stats, kw = spy[-1]
    # iteration 3 is the agent's n = 2: the limit-1 item (150 ms) has run, the limit-2 one has not
    assert stats == LiveStats(remaining_mib=70.0, dirty_rate_mibs=2.0, throughput_mibs=50.0, iteration=2,
                              elapsed_s=0.0, downtime_ms=150.0, pass_elapsed_s=0.0, processed_mib=30.0)
    assert kw["memory_mib"] == 1024.0 and kw["pending"][0] == (2, "setDowntime", 200)


def test_the_reported_downtime_limit_beats_the_schedules_and_300_ms_without_either(spy):
    migration_eta(_rec(data_remaining=70 * MIB, data_total=512 * MIB, max_downtime_ms=250))
    assert spy[-1][0].downtime_ms == 250.0
    plan = plan_dict()
    plan["params"]["convergenceSchedule"] = {"init": [], "stalling": [{"limit": 1, "action": {"name": "abort",
                                                                                             "params": []}}]}
    migration_eta(_rec(plan=plan, data_remaining=70 * MIB, data_total=512 * MIB))
    assert spy[-1][0].downtime_ms == 300.0


def test_the_plan_gives_auto_converge_post_copy_chunk_switchover_and_time_bound_a_0_cap_is_none(spy):
    migration_eta(_rec(data_remaining=70 * MIB, data_total=512 * MIB))
    kw = spy[-1][1]
    assert kw["auto_converge"] is True and kw["postcopy_allowed"] is True
    assert kw["check_chunk_s"] == IN_PASS_CHUNK_CAPPED_S and kw["switchover_syncs"] == SWITCHOVER_SYNCS
    assert kw["max_seconds"] is None and kw["premigration"] is None
    legacy = plan_dict("Legacy")
    legacy["params"]["maxBandwidth"] = 0      # libvirt's 0: no cap
    migration_eta(_rec(plan=legacy, data_remaining=70 * MIB, data_total=512 * MIB))
    kw = spy[-1][1]
    assert kw["auto_converge"] is False and kw["check_chunk_s"] == IN_PASS_CHUNK_FREE_S
    assert kw["max_seconds"] == 32          # Vdsm's 64 s per GiB for a schedule-less migration of 512 MiB
    par = plan_dict()
    par["params"]["parallel"] = 4
    migration_eta(_rec(plan=par, data_remaining=70 * MIB, data_total=512 * MIB))
    assert spy[-1][1]["postcopy_allowed"] is False


def test_a_policys_last_item_alone_is_pending_from_the_start_and_limit_0_goes_at_iteration_1():
    assert pending_items(((-1, "abort", None),), 0) == ((-1, "abort", None),)
    assert pending_items(((0, "setDowntime", 100),), 1) == ()
    assert pending_items(((0, "setDowntime", 100),), 0) == ((0, "setDowntime", 100),)


def test_premigration_reads_touched_memory_and_defaults_to_a_linear_pattern():
    assert premigration({"measured": {"dirtyRateMiBs": 0, "touchedMiB": 0}}) == PreMigration(0.0, 0.0, "linear")
    assert premigration({"measured": {"dirtyRateMiBs": 0.5, "touchedMiB": 64, "dirtyPattern": "random"}}) == \
        PreMigration(0.5, 64.0, "random")
    assert premigration({"measured": {"dirtyRateMiBs": 1, "touchedMiB": -1}}) is None
    assert premigration({"measured": {"dirtyRateMiBs": 1, "dirtyPattern": "bursty"}}) is None
    assert premigration({"measured": {"dirtyRateMiBs": 1}}) == PreMigration(1.0, None, "linear")

"""The pure mapping of records to Prometheus families (ferry.engine.metrics)."""
from __future__ import annotations

import math

import pytest

from ferry.engine import metrics as mp


def record(mid="m1", vm="vm1", state="RUNNING", figures=None, **extra) -> dict:
    return {"id": mid, "vm": vm, "source": "h1", "destination": "h2", "state": state, "progress": 40,
            "plan": {"policy": {"id": "p", "name": "Very large VMs"}}, "figures": figures,
            "started_at": "2026-12-02T05:00:00+00:00", **extra}


def family(families, name) -> mp.Family:
    return next(f for f in families if f.name == name)


def values(families, name) -> dict:
    return {dict(s.labels).get("migration", dict(s.labels).get("host")): s.value
            for s in family(families, name).samples}


FIGURES = {"data_total": 1000, "data_processed": 600, "data_remaining": 400, "dirty_rate_bps": 5e6,
           "bandwidth_bps": 50e6, "agent_state": "running"}


def test_in_flight_gauges_take_the_figures_under_kubevirt_names_with_the_migration_labels():
    fams = mp.in_flight_families([record(figures=FIGURES)])
    assert values(fams, "ferry_vmi_migration_data_total_bytes") == {"m1": 1000}
    assert values(fams, "ferry_vmi_migration_data_processed_bytes") == {"m1": 600}
    assert values(fams, "ferry_vmi_migration_data_remaining_bytes") == {"m1": 400}
    assert values(fams, "ferry_vmi_migration_dirty_memory_rate_bytes") == {"m1": 5e6}
    assert values(fams, "ferry_vmi_migration_memory_transfer_rate_bytes") == {"m1": 50e6}
    assert values(fams, "ferry_vmi_migration_progress_percent") == {"m1": 40}
    start = family(fams, "ferry_vmi_migration_start_time_seconds").samples[0]
    assert start.value == 1796187600.0
    assert dict(start.labels) == {"vmi": "vm1", "migration": "m1", "source": "h1", "destination": "h2",
                                  "policy": "Very large VMs"}


def test_ended_migrations_and_missing_figures_give_no_in_flight_samples():
    fams = mp.in_flight_families([record("done", state="SUCCEEDED", figures=FIGURES),
                                  record("new", state="PENDING", figures=None, started_at=None)])
    assert values(fams, "ferry_vmi_migration_data_processed_bytes") == {}
    assert values(fams, "ferry_vmi_migration_start_time_seconds") == {}
    assert values(fams, "ferry_vmi_migration_progress_percent") == {"new": 40}
    states = {dict(s.labels)["state"]: s.value for s in family(fams, "ferry_vmi_migrations_in_flight").samples}
    assert states == {"PENDING": 1, "RUNNING": 0, "CANCELLING": 0}


def test_non_numbers_in_figures_are_left_out_not_exported_as_zero():
    fams = mp.in_flight_families([record(figures={"data_total": None, "data_processed": True,
                                                  "data_remaining": "12", "bandwidth_bps": math.nan})])
    for name in ("data_total_bytes", "data_processed_bytes", "data_remaining_bytes", "memory_transfer_rate_bytes"):
        assert values(fams, "ferry_vmi_migration_" + name) == {}


def test_missed_zero_copy_syncs_only_when_the_figures_carry_them():
    assert values(mp.in_flight_families([record(figures=FIGURES)]),
                  "ferry_vmi_migration_dirty_sync_missed_zero_copy") == {}
    fams = mp.in_flight_families([record(figures={**FIGURES, "dirty_sync_missed_zero_copy": 3})])
    assert values(fams, "ferry_vmi_migration_dirty_sync_missed_zero_copy") == {"m1": 3}


def test_eta_and_forecast_appear_only_once_the_record_carries_them():
    plain = mp.in_flight_families([record(figures=FIGURES)])
    assert values(plain, "ferry_vmi_migration_eta_seconds") == {}
    assert values(plain, "ferry_vmi_migration_forecast_seconds") == {}
    rec = record(figures=FIGURES, eta={"seconds": 12.5, "outcome": "converge"})
    rec["plan"]["forecast"] = {"outcome": "converge", "totalSeconds": 30}
    fams = mp.in_flight_families([rec])
    eta = family(fams, "ferry_vmi_migration_eta_seconds").samples[0]
    assert eta.value == 12.5 and dict(eta.labels)["outcome"] == "converge"
    assert values(fams, "ferry_vmi_migration_forecast_seconds") == {"m1": 30}
    own = mp.in_flight_families([record(figures=FIGURES, forecast={"totalSeconds": 7})])
    assert values(own, "ferry_vmi_migration_forecast_seconds") == {"m1": 7}


def test_finished_counters_by_result_and_policy():
    rows = [mp.FinishedRow("SUCCEEDED", "A", 10, 0.05), mp.FinishedRow("SUCCEEDED", "A", 20, 0.2),
            mp.FinishedRow("FAILED", "A", None, None), mp.FinishedRow("CANCELLED", None, 3, None),
            mp.FinishedRow("RUNNING", "A", None, None)]
    counter = family(mp.finished_families(rows), "ferry_vmi_migrations")
    assert counter.kind == "counter"
    got = {(dict(s.labels)["result"], dict(s.labels)["policy"]): s.value for s in counter.samples}
    assert got == {("succeeded", "A"): 2, ("failed", "A"): 1, ("cancelled", ""): 1}


def test_duration_and_downtime_histograms_count_succeeded_migrations_into_cumulative_buckets():
    rows = [mp.FinishedRow("SUCCEEDED", "A", 1.5, 0.04), mp.FinishedRow("SUCCEEDED", "A", 45, 0.3),
            mp.FinishedRow("FAILED", "A", 99, 9), mp.FinishedRow("SUCCEEDED", "B", 4000, None)]
    fams = mp.finished_families(rows)
    duration = {dict(s.labels)["policy"]: s for s in family(fams, "ferry_vmi_migration_duration_seconds").samples}
    a = duration["A"]
    assert (a.count, a.total) == (2, 46.5)
    assert dict(a.buckets)[1] == 0 and dict(a.buckets)[2] == 1 and dict(a.buckets)[60] == 2
    assert dict(a.buckets)[mp.INF] == 2
    assert dict(duration["B"].buckets)[3600] == 0 and dict(duration["B"].buckets)[mp.INF] == 1
    downtime = {dict(s.labels)["policy"]: s for s in family(fams, "ferry_vmi_migration_downtime_seconds").samples}
    assert set(downtime) == {"A"} and downtime["A"].count == 2
    assert dict(downtime["A"].buckets)[0.05] == 1 and dict(downtime["A"].buckets)[0.3] == 1 + 1


def test_forecast_ratio_only_for_migrations_with_a_forecast():
    rows = [mp.FinishedRow("SUCCEEDED", "A", 12, 0.1, forecast_s=10), mp.FinishedRow("SUCCEEDED", "A", 5, 0.1)]
    ratio = family(mp.finished_families(rows), "ferry_vmi_migration_forecast_ratio").samples
    assert len(ratio) == 1 and ratio[0].count == 1 and ratio[0].total == pytest.approx(1.2)
    assert dict(ratio[0].buckets)[1.1] == 0 and dict(ratio[0].buckets)[1.25] == 1


def test_finished_row_prefers_the_agents_duration_then_the_wall_time():
    assert mp.finished_row("SUCCEEDED", "A", {"duration_ms": 1500, "wall_s": 2.0, "downtime_ms": 40}) == \
        mp.FinishedRow("SUCCEEDED", "A", 1.5, 0.04)
    assert mp.finished_row("CANCELLED", None, {"wall_s": 2.0}) == mp.FinishedRow("CANCELLED", None, 2.0, None)
    assert mp.finished_row("FAILED", None, None) == mp.FinishedRow("FAILED", None, None, None)


def test_hosts_by_status_zero_copy_and_migrations_in_and_out():
    hosts = [{"name": "h1", "cluster": "c", "status": "UP", "zerocopy": "YES"},
             {"name": "h2", "cluster": "c", "status": "UP", "zerocopy": "NO"},
             {"name": "h3", "cluster": "c", "status": "DOWN", "zerocopy": "UNKNOWN"}]
    migrations = [record("a"), record("b", state="PENDING"), record("c", state="FAILED")]
    fams = mp.host_families(hosts, migrations)
    by_status = {dict(s.labels)["status"]: s.value for s in family(fams, "ferry_hosts").samples}
    assert by_status == {"UNKNOWN": 0, "UP": 2, "DOWN": 1, "PREPARING_FOR_MAINTENANCE": 0, "MAINTENANCE": 0}
    zc = {dict(s.labels)["host"]: dict(s.labels)["support"] for s in family(fams, "ferry_host_zerocopy_support").samples}
    assert zc == {"h1": "YES", "h2": "NO", "h3": "UNKNOWN"}
    flows = {(dict(s.labels)["host"], dict(s.labels)["direction"]): s.value
             for s in family(fams, "ferry_host_migrations_in_flight").samples}
    assert flows[("h1", "out")] == 2 and flows[("h2", "in")] == 2 and flows[("h1", "in")] == 0
    assert flows[("h3", "in")] == flows[("h3", "out")] == 0


def test_histogram_requires_nothing_but_counts_each_value_once_per_bound():
    buckets, count, total = mp.histogram([0.5, 1, 3], (1, 2, mp.INF))
    assert buckets == ((1, 2), (2, 2), (mp.INF, 3)) and count == 3 and total == 4.5


def test_missed_zero_copy_syncs_of_ended_migrations_are_summed_by_policy():
    rows = [mp.finished_row("SUCCEEDED", "A", {"duration_ms": 1000, "dirty_sync_missed_zero_copy": 3}),
            mp.finished_row("FAILED", "A", {"dirty_sync_missed_zero_copy": 2}),
            mp.finished_row("SUCCEEDED", "A", {"duration_ms": 1000}),            # not zero-copy: no count
            mp.finished_row("SUCCEEDED", "B", {"dirty_sync_missed_zero_copy": 0})]
    missed = family(mp.finished_families(rows), "ferry_vmi_migrations_dirty_sync_missed_zero_copy")
    assert missed.kind == "counter"
    assert {dict(s.labels)["policy"]: s.value for s in missed.samples} == {"A": 5, "B": 0}
    assert family(mp.finished_families(rows[2:3]), "ferry_vmi_migrations_dirty_sync_missed_zero_copy").samples == ()

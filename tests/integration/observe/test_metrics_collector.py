"""The collector's database read on SQLite and on a real PostgreSQL: the JSON fields it picks
out of finished migrations (policy name, duration, downtime, forecast) and the in-flight ones."""
from __future__ import annotations

from datetime import UTC, datetime

from ferry.engine.db import Database, upgrade_database
from ferry.engine.metrics_collector import EngineCollector, finished_rows


def fill(url: str) -> None:
    db = Database(url)
    try:
        with db.unit_of_work() as store:
            store.clusters.create("c")
            for i in (1, 2):
                store.hosts.add(f"h{i}", cluster="c", address=f"127.9.0.{i}")
            store.vms.add({"name": "vm1", "memory_mib": 512, "vcpus": 1, "kernel": "/k"}, cluster="c", host="h1")
            plan = {"policy": {"id": "p1", "name": "Very large VMs"}}
            done = store.migrations.create("vm1", source="h1", destination="h2", plan=plan)
            store.migrations.update(done.id, state="SUCCEEDED",
                                   result={"duration_ms": 12000, "downtime_ms": 80, "wall_s": 13.2})
            forecast = store.migrations.create("vm1", source="h1", destination="h2",
                                              plan={**plan, "forecast": {"outcome": "converge", "totalSeconds": 10}})
            store.migrations.update(forecast.id, state="SUCCEEDED", result={"duration_ms": 11000, "downtime_ms": 50})
            failed = store.migrations.create("vm1", source="h1", destination="h2", plan=None)
            store.migrations.update(failed.id, state="FAILED", result={"wall_s": 2.5})
            live = store.migrations.create("vm1", source="h1", destination="h2", plan=plan)
            store.migrations.update(live.id, state="RUNNING", started_at=datetime(2026, 12, 2, 5, tzinfo=UTC),
                                   figures={"data_total": 1000, "data_processed": 300, "data_remaining": 700})
    finally:
        db.dispose()


def test_finished_rows_pick_the_json_fields(database_url):
    upgrade_database(database_url)
    fill(database_url)
    db = Database(database_url)
    try:
        with db.unit_of_work() as store:
            rows = sorted(finished_rows(store.session), key=lambda r: (r.state, r.duration_s or 0))
    finally:
        db.dispose()
    assert [(r.state, r.policy, r.duration_s, r.downtime_s, r.forecast_s) for r in rows] == [
        ("FAILED", None, 2.5, None, None),
        ("SUCCEEDED", "Very large VMs", 11.0, 0.05, 10.0),
        ("SUCCEEDED", "Very large VMs", 12.0, 0.08, None),
    ]


def test_collector_families_from_the_database(database_url):
    upgrade_database(database_url)
    fill(database_url)
    db = Database(database_url)
    try:
        families = {f.name: f for f in EngineCollector(db).families()}
    finally:
        db.dispose()
    processed = families["ferry_vmi_migration_data_processed_bytes"].samples
    assert [s.value for s in processed] == [300]
    counts = {tuple(v for _, v in s.labels): s.value for s in families["ferry_vmi_migrations"].samples}
    assert counts == {("succeeded", "Very large VMs"): 2, ("failed", ""): 1}
    ratio = families["ferry_vmi_migration_forecast_ratio"].samples
    assert len(ratio) == 1 and ratio[0].count == 1 and abs(ratio[0].total - 1.1) < 1e-9
    flows = {tuple(v for _, v in s.labels): s.value for s in families["ferry_host_migrations_in_flight"].samples}
    assert flows[("h1", "out")] == 1 and flows[("h2", "in")] == 1

"""The host-pair throughput table and the kept pre-migration measurement, on SQLite and
PostgreSQL: a pair's history outlives the VMs that made it, and a migration accepted soon after
a forecast carries the forecast's measurement for its live ETA."""
from __future__ import annotations

import pytest

from ferry.common.errors import InvalidInput
from ferry.common.vmspec import VmSpec
from ferry.engine.db import Database, upgrade_database
from ferry.engine.services import migrations as migration_service
from ferry.engine.services.forecasts import pair_calibration
from ferry.engine.services.planning import plan_for_vm


@pytest.fixture
def db(upgraded_db):
    return upgraded_db


def populate(st) -> None:
    st.clusters.create("c1")
    st.hosts.add("h1", cluster="c1", address="127.0.0.2", link_speed_mbps=10000)
    st.hosts.add("h2", cluster="c1", address="127.0.0.3", link_speed_mbps=10000)
    for h in ("h1", "h2"):
        st.hosts.update(h, status="UP")
    st.vms.add(VmSpec(name="vm1", memory_mib=1024, vcpus=2, kernel="/k"), cluster="c1", host="h1")


def test_the_pairs_history_outlives_the_vm_and_calibrates_the_next_forecast(db):
    with db.unit_of_work() as st:
        populate(st)
        mig = st.migrations.create("vm1", source="h1", destination="h2", state="SUCCEEDED")
        for mibs in (600.0, 640.0, 620.0):
            st.throughput.add(source="h1", destination="h2", connections=0, cap_mibs=None, mibs=mibs,
                              migration_id=mig.id)
        st.throughput.add(source="h2", destination="h1", connections=0, cap_mibs=None, mibs=900.0,
                          migration_id=mig.id)
        st.throughput.add(source="h1", destination="h2", connections=0, cap_mibs=40, mibs=39.0,
                          migration_id=mig.id)        # bound by its own cap: says nothing of the pair
    with db.unit_of_work() as st:
        st.vms.update("vm1", host=None)
        st.vms.delete("vm1")                          # its migrations go with it ...
    with db.unit_of_work() as st:
        assert st.migrations.list() == []
        rows = st.throughput.list(source="h1", destination="h2")
        assert sorted(r["mibs"] for r in rows) == [39.0, 600.0, 620.0, 640.0]   # ... its throughput stays
        assert {r["migrationId"] for r in rows} == {mig.id}
        st.vms.add(VmSpec(name="vm2", memory_mib=1024, vcpus=2, kernel="/k"), cluster="c1", host="h1")
        plan = plan_for_vm(st, "vm2", to="h2")
        mibs, spread, n = pair_calibration(st, plan)
    assert (mibs, n) == (620.0, 3)                    # the median of the three uncapped h1 -> h2
    assert spread is not None and spread > 0


def test_a_migration_accepted_after_a_forecast_keeps_its_measurement(db, monkeypatch):
    kept = {"dirtyRateMiBs": 25.0, "touchedMiB": 460.0, "memoryMiB": 1024.0, "dirtyPattern": "random",
            "at": 1_000_000.0}
    with db.unit_of_work() as st:
        populate(st)
        st.vms.set_measured("vm1", kept)
    monkeypatch.setattr(migration_service.time, "time", lambda: 1_000_060.0)
    with db.unit_of_work() as st:
        _vm, record = migration_service.accept(st, "vm1", to="h2")
    assert record.plan["measured"] == kept
    with db.unit_of_work() as st:
        st.migrations.update(record.id, state="SUCCEEDED")
    monkeypatch.setattr(migration_service.time, "time", lambda: 1_000_000.0 + 3600)   # an hour later
    with db.unit_of_work() as st:
        _vm, later = migration_service.accept(st, "vm1", to="h2")
    assert "measured" not in later.plan


def test_a_measurement_must_be_an_object_checked_by_the_use_case_not_the_repository():
    # Repositories only persist (issue 10); services.forecasts checks with check_object first.
    from ferry.engine.validation import check_object
    with pytest.raises(InvalidInput) as err:
        check_object("measured", ["not", "an", "object"])
    assert err.value.field == "measured"
    assert check_object("measured", {"dirtyRateMibs": 4.0}) == {"dirtyRateMibs": 4.0}


def test_a_parallel_plan_without_its_own_samples_takes_the_one_connection_speed_for_its_final_copy(db):
    from dataclasses import replace

    from ferry.engine.services.forecasts import pair_final_floor

    with db.unit_of_work() as st:
        populate(st)
        mig = st.migrations.create("vm1", source="h1", destination="h2", state="SUCCEEDED")
        for mibs in (260.0, 280.0):
            st.throughput.add(source="h1", destination="h2", connections=0, cap_mibs=None, mibs=mibs,
                              migration_id=mig.id)
        plain = plan_for_vm(st, "vm1", to="h2")
        parallel = replace(plain, params=replace(plain.params, parallel=4))
        assert pair_final_floor(st, plain) is None                     # it has its own calibration
        assert pair_final_floor(st, parallel) == 270.0                 # the median of the plain ones
        assert pair_calibration(st, parallel)[0] is None               # never the passes' bandwidth
        st.throughput.add(source="h1", destination="h2", connections=4, cap_mibs=None, mibs=700.0,
                          migration_id=mig.id)
        assert pair_final_floor(st, parallel) is None                  # now it has samples of its own

"""Planning a drain from the inventory: every VM on the drained hosts gets a plan to a host that
stays, spread over them, with the same parameters a single request's plan would have."""
import pytest

from ferry.engine.db import Database, upgrade_database
from ferry.engine.services.bulk_planning import plan_hosts_empty
from ferry.engine.services.planning import plan_for_vm


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    upgrade_database(url)
    db = Database(url)
    with db.unit_of_work() as store:
        store.clusters.create("c")
        for i, free in ((1, 100_000), (2, 100_000), (3, 100_000), (4, 1000)):
            store.hosts.add(f"h{i}", cluster="c", address=f"127.0.0.{i + 1}", status="UP",
                            capabilities={"memFree": free}, link_speed_mbps=10_000)
        for j in range(6):
            store.vms.add({"name": f"vm{j}", "memory_mib": 2048, "vcpus": 2, "kernel": "/boot/vmlinuz"},
                          cluster="c", host="h1" if j < 4 else "h2")
    return db


def test_every_vm_on_the_drained_host_goes_to_a_host_that_stays_and_fits(db):
    with db.unit_of_work() as store:
        plans, stuck = plan_hosts_empty(store, ["h1"])
    assert stuck == []
    assert sorted(p.vm for p in plans) == ["vm0", "vm1", "vm2", "vm3"]
    assert {p.source for p in plans} == {"h1"}
    assert sorted(p.destination for p in plans) == ["h2", "h2", "h3", "h3"]  # h4 has no room for 2 GiB


def test_parameters_are_those_of_a_single_request_to_the_same_host(db):
    with db.unit_of_work() as store:
        plans, _ = plan_hosts_empty(store, ["h1"])
        for p in plans:
            single = plan_for_vm(store, p.vm, to=p.destination)
            assert p.params == single.params and p.notes == single.notes


def test_nowhere_to_go_is_reported_not_planned(db):
    with db.unit_of_work() as store:
        plans, stuck = plan_hosts_empty(store, ["h1", "h2", "h3"])
    assert plans == [] and sorted(stuck) == [f"vm{j}" for j in range(6)]

"""The narrow reads the engine makes at fleet scale (issue 18): the monitor's schedule and one
query for the VMs of many hosts give the same answers as the full reads they replace."""
import pytest

from ferry.engine.db import Database, upgrade_database
from ferry.engine.db.records import HostStatus


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    upgrade_database(url)
    db = Database(url)
    with db.unit_of_work() as store:
        store.clusters.create("c")
        store.hosts.add("h1", cluster="c", address="127.0.0.2", status="UP", capabilities={"memFree": 9})
        store.hosts.add("h2", cluster="c", address="127.0.0.3")
        store.hosts.add("h3", cluster="c", address="127.0.0.4", status="UP", capabilities={"memFree": 9})
        for j in range(6):
            store.vms.add({"name": f"vm{j}", "memory_mib": 512, "vcpus": 1, "kernel": "/boot/vmlinuz"},
                          cluster="c", host=("h1", "h2", "h3")[j % 3] if j < 5 else None)
    return db


def test_schedule_names_each_host_its_agent_status_and_whether_it_was_ever_refreshed(db):
    with db.unit_of_work() as store:
        full = {h.name: h for h in store.hosts.list()}
        schedule = store.hosts.schedule()
    assert [s.name for s in schedule] == ["h1", "h2", "h3"]
    for s in schedule:
        assert s.agent_url == full[s.name].agent_url and s.status is full[s.name].status
        assert s.refreshed is (full[s.name].capabilities_at is not None)
    assert [s.status for s in schedule] == [HostStatus.UP, HostStatus.UNKNOWN, HostStatus.UP]


def test_vms_on_hosts_is_the_union_of_the_per_host_lists_in_one_read(db):
    with db.unit_of_work() as store:
        one_by_one = sorted((v for h in ("h1", "h3") for v in store.vms.list(host=h)), key=lambda v: v.name)
        together = store.vms.on_hosts(["h1", "h3", "no-such-host"])
    assert [v.name for v in together] == ["vm0", "vm2", "vm3"]
    assert together == one_by_one        # same records: host and cluster names included


def test_a_vm_list_still_names_the_host_and_its_capabilities_load_after_it(db):
    with db.unit_of_work() as store:
        vms = store.vms.list(host="h1")
        assert {v.host for v in vms} == {"h1"} and {v.cluster for v in vms} == {"c"}
        assert store.hosts.get("h1").capabilities["memFree"] == 9   # name-only load, then the full row


def test_listing_vms_of_an_unknown_host_still_names_the_field(db):
    from ferry.common.errors import InvalidInput

    with db.unit_of_work() as store, pytest.raises(InvalidInput) as err:
        store.vms.list(host="nope")
    assert err.value.field == "host"

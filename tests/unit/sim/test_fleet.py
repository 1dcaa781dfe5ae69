"""A simulated fleet's layout: loopback addresses apart from the real lab's, stable VMs, inventory."""
import ipaddress

import pytest

from ferry.common.errors import InvalidInput
from ferry.sim import fleet


def test_addresses_are_loopback_unique_and_never_the_real_labs():
    plan = fleet.plan_fleet(2000, 0, lab=9, processes=4)
    addresses = [h.address for h in plan]
    assert len(set(addresses)) == 2000
    for a in addresses:
        ip = ipaddress.ip_address(a)
        assert ip.is_loopback
        assert not a.startswith("127.0.")  # the real lab's hosts are 127.0.L.x
    assert addresses[0] == "127.59.0.2" and addresses[250] == "127.59.1.2"


def test_labs_do_not_share_addresses():
    a = {h.address for h in fleet.plan_fleet(300, 0, lab=1, processes=1)}
    b = {h.address for h in fleet.plan_fleet(300, 0, lab=2, processes=1)}
    assert not a & b


def test_vms_spread_evenly_and_hosts_split_into_process_blocks():
    plan = fleet.plan_fleet(10, 45, lab=0, processes=3)
    assert sorted(len(h.vms) for h in plan) == [4] * 5 + [5] * 5
    assert [h.process for h in plan] == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert len({v.uuid for h in plan for v in h.vms}) == 45


def test_same_size_same_fleet():
    assert fleet.plan_fleet(5, 20, lab=3, processes=2) == fleet.plan_fleet(5, 20, lab=3, processes=2)


def test_vms_vary_in_size_and_dirty_rate():
    vms = [fleet.sim_vm(0, j) for j in range(48)]
    assert {v.memory_mib for v in vms} == {1024, 2048, 4096}
    assert len({v.dirty_rate_mibs for v in vms}) > 10
    assert all(v.touched_mib <= v.memory_mib for v in vms)


@pytest.mark.parametrize("kwargs, field", [({"hosts": 0}, "hosts"), ({"vms": -1}, "vms"),
                                           ({"processes": 0}, "processes"), ({"processes": 6}, "processes")])
def test_bad_sizes_name_the_field(kwargs, field):
    args = {"hosts": 5, "vms": 1, "processes": 1, **kwargs}
    with pytest.raises(InvalidInput) as err:
        fleet.plan_fleet(args["hosts"], args["vms"], lab=0, processes=args["processes"])
    assert err.value.field == field


def test_inventory_names_every_host_with_its_agent_url_and_every_vm_with_its_host():
    plan = fleet.plan_fleet(3, 7, lab=4, processes=1)
    inv = fleet.inventory(plan, lab=4)
    assert inv["cluster"] == "sim4"
    assert [h["agent_url"] for h in inv["hosts"]] == [f"https://{h.address}:54321/" for h in plan]
    placed = {v["name"]: v["host"] for v in inv["vms"]}
    assert placed == {v.name: h.name for h in plan for v in h.vms}

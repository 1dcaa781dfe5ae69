"""The host monitor's pure rules: host status from reachability, VM placement from getVMList."""
import time

from ferry.engine.db.records import HostStatus, VmRecord, VmStatus
from ferry.engine.monitor import MISSING_POLLS_BEFORE_DOWN, PlacementGuard, host_status_after, reconcile_vms


def vm(name, host=None, status=VmStatus.DOWN):
    return VmRecord(id=1, name=name, uuid=f"uuid-{name}", cluster="c", spec={"memory_mib": 512, "vcpus": 1},
                    host=host, status=status)


def test_host_status_follows_the_agent_but_maintenance_stays():
    assert host_status_after(HostStatus.UNKNOWN, True) is HostStatus.UP
    assert host_status_after(HostStatus.UP, False) is HostStatus.DOWN
    assert host_status_after(HostStatus.DOWN, True) is HostStatus.UP
    assert host_status_after(HostStatus.MAINTENANCE, False) is HostStatus.MAINTENANCE


def test_listed_vm_is_placed_on_the_host_with_the_agents_status():
    changes = reconcile_vms("h2", [{"vmID": "uuid-a", "status": "Up"}, {"vmID": "uuid-b", "status": "Paused"},
                                   {"vmID": "unknown-to-us", "status": "Up"}],
                            [vm("a", "h1", VmStatus.UP), vm("b"), vm("c", "h2", VmStatus.UP)], set(), {})
    assert [(c.vm, c.host, c.status) for c in changes] == [("a", "h2", VmStatus.UP), ("b", "h2", VmStatus.PAUSED)]


def test_vm_already_right_or_mid_migration_is_not_changed():
    listed = [{"vmID": "uuid-a", "status": "Up"}, {"vmID": "uuid-b", "status": "Migration Source"},
              {"vmID": "uuid-c", "status": "Down"}]
    assert reconcile_vms("h1", listed, [vm("a", "h1", VmStatus.UP), vm("b", "h1", VmStatus.UP),
                                        vm("c", "h1", VmStatus.UP)], set(), {}) == []


def test_missing_vm_goes_down_only_after_consecutive_polls():
    missing: dict = {}
    inventory = [vm("a", "h1", VmStatus.UP)]
    for _ in range(MISSING_POLLS_BEFORE_DOWN - 1):
        assert reconcile_vms("h1", [], inventory, set(), missing) == []
    [change] = reconcile_vms("h1", [], inventory, set(), missing)
    assert (change.vm, change.host, change.status) == ("a", None, VmStatus.DOWN)
    # seen again in between: the count starts over
    missing = {}
    reconcile_vms("h1", [], inventory, set(), missing)
    reconcile_vms("h1", [{"vmID": "uuid-a", "status": "Up"}], inventory, set(), missing)
    assert reconcile_vms("h1", [], inventory, set(), missing) == []


def test_skipped_vms_are_left_alone():
    assert reconcile_vms("h2", [{"vmID": "uuid-a", "status": "Up"}], [vm("a", "h1", VmStatus.UP)], {"a"}, {}) == []


def test_guard_protects_busy_vms_and_those_changed_after_the_sample():
    guard = PlacementGuard()
    before = time.time()
    with guard.busy("a"):
        assert guard.untouchable(before) == {"a"}
    after = time.time() + 0.001
    assert guard.untouchable(before) == {"a"}      # changed after the sample was taken
    assert guard.untouchable(after) == set()

"""The simulated libvirt connection: migrations move the guest, take the model's time, report
job stats and events, and leave the guest where it was when aborted or refused."""
import threading
import time

import libvirt
import pytest

from ferry.sim import hypervisor, wire
from ferry.sim.precopy import SimVm


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(hypervisor, "PREPARE_S", 0.01)
    monkeypatch.setattr(hypervisor, "CONFIRM_S", 0.01)
    monkeypatch.setattr(hypervisor, "SLICE_S", 0.01)


def pair(bandwidth=1000.0):
    router = wire.Router()
    src = hypervisor.SimConnection("a", "127.59.0.2", router=router, bandwidth_mibs=bandwidth)
    dst = hypervisor.SimConnection("b", "127.59.0.3", router=router, bandwidth_mibs=bandwidth)
    router.local.update({src.address: src, dst.address: dst})
    return src, dst


def events(conn):
    seen = []
    conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION,
                                lambda c, d, it, o: seen.append(("iteration", it)), None)
    conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                lambda c, d, ev, det, o: seen.append(("lifecycle", ev, det)), None)
    conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                lambda c, d, stats, o: seen.append(("completed", stats)), None)
    return seen


URI = "qemu+tls://127.59.0.3/system"
FLAGS = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER | libvirt.VIR_MIGRATE_PERSIST_DEST


def test_a_migration_moves_the_guest_and_takes_the_models_time():
    src, dst = pair()
    dom = src.add_vm(SimVm("vm1", "u1", memory_mib=1024, touched_mib=200, dirty_rate_mibs=0))
    src_events, dst_events = events(src), events(dst)
    t0 = time.monotonic()
    assert dom.migrateToURI3(URI, {libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 1000}, FLAGS) == 0
    took = time.monotonic() - t0
    assert 0.2 <= took < 1.5            # 200 MiB at 1000 MiB/s, plus the shortened fixed costs
    assert [d.name() for d in src.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)] == []
    moved = dst.lookupByUUIDString("u1")
    assert moved.state()[0] == libvirt.VIR_DOMAIN_RUNNING and moved.isPersistent()
    assert ("iteration", 1) in src_events
    completed = [e[1] for e in src_events if e[0] == "completed"]
    assert completed and completed[0]["data_processed"] == 200 << 20
    assert ("lifecycle", libvirt.VIR_DOMAIN_EVENT_RESUMED, libvirt.VIR_DOMAIN_EVENT_RESUMED_MIGRATED) in dst_events
    assert dom.jobStats()["type"] == libvirt.VIR_DOMAIN_JOB_NONE


def test_job_stats_while_running_show_progress():
    src, dst = pair(bandwidth=200.0)
    dom = src.add_vm(SimVm("vm1", "u1", memory_mib=1024, touched_mib=200, dirty_rate_mibs=0))
    t = threading.Thread(target=dom.migrateToURI3, args=(URI, {}, FLAGS))
    t.start()
    time.sleep(0.4)
    stats = dom.jobStats()
    t.join(5)
    assert stats["type"] == libvirt.VIR_DOMAIN_JOB_UNBOUNDED
    assert 0 < stats["data_remaining"] < 200 << 20
    assert stats["data_total"] == 1024 << 20 and stats["memory_bps"] == 200 << 20


def test_abort_keeps_the_guest_here_and_drops_the_destinations():
    src, dst = pair(bandwidth=50.0)
    dom = src.add_vm(SimVm("vm1", "u1", memory_mib=1024, touched_mib=500, dirty_rate_mibs=0))
    threading.Timer(0.2, dom.abortJob).start()
    with pytest.raises(libvirt.libvirtError, match="operation aborted"):
        dom.migrateToURI3(URI, {}, FLAGS)
    assert src.lookupByUUIDString("u1").state()[0] == libvirt.VIR_DOMAIN_RUNNING
    with pytest.raises(libvirt.libvirtError):
        dst.lookupByUUIDString("u1")


def test_a_raised_downtime_ends_a_migration_that_would_not_converge():
    src, dst = pair(bandwidth=100.0)
    dom = src.add_vm(SimVm("vm1", "u1", memory_mib=1024, touched_mib=100, dirty_rate_mibs=200,
                           dirty_pattern="linear"))
    threading.Timer(0.5, dom.migrateSetMaxDowntime, args=(5000,)).start()
    assert dom.migrateToURI3(URI, {}, FLAGS) == 0
    assert dst.lookupByUUIDString("u1").isActive()


def test_postcopy_switches_over_and_completes():
    src, dst = pair(bandwidth=100.0)
    dom = src.add_vm(SimVm("vm1", "u1", memory_mib=1024, touched_mib=100, dirty_rate_mibs=200,
                           dirty_pattern="linear"))
    seen = events(src)
    threading.Timer(0.3, dom.migrateStartPostCopy).start()
    assert dom.migrateToURI3(URI, {}, FLAGS) == 0
    assert ("lifecycle", libvirt.VIR_DOMAIN_EVENT_SUSPENDED, libvirt.VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY) in seen


def test_unknown_destination_fails_like_an_unreachable_libvirtd():
    src, _dst = pair()
    dom = src.add_vm(SimVm("vm1", "u1", memory_mib=1024, touched_mib=10))
    with pytest.raises(libvirt.libvirtError, match="unable to connect"):
        dom.migrateToURI3("qemu+tls://127.59.9.9/system", {}, FLAGS)
    assert dom.isActive()


def test_a_guest_already_running_at_the_destination_is_refused():
    src, dst = pair()
    dom = src.add_vm(SimVm("vm1", "u1", memory_mib=1024, touched_mib=10))
    dst.add_vm(SimVm("vm1", "u1", memory_mib=1024))
    with pytest.raises(libvirt.libvirtError, match="already active"):
        dom.migrateToURI3(URI, {}, FLAGS)
    assert dom.isActive()


def test_free_memory_counts_the_running_guests():
    src, _ = pair()
    src.memory_mib = 8192
    src.add_vm(SimVm("vm1", "u1", memory_mib=2048))
    assert src.getFreeMemory() == 6144 << 20

"""VM.getDirtyRate over the recording fake: mode choice, waiting, touched memory, bad input."""
import threading

import libvirt
import pytest

from ferry.agent import measure
from ferry.common.errors import InvalidInput
from ferry.common.jsonrpc import INVALID_PARAMS, JsonRpcError
from tests.unit.agent.fake_libvirt import FakeConnection, domain_xml, iterating_script
from tests.unit.agent.test_agent_api import VM, make_agent, rpc

RING_XML = ("<domain type='kvm'><name>vm1</name><uuid>" + VM + "</uuid><memory unit='MiB'>1024</memory>"
            "<vcpu>2</vcpu><features><kvm><dirty-ring state='on' size='4096'/></kvm></features></domain>")


@pytest.fixture
def no_wait(monkeypatch):
    waits = []
    monkeypatch.setattr(measure, "_sleep", waits.append)
    return waits


@pytest.fixture
def agent():
    agent, conn = make_agent()
    dom = conn.add_domain(domain_xml())
    dom.dirty_rate_mibs = 151
    return agent, conn, dom


@pytest.mark.parametrize("bad", [0, 61, -1, 1.5, "4", True, None, [4]])
def test_bad_seconds_is_invalid_params_naming_the_field(agent, no_wait, bad):
    a, conn, _ = agent
    with pytest.raises(JsonRpcError) as err:
        rpc(a, "VM.getDirtyRate", {"vmID": VM, "seconds": bad})
    assert err.value.code == INVALID_PARAMS and err.value.data["field"] == "seconds"
    assert not conn.named_calls("startDirtyRateCalc") and not no_wait


@pytest.mark.parametrize("good", [1, 4, 60])
def test_seconds_bounds(good):
    assert measure.parse_seconds(good) == good
    with pytest.raises(InvalidInput):
        measure.parse_seconds(good + 60)


def test_tcg_guest_is_page_sampled_for_the_window_and_corrected(agent, no_wait):
    a, conn, _ = agent
    answer = rpc(a, "VM.getDirtyRate", {"vmID": VM, "seconds": 2})
    assert conn.named_calls("startDirtyRateCalc") == [(VM, 2, libvirt.VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING)]
    assert no_wait[0] == 2      # slept the window before reading
    (_, stats, _flags), = [args for m, args in conn.calls if m == "domainListGetStats"]
    assert stats == libvirt.VIR_DOMAIN_STATS_DIRTYRATE
    assert answer["mode"] == "page-sampling" and answer["dirtyRateMiBs"] == 151
    est = answer["estimate"]
    # the lab's 151 MiB/s reading of a 200 MiB/s writer lies inside the corrected band
    assert est["lowMiBs"] < 151 < est["estimateMiBs"] <= 200 <= est["highMiBs"]
    assert answer["memoryMiB"] == 1024


def test_dirty_ring_is_used_where_the_domain_has_it():
    conn = FakeConnection()
    dom = conn.add_domain(RING_XML)
    dom.dirty_rate_mibs = 80
    answer = measure.get_dirty_rate(conn, libvirt, dom, 1, sleep=lambda s: None)
    assert conn.named_calls("startDirtyRateCalc") == [(VM, 1, libvirt.VIR_DOMAIN_DIRTYRATE_MODE_DIRTY_RING)]
    assert answer["mode"] == "dirty-ring"
    assert answer["estimate"]["lowMiBs"] < 80 < answer["estimate"]["highMiBs"]


def test_dirty_ring_refused_falls_back_to_page_sampling():
    conn = FakeConnection()
    dom = conn.add_domain(RING_XML)
    dom.refuse_dirty_modes = (libvirt.VIR_DOMAIN_DIRTYRATE_MODE_DIRTY_RING,)
    answer = measure.get_dirty_rate(conn, libvirt, dom, 1, sleep=lambda s: None)
    assert [c[2] for c in conn.named_calls("startDirtyRateCalc")] == [
        libvirt.VIR_DOMAIN_DIRTYRATE_MODE_DIRTY_RING, libvirt.VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING]
    assert answer["mode"] == "page-sampling"


def test_dirty_ring_needs_a_kvm_domain():
    assert measure.dirty_ring_configured(RING_XML)
    assert not measure.dirty_ring_configured(RING_XML.replace("type='kvm'", "type='qemu'"))
    assert not measure.dirty_ring_configured(RING_XML.replace("state='on'", "state='off'"))
    assert not measure.dirty_ring_configured("<not xml")


def test_touched_memory_from_qemus_vmrss(tmp_path):
    conn = FakeConnection()
    dom = conn.add_domain(domain_xml())
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "vm1.pid").write_text("4242\n")
    (tmp_path / "proc" / "4242").mkdir(parents=True)
    (tmp_path / "proc" / "4242" / "status").write_text("Name:\tqemu\nVmRSS:\t  409600 kB\n")
    dom.memory_stats = {"rss": 1}   # not used when VmRSS is there
    assert measure.touched_memory(libvirt, dom, 1024, (str(tmp_path / "run"),), str(tmp_path / "proc")) == (
        400.0, "qemu-vmrss")


SMAPS = """7fefc3e00000-7fefe3e00000 rw-p 00000000 00:00 0
Size:             {ram} kB
Rss:              360448 kB
7fefe4000000-7ff023fff000 rwxp 00000000 00:00 0
Size:            1048572 kB
Rss:               47104 kB
"""


def test_touched_memory_is_the_guest_ram_mappings_rss_not_qemus_own(tmp_path):
    """The lab's 512 MiB guest: VmRSS 456 MiB, its RAM mapping 352 MiB, TCG's code buffer 46."""
    conn = FakeConnection()
    dom = conn.add_domain(domain_xml())
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "vm1.pid").write_text("4242\n")
    (tmp_path / "proc" / "4242").mkdir(parents=True)
    (tmp_path / "proc" / "4242" / "status").write_text("Name:\tqemu\nVmRSS:\t  467128 kB\n")
    (tmp_path / "proc" / "4242" / "smaps").write_text(SMAPS.format(ram=524288))
    args = ((str(tmp_path / "run"),), str(tmp_path / "proc"))
    assert measure.touched_memory(libvirt, dom, 512, *args) == (352.0, "qemu-guest-ram-rss")
    # no mapping of exactly the guest's size (or two of them): the whole resident set
    assert measure.touched_memory(libvirt, dom, 1024, *args) == (pytest.approx(456.18, abs=0.01), "qemu-vmrss")
    (tmp_path / "proc" / "4242" / "smaps").write_text(SMAPS.format(ram=524288) * 2)
    assert measure.touched_memory(libvirt, dom, 512, *args)[1] == "qemu-vmrss"


def test_touched_memory_falls_back_to_libvirts_rss_and_is_capped_at_memory(tmp_path):
    conn = FakeConnection()
    dom = conn.add_domain(domain_xml())
    dom.memory_stats = {"rss": 300 * 1024}
    assert measure.touched_memory(libvirt, dom, 1024, (str(tmp_path),)) == (300.0, "libvirt-memory-stats")
    dom.memory_stats = {"rss": 2000 * 1024}    # QEMU's own memory on top of a full guest
    assert measure.touched_memory(libvirt, dom, 1024, (str(tmp_path),))[0] == 1024
    dom.memory_stats = {}
    assert measure.touched_memory(libvirt, dom, 1024, (str(tmp_path),)) == (None, None)


def test_a_migrating_vm_is_not_measured(no_wait):
    from tests.unit.agent.test_agent_api import Direct
    dst, _ = make_agent(FakeConnection("fake-h2"))
    src, conn = make_agent(destination=lambda address: Direct(dst))
    dom = conn.add_domain(domain_xml())
    release = threading.Event()
    inner = iterating_script([1, 2])
    dom.migration_script = lambda d: (release.wait(5), inner(d))
    rpc(src, "VM.migrate", {"vmID": VM, "params": {"dst": "h2:54321"}})
    try:
        with pytest.raises(JsonRpcError) as err:
            rpc(src, "VM.getDirtyRate", {"vmID": VM, "seconds": 1})
        assert err.value.name == "migrationInProgress" and "2-3x" in err.value.message
        assert not conn.named_calls("startDirtyRateCalc")
    finally:
        release.set()
        src.jobs[VM].wait(5)


def test_unknown_or_stopped_vm(agent, no_wait):
    a, _conn, dom = agent
    with pytest.raises(JsonRpcError) as err:
        rpc(a, "VM.getDirtyRate", {"vmID": "nope", "seconds": 1})
    assert err.value.name == "noVM"
    dom.running = False
    with pytest.raises(JsonRpcError) as err:
        rpc(a, "VM.getDirtyRate", {"vmID": VM, "seconds": 1})
    assert err.value.name == "vmNotRunning"


def test_no_result_within_the_grace_is_an_error_not_a_hang():
    conn = FakeConnection()
    dom = conn.add_domain(domain_xml())
    dom.startDirtyRateCalc = lambda secs, flags: 0      # QEMU never reports it measured
    t = [0.0]

    def sleep(s):
        t[0] += s
    with pytest.raises(JsonRpcError) as err:
        measure.get_dirty_rate(conn, libvirt, dom, 2, sleep=sleep, clock=lambda: t[0])
    assert "no result" in err.value.message
    assert t[0] <= 2 + measure.RESULT_GRACE_S + 2 * measure.POLL_S


def test_other_verbs_answer_while_a_measurement_waits_and_a_second_one_is_refused(agent, monkeypatch):
    a, _conn, _dom = agent
    entered, release = threading.Event(), threading.Event()

    def slow(_seconds):
        entered.set()
        release.wait(5)
    monkeypatch.setattr(measure, "_sleep", slow)
    result = {}
    worker = threading.Thread(target=lambda: result.update(rpc(a, "VM.getDirtyRate", {"vmID": VM, "seconds": 30})))
    worker.start()
    try:
        assert entered.wait(5)
        assert rpc(a, "VM.getStats", {"vmID": VM})["status"] == "Up"
        assert rpc(a, "Host.getStats", {})["vmCount"] == 1
        with pytest.raises(JsonRpcError) as err:
            rpc(a, "VM.getDirtyRate", {"vmID": VM, "seconds": 1})
        assert "already running" in err.value.message
    finally:
        release.set()
        worker.join(5)
    assert result["dirtyRateMiBs"] == 151

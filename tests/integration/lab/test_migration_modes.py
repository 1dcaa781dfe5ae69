"""A dirtying 1 GiB guest live-migrates between lab hosts with libvirt in each mode, intact.

This is the lab's own acceptance test, so it drives libvirt-python directly (the agent's
migration verb is tested elsewhere). Timings are printed for the record (run with -s).
"""
from __future__ import annotations

import json
import threading
import time

import pytest

libvirt = pytest.importorskip("libvirt")
import libvirt_qemu  # noqa: E402  (part of libvirt-python)

pytestmark = pytest.mark.lab

BASE_FLAGS = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER | libvirt.VIR_MIGRATE_ABORT_ON_ERROR
MODES = {
    "plain": (0, {}),
    "parallel4": (libvirt.VIR_MIGRATE_PARALLEL, {libvirt.VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS: 4}),
    # Bandwidth capped (MiB/s) so the migration lasts a few seconds and the test can watch
    # QEMU's capabilities while it runs.
    "zerocopy4": (libvirt.VIR_MIGRATE_PARALLEL | libvirt.VIR_MIGRATE_ZEROCOPY,
                  {libvirt.VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS: 4,
                   libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 150}),
}


def migration_capabilities(dom) -> dict[str, bool]:
    out = libvirt_qemu.qemuMonitorCommand(dom, '{"execute":"query-migrate-capabilities"}', 0)
    return {c["capability"]: c["state"] for c in json.loads(out)["return"]}


def migrate(lab, name: str, src: int, dst: int, flags: int, params: dict,
            watch_caps: bool = False) -> dict:
    """Live-migrate `name` from host src to host dst; returns timings and what was seen."""
    src_conn, dst_conn = lab.connect(src), lab.connect(dst)
    try:
        dom = src_conn.lookupByName(name)
        result: dict = {"caps_seen": []}

        def run():
            t0 = time.monotonic()
            try:
                dom.migrateToURI3(lab.host(dst).uri, params, BASE_FLAGS | flags)
            except libvirt.libvirtError as exc:
                result["error"] = str(exc)
            result["total_s"] = time.monotonic() - t0

        worker = threading.Thread(target=run)
        worker.start()
        while worker.is_alive() and watch_caps:
            try:
                result["caps_seen"].append(migration_capabilities(dom))
            except libvirt.libvirtError:
                pass  # before the job starts / after the domain left
            worker.join(0.25)
        worker.join()
        if "error" not in result:
            stats = dst_conn.lookupByName(name).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
            result["downtime_ms"] = stats.get("downtime")
            result["mib_s"] = stats.get("memory_bps", 0) / 2**20
        return result
    finally:
        src_conn.close()
        dst_conn.close()


@pytest.mark.parametrize("mode", list(MODES))
def test_dirtying_guest_migrates_intact(lab, lab_guest, mode):
    flags, params = MODES[mode]
    guest = lab_guest(host=1, memory_mib=1024, fill_mib=850, dirty_mib_s=32)
    before = lab.verify(guest.name, host=1)
    assert before.intact, before.reasons

    result = migrate(lab, guest.name, 1, 2, flags, params, watch_caps=(mode == "zerocopy4"))
    assert "error" not in result, result.get("error")
    assert lab.find_vm(guest.name) == lab.host(2)

    report = lab.verify(guest.name)
    print(f"\n[lab] {mode}: boot {guest.boot_seconds:.1f} s, migration {result['total_s']:.2f} s, "
          f"downtime {result['downtime_ms']} ms, {result['mib_s']:.0f} MiB/s, "
          f"full scan {report.scan and report.scan['ms']} ms")
    assert report.host == lab.host(2).name
    assert report.intact, report.reasons
    assert report.writes > before.writes  # it kept dirtying through the migration
    if mode == "zerocopy4":
        assert any(c.get("zero-copy-send") for c in result["caps_seen"]), result["caps_seen"][-3:]
        assert all(c.get("multifd") for c in result["caps_seen"] if c.get("zero-copy-send"))


def test_verify_detects_a_guest_that_restarted_instead_of_migrating(lab, lab_guest):
    """A VM whose memory was not carried over (fresh boot on the destination) is not intact."""
    guest = lab_guest(host=1, memory_mib=256, fill_mib=64, dirty_mib_s=4)
    assert lab.verify(guest.name).intact
    # "Migrate" by destroying it on host 1 and starting the same spec on host 2: same name,
    # same console log path, but fresh memory.
    from ferry.common.domain_xml import build_domain_xml

    src = lab.connect(1)
    src.lookupByName(guest.name).destroy()
    src.close()
    dst = lab.connect(2)
    dst.createXML(build_domain_xml(guest.spec), 0)
    dst.close()
    log = lab.console_log(2, guest.name)
    deadline = time.monotonic() + 120
    while "FERRY HB" not in (log.read_text(errors="replace") if log.exists() else ""):
        assert time.monotonic() < deadline, "restarted guest gave no heartbeat"
        time.sleep(0.5)
    report = lab.verify(guest.name, host=2)
    assert not report.intact
    assert not {c.name: c.ok for c in report.checks}["single_run"]

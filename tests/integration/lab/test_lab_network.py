"""The lab network behaves like a real one: a cut host's migration stream stops while its agent
still reaches its own libvirtd, restore resumes it, and `lab link --rate` really limits what
crosses a host's link (iperf3 and a live migration, with and without the limit; run with -s to
see the numbers). Also: `lab verify` judges the running copy of a VM, not a paused incoming
copy or a shut-off definition left elsewhere.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

libvirt = pytest.importorskip("libvirt")

from ferry.common.domain_xml import build_domain_xml  # noqa: E402
from ferry.common.errors import InvalidInput  # noqa: E402
from ferry.common.jsonrpc import JsonRpcClient, JsonRpcError  # noqa: E402
from ferry.lab.link import LinkShape  # noqa: E402
from ferry.lab.network import netns_exec  # noqa: E402
from ferry.pki import engine_client_tls  # noqa: E402

pytestmark = pytest.mark.lab

FLAGS = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER | libvirt.VIR_MIGRATE_ABORT_ON_ERROR
MIB = 1 << 20

# Calls the agent from inside its own host (its own network namespace), as the engine would
# if it sat on that host: prints the answers of two verbs that go to libvirt.
AGENT_CALL = """
import json, sys, time
from ferry.common.jsonrpc import JsonRpcClient
from ferry.pki import engine_client_tls
client = JsonRpcClient(sys.argv[1], timeout=5, tls=engine_client_tls())
t0 = time.monotonic()
caps = client.call("Host.getCapabilities", {})
vms = client.call("Host.getVMList", {})
print(json.dumps({"s": time.monotonic() - t0, "libvirt": caps.get("libvirtVersion"), "vms": vms}))
"""


def agent_from_inside(lab, host) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = lab.run_in_host(host, [sys.executable, "-c", AGENT_CALL, lab.host(host).agent_url],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-800:]
    return json.loads(out)


def start_migration(lab, name: str, src: int, dst: int, params: dict) -> tuple[threading.Thread, dict]:
    """Live-migrate in a thread, driven through the source's local socket (as its agent does),
    so cutting the source's network does not cut the caller."""
    result: dict = {}

    def run():
        conn = lab.connect(src, local=True)
        try:
            t0 = time.monotonic()
            conn.lookupByName(name).migrateToURI3(lab.host(dst).uri, params, FLAGS)
            result["total_s"] = time.monotonic() - t0
        except libvirt.libvirtError as exc:
            result["error"] = str(exc)
        finally:
            conn.close()

    worker = threading.Thread(target=run)
    worker.start()
    return worker, result


def processed(dom) -> int:
    """Bytes the source's migration job has sent so far (0 before it starts)."""
    try:
        return int(dom.jobStats().get("memory_processed", 0))
    except libvirt.libvirtError:
        return 0


def test_cut_source_stops_its_migration_stream_while_its_agent_answers_locally_and_restore_resumes(
        lab, lab_guest):
    guest = lab_guest(host=1, memory_mib=512, fill_mib=256, dirty_mib_s=4)
    src = lab.connect(1, local=True)
    try:
        dom = src.lookupByName(guest.name)
        worker, result = start_migration(lab, guest.name, 1, 2, {libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 16})
        deadline = time.monotonic() + 60
        while processed(dom) < 8 * MIB and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processed(dom) >= 8 * MIB, f"the migration did not start: {result}"
        before0 = processed(dom)
        time.sleep(2)
        flowing = processed(dom) - before0

        lab.cut_off(1)
        try:
            time.sleep(2)  # let what sat in the socket buffers drain into nothing
            cut0 = processed(dom)
            answer = agent_from_inside(lab, 1)  # the agent reaches its own libvirtd locally
            with pytest.raises(JsonRpcError):    # ... while the engine's side cannot reach it
                JsonRpcClient(lab.host(1).agent_url, timeout=2,
                              tls=engine_client_tls()).call("Host.getCapabilities", {})
            time.sleep(max(0.0, 4 - answer["s"]))
            during = processed(dom) - cut0
            assert worker.is_alive(), f"the migration ended during the cut: {result}"
        finally:
            lab.restore(1)
        restored_at, stalled_at = time.monotonic(), processed(dom)
        while worker.is_alive() and processed(dom) == stalled_at and time.monotonic() < restored_at + 60:
            time.sleep(0.1)
        resumed_s = time.monotonic() - restored_at
        print(f"\nmigration stream: {flowing / MIB:.1f} MiB in 2 s before the cut, "
              f"{during / MIB:.2f} MiB in the 4 s after the first 2 s of the cut, moving again "
              f"{resumed_s:.1f} s after restore; agent answered from inside in {answer['s']:.3f} s")
        assert resumed_s < 30, resumed_s  # TCP's retransmission backoff, then on
        assert flowing >= 16 * MIB, flowing         # ~16 MiB/s capped
        assert during < 512 * 1024, during           # no progress while the cable is out
        assert answer["libvirt"] and guest.name in json.dumps(answer["vms"])

        worker.join(120)
        assert not worker.is_alive() and "error" not in result, result
    finally:
        src.close()
    assert lab.find_vm(guest.name) == lab.host(2)
    report = lab.verify(guest.name)
    assert report.intact, report.reasons


def iperf(lab, server: int, client: int, seconds: float = 2.0) -> dict:
    """Received Mbit/s and the sender's TCP retransmissions of one iperf3 run between hosts."""
    srv = lab.run_in_host(server, ["iperf3", "-s", "-1", "-B", lab.host(server).address],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        argv = ["iperf3", "-J", "-c", lab.host(server).address, "-t", str(seconds)]
        out = subprocess.run(netns_exec(lab.host(client), argv), capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr or out.stdout[-500:]
        end = json.loads(out.stdout)["end"]
        return {"mbit": end["sum_received"]["bits_per_second"] / 1e6,
                "retransmits": end["sum_sent"].get("retransmits", 0)}
    finally:
        srv.wait(10)


def migrate_mbit(lab, name: str, src: int, dst: int) -> float:
    """Live-migrate and return the stream's throughput (Mbit/s): memory sent over the job's
    network time, from the completed job's statistics on the destination."""
    worker, result = start_migration(lab, name, src, dst, {})
    worker.join(300)
    assert "error" not in result, result
    conn = lab.connect(dst, local=True)
    try:
        stats = conn.lookupByName(name).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
    finally:
        conn.close()
    return stats["memory_processed"] * 8 / (stats["time_elapsed_net"] / 1000) / 1e6


@pytest.mark.skipif(shutil.which("iperf3") is None, reason="iperf3 is not installed (scripts/install-system.sh)")
def test_lab_link_rate_limits_iperf3_and_a_live_migration(lab, lab_guest):
    rate_mbit = 100
    guest = lab_guest(host=2, memory_mib=512, fill_mib=32)
    free = iperf(lab, 2, 3)["mbit"]
    free_mig = migrate_mbit(lab, guest.name, 2, 3)
    cli = subprocess.run([sys.executable, "-m", "ferry", "lab", "--lab-id", str(lab.lab_id), "link", "3",
                          "--rate", f"{rate_mbit}mbit"], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    try:
        assert lab.status()["hosts"][2]["shape"] == f"rate {rate_mbit}mbit"
        shaped = iperf(lab, 2, 3)["mbit"]
        back = iperf(lab, 3, 2)["mbit"]  # both directions of the link are shaped
        shaped_mig = migrate_mbit(lab, guest.name, 3, 2)  # out of the shaped host
    finally:
        lab.link(3, LinkShape())
    assert lab.status()["hosts"][2]["shape"] == "unshaped"
    print(f"\nrate {rate_mbit}mbit on h3's link: iperf3 h3->h2 {free:.0f} -> {shaped:.0f} Mbit/s "
          f"(ratio {shaped / free:.3f}), h2->h3 shaped {back:.0f} Mbit/s; live migration stream "
          f"{free_mig:.0f} -> {shaped_mig:.0f} Mbit/s (ratio {shaped_mig / free_mig:.3f})")
    assert 0.6 * rate_mbit <= shaped <= 1.1 * rate_mbit, shaped
    assert 0.6 * rate_mbit <= back <= 1.1 * rate_mbit, back
    assert free >= 3 * shaped, (free, shaped)
    assert shaped_mig <= 1.1 * rate_mbit, shaped_mig
    assert free_mig >= 1.5 * shaped_mig, (free_mig, shaped_mig)
    assert lab.verify(guest.name).intact


def test_lab_link_loss_drops_packets_and_delay_needs_netem(lab):
    clean = iperf(lab, 1, 2)
    lab.link(2, LinkShape.parse(loss="5%"))
    try:
        assert lab.status()["hosts"][1]["shape"] == "loss 5%"
        lossy = iperf(lab, 1, 2)
    finally:
        lab.link(2, LinkShape())
    print(f"\nloss 5% on h2's link: iperf3 {clean['mbit']:.0f} -> {lossy['mbit']:.0f} Mbit/s, "
          f"retransmissions {clean['retransmits']} -> {lossy['retransmits']}")
    # The share of packets sent again (retransmissions per Mbit moved, both runs equally long):
    # a clean link on a loaded machine retransmits too, in proportion to what it moves.
    def share(run):
        return run["retransmits"] / max(run["mbit"], 1.0)

    assert lossy["retransmits"] > 200 and share(lossy) > 10 * share(clean), (clean, lossy)
    assert lossy["mbit"] < clean["mbit"] / 2, (clean, lossy)
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert f"{lab.host(2).veth}_loss" not in tables  # clearing removed the machine-side rule
    # Delay needs the kernel's netem qdisc: with it the link is delayed, without it the lab
    # says so, naming the field, and leaves the link unshaped.
    try:
        lab.link(2, LinkShape.parse(delay="1ms"))
    except InvalidInput as exc:
        assert exc.field == "delay" and "netem" in exc.reason
    else:
        try:
            assert connect_ms(lab, 1, lab.host(2).address) >= 1.8  # 1 ms each way on h2's link
        finally:
            lab.link(2, LinkShape())
    assert lab.status()["hosts"][1]["shape"] == "unshaped"


CONNECT_MS = """
import socket, sys, time
times = []
for _ in range(5):
    t0 = time.perf_counter(); socket.create_connection((sys.argv[1], 16509), timeout=5).close()
    times.append((time.perf_counter() - t0) * 1000)
print(sorted(times)[2])
"""


def connect_ms(lab, host: int, address: str) -> float:
    """Median TCP connect time (one round trip) from inside `host` to libvirtd at `address`."""
    proc = lab.run_in_host(host, [sys.executable, "-c", CONNECT_MS, address], stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=30)
    return float(out)


def test_verify_judges_the_running_copy_not_a_paused_incoming_copy_or_a_shut_off_definition(lab, lab_guest):
    guest = lab_guest(host=1, memory_mib=256, fill_mib=32, dirty_mib_s=4)
    worker, result = start_migration(lab, guest.name, 1, 3, {})
    worker.join(120)
    assert "error" not in result, result
    xml = build_domain_xml(guest.spec)
    h1, h2 = lab.connect(1, local=True), lab.connect(2, local=True)
    try:
        h1.defineXML(xml)                                   # a shut-off definition on the former source
        h2.createXML(xml, libvirt.VIR_DOMAIN_START_PAUSED)  # a paused copy, as an incoming one is
        states = {c.host: c.state for c in lab.copies(guest.name)}
        assert states == {lab.host(1).name: "shutoff", lab.host(2).name: "paused", lab.host(3).name: "running"}
        # Host order would meet the shut-off copy first and the paused one second.
        assert lab.find_vm(guest.name) == lab.host(3)
        report = lab.verify(guest.name)
        assert report.host == lab.host(3).name and report.intact, report.reasons
        # Asked to judge the paused copy, verify says what it is.
        paused = lab.verify(guest.name, host=2, timeout=5)
        assert not paused.intact and "paused" in paused.reasons[0]
    finally:
        h1.close()
        h2.close()
    assert sorted(lab.destroy_guest(guest.name)) == [lab.host(i).name for i in (1, 2, 3)]

"""Bare virsh with exactly the agent's flags, and iperf3 commands and reports."""
from __future__ import annotations

import json

import pytest

from ferry.bench.drivers import agent_migrate_params, lab_flags
from ferry.bench.raw_tcp import client_command, parse_client_json, port_for_lab, server_command
from ferry.bench.virsh_baseline import virsh_migrate_command
from ferry.common.errors import OperationFailed
from ferry.lab.plan import LabPlan
from ferry.protocol.flags import MigrationFlags, build_migration_flags

PLAN = LabPlan(4)
H1, H2 = PLAN.host(1), PLAN.host(2)


def test_virsh_command_for_zero_copy_parallel_carries_the_agents_flags():
    flags = lab_flags(H2, {"maxBandwidth": 0, "parallel": 4, "zerocopy": True})
    assert flags.names == ("VIR_MIGRATE_LIVE", "VIR_MIGRATE_PEER2PEER", "VIR_MIGRATE_PERSIST_DEST",
                           "VIR_MIGRATE_PARALLEL", "VIR_MIGRATE_ZEROCOPY")
    argv = virsh_migrate_command("vm1", H1.uri, flags)
    assert argv == ["virsh", "-q", "-c", "qemu+tcp://198.18.4.2/system", "migrate", "--live", "--p2p", "--persistent",
                    "--parallel", "--zerocopy", "--migrateuri", "tcp://198.18.4.3", "--parallel-connections", "4",
                    "vm1", "qemu+tcp://198.18.4.3/system"]


def test_plain_migration_with_a_cap_and_policy_flags():
    flags = build_migration_flags(agent_migrate_params(H2, {"maxBandwidth": 40, "autoConverge": True,
                                                            "compressed": True, "abortOnError": True}),
                                  libvirt_transport="tcp")
    argv = virsh_migrate_command("vm1", H1.uri, flags)
    for opt in ("--auto-converge", "--compressed", "--abort-on-error"):
        assert opt in argv
    assert argv[argv.index("--bandwidth") + 1] == "40"


def test_every_flag_the_builder_can_set_has_a_virsh_option():
    flags = build_migration_flags({"dst": "h2", "tunneled": True, "parallel": 2, "zerocopy": True,
                                   "encrypted": True, "compressed": True, "autoConverge": True,
                                   "abortOnError": True, "maxBandwidth": 5,
                                   "convergenceSchedule": {"init": [], "stalling": [
                                       {"limit": 1, "action": {"name": "postcopy", "params": []}}]}})
    argv = virsh_migrate_command("vm", "qemu+tcp://h1/system", flags)
    assert "--tunnelled" in argv and "--postcopy" in argv and "--tls" in argv
    assert argv[argv.index("--tls-destination") + 1] == "h2"


def test_destination_xml_is_left_to_libvirt_but_unknown_parameters_are_refused():
    flags = MigrationFlags(("VIR_MIGRATE_LIVE",), {"destination_xml": "<domain/>"}, "qemu+tcp://h2/system")
    assert "<domain/>" not in virsh_migrate_command("vm", "qemu+tcp://h1/system", flags)
    with pytest.raises(ValueError, match="compression.level"):
        virsh_migrate_command("vm", "u", MigrationFlags((), {"compression.level": 1}, "d"))
    with pytest.raises(ValueError, match="VIR_MIGRATE_NON_SHARED_DISK"):
        virsh_migrate_command("vm", "u", MigrationFlags(("VIR_MIGRATE_NON_SHARED_DISK",), {}, "d"))


def test_iperf_commands_bind_both_lab_addresses():
    assert server_command("127.0.4.3", 5204) == ["iperf3", "-s", "-1", "-B", "127.0.4.3", "-p", "5204"]
    assert client_command("127.0.4.2", "127.0.4.3", 5204, 4, 3.0) == [
        "iperf3", "-c", "127.0.4.3", "-B", "127.0.4.2", "-p", "5204", "-P", "4", "-t", "3", "--json"]
    assert port_for_lab(4) != port_for_lab(0)
    with pytest.raises(ValueError):
        client_command("a", "b", 5201, 0, 3)


def test_iperf_report_parsing():
    report = {"end": {"sum_received": {"bits_per_second": 8 * 2**20 * 2600.0},
                      "cpu_utilization_percent": {"host_total": 42.1, "remote_total": 45.0}}}
    raw = parse_client_json(json.dumps(report), 4, 3.0)
    assert raw.received_mib_s == pytest.approx(2600.0)
    assert (raw.sender_cpu_pct, raw.receiver_cpu_pct) == (42.1, 45.0)
    with pytest.raises(OperationFailed, match="Connection refused"):
        parse_client_json(json.dumps({"error": "unable to connect to server: Connection refused"}), 1, 3)
    with pytest.raises(OperationFailed, match="no JSON"):
        parse_client_json("iperf3: error", 1, 3)
    with pytest.raises(OperationFailed, match="sum_received"):
        parse_client_json(json.dumps({"end": {}}), 1, 3)


class _Lab:
    def __init__(self, urls):
        self.urls = urls

    def status(self):
        return {"hosts": [{"name": n, "agent": {"url": u}} for n, u in self.urls.items()] + [{"name": "x", "agent": None}]}


def test_lab_agents_in_tls_and_dev_mode_and_virsh_follows_the_transport():
    from ferry.bench.drivers import lab_agents

    urls, transport = lab_agents(_Lab({"ferry4-h1": "https://127.0.4.2:54321/", "ferry4-h2": "https://127.0.4.3:54321/"}))
    assert transport == "tls" and urls["ferry4-h2"] == "https://127.0.4.3:54321/"
    assert lab_agents(_Lab({"ferry4-h1": "http://127.0.4.2:54321/"}))[1] == "tcp"
    argv = virsh_migrate_command("vm1", H1.uri, lab_flags(H2, {"parallel": 2}, transport="tls"))
    assert argv[-1] == "qemu+tls://198.18.4.3/system" and argv[3] == "qemu+tcp://198.18.4.2/system"


def test_iperf_ends_run_behind_their_prefixes(monkeypatch):
    """Each iperf3 end runs inside the lab host holding its address (the lab's network namespaces)."""
    from ferry.bench import raw_tcp

    seen: list[list[str]] = []

    class Server:
        def __init__(self, argv, **_):
            seen.append(argv)

        def poll(self):
            return 0

    class Done:
        returncode, stderr = 0, ""
        stdout = '{"end": {"sum_received": {"bits_per_second": 8388608}}}'

    monkeypatch.setattr(raw_tcp.subprocess, "Popen", Server)
    monkeypatch.setattr(raw_tcp.subprocess, "run", lambda argv, **_: seen.append(argv) or Done())
    raw = raw_tcp.measure(H1.address, H2.address, 1, seconds=1, server_prefix=["in", "h2"], client_prefix=["in", "h1"])
    assert seen[0][:3] == ["in", "h2", "iperf3"] and seen[1][:3] == ["in", "h1", "iperf3"]
    assert raw.received_mib_s == 1.0

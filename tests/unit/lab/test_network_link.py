"""The lab network's commands, link-shape parsing and tc/nft building, `ferry lab link` input."""
from pathlib import Path

import pytest
from click.testing import CliRunner

from ferry.cli.main import cli
from ferry.common.errors import InvalidInput
from ferry.lab import network
from ferry.lab.link import LinkShape, loss_rulesets, parse_delay, parse_loss, parse_rate, qdisc_args, shape_commands
from ferry.lab.plan import LabPlan

ROOT = Path("/r")
PLAN = LabPlan(6, ROOT)
H2 = PLAN.host(2)


# ---- network plan ----------------------------------------------------------------------------
def test_bridge_holds_the_machines_address_and_a_guard_route_comes_first():
    cmds = network.bridge_up_commands(PLAN)
    # The guard is in place before any lab address is routed anywhere.
    assert cmds[0] == ["ip", "route", "replace", "unreachable", "198.18.6.0/24", "metric", "4242"]
    assert ["ip", "addr", "add", "198.18.6.1/24", "dev", "ferry6br"] in cmds
    assert cmds[-1] == ["ip", "link", "set", "ferry6br", "up"]


def test_host_gets_a_namespace_a_bridge_port_and_its_address_inside_with_no_default_route():
    cmds = network.host_up_commands(PLAN, H2)
    assert cmds[0] == ["ip", "netns", "add", "ferry6-h2"]
    assert ["ip", "link", "add", "ferry6h2", "type", "veth", "peer", "name", "eth0", "netns", "ferry6-h2"] in cmds
    assert ["ip", "link", "set", "ferry6h2", "master", "ferry6br", "up"] in cmds
    assert ["ip", "-n", "ferry6-h2", "addr", "add", "198.18.6.3/24", "dev", "eth0"] in cmds
    assert ["ip", "-n", "ferry6-h2", "link", "set", "lo", "up"] in cmds
    # Only the connected /24: nothing a host sends can leave the lab network.
    assert not any("route" in c for c in cmds)


def test_cut_pulls_the_bridge_side_of_the_cable_and_restore_puts_it_back():
    assert network.cut_command(H2) == ["ip", "link", "set", "ferry6h2", "down"]
    assert network.restore_command(H2) == ["ip", "link", "set", "ferry6h2", "up"]


def test_down_removes_link_and_namespace_and_netns_exec_enters_only_the_network():
    assert network.host_down_commands(H2) == [["ip", "link", "del", "ferry6h2"], ["ip", "netns", "del", "ferry6-h2"]]
    assert network.bridge_down_commands(PLAN) == [["ip", "link", "del", "ferry6br"]]
    assert network.netns_exec(H2, ["iperf3", "-s"]) == ["nsenter", "--net=/run/netns/ferry6-h2", "--", "iperf3", "-s"]


# ---- parsing ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text,bps", [("2gbit", 2 * 10**9), ("500mbit", 500 * 10**6), ("1.5Gbit", 15 * 10**8),
                                      ("100mbps", 800 * 10**6), ("64kbit", 64000), (" 10 mbit ", 10**7)])
def test_parse_rate(text, bps):
    assert parse_rate(text) == bps


@pytest.mark.parametrize("text", ["", "fast", "2", "2gb", "-1gbit", "1e3mbit", "0bit", "200gbit", "1kbit"])
def test_bad_rate_names_the_field(text):
    with pytest.raises(InvalidInput) as info:
        parse_rate(text)
    assert info.value.field == "rate"


@pytest.mark.parametrize("text,ms", [("1ms", 1.0), ("250us", 0.25), ("0.5s", 500.0), ("10s", 10000.0)])
def test_parse_delay(text, ms):
    assert parse_delay(text) == ms


@pytest.mark.parametrize("text", ["1", "0ms", "11s", "1min", "-1ms", "soon"])
def test_bad_delay_names_the_field(text):
    with pytest.raises(InvalidInput) as info:
        parse_delay(text)
    assert info.value.field == "delay"


@pytest.mark.parametrize("text,pct", [("0.1%", 0.1), ("0.1", 0.1), ("5%", 5.0), ("99.9%", 99.9)])
def test_parse_loss(text, pct):
    assert parse_loss(text) == pct


@pytest.mark.parametrize("text", ["0%", "100%", "150%", "0.0001%", "1x", "-1%", "lots"])
def test_bad_loss_names_the_field(text):
    with pytest.raises(InvalidInput) as info:
        parse_loss(text)
    assert info.value.field == "loss"


def test_an_empty_shape_is_refused_and_shapes_round_trip_through_state():
    with pytest.raises(InvalidInput) as info:
        LinkShape.parse()
    assert info.value.field == "link"
    shape = LinkShape.parse(rate="2gbit", loss="0.1%")
    assert LinkShape.from_dict(shape.to_dict()) == shape
    assert shape.describe() == "rate 2gbit, loss 0.1%"
    assert LinkShape().describe() == "unshaped" and LinkShape.from_dict(None).is_clear


# ---- tc and nft ------------------------------------------------------------------------------
def test_rate_alone_is_a_token_bucket_with_a_burst_above_a_gso_packet():
    q = qdisc_args(LinkShape(rate_bps=10**9))
    assert q[:3] == ["tbf", "rate", "1000000000bit"]
    assert int(q[q.index("burst") + 1]) >= 128 * 1024
    fast = qdisc_args(LinkShape(rate_bps=40 * 10**9))
    assert int(fast[fast.index("burst") + 1]) == 40 * 10**9 // 8 // 200  # 5 ms of traffic


def test_delay_uses_netem_which_then_carries_rate_and_loss():
    q = qdisc_args(LinkShape(rate_bps=2 * 10**9, delay_ms=1.0, loss_pct=0.1))
    assert q[:3] == ["netem", "delay", "1ms"]
    assert q[q.index("rate") + 1] == "2000000000bit" and q[q.index("loss") + 1] == "0.1%"
    assert loss_rulesets(H2, LinkShape(delay_ms=1.0, loss_pct=0.1)) is None  # netem drops, not nft


def test_loss_without_delay_drops_where_packets_arrive_each_way():
    machine, host = loss_rulesets(H2, LinkShape(loss_pct=0.1))
    # From the host: at the ingress of the outer veth end, in the machine's namespace.
    assert machine.startswith("table netdev ferry6h2_loss {")
    assert 'hook ingress device "ferry6h2"' in machine and "numgen random mod 100000 < 100 drop" in machine
    # To the host: at the ingress of eth0, inside the host's namespace.
    assert host.startswith("table netdev ferry_link {")
    assert 'hook ingress device "eth0"' in host and "numgen random mod 100000 < 100 drop" in host
    assert qdisc_args(LinkShape(loss_pct=0.1)) is None
    assert loss_rulesets(H2, LinkShape(rate_bps=10**9)) is None


def test_shaping_clears_first_then_shapes_both_ends_of_the_cable():
    steps = shape_commands(H2, LinkShape(rate_bps=10**9, loss_pct=1.0))
    assert [s.clearing for s in steps] == [True] * 4 + [False] * 4
    outer, inner, loss_out, loss_in = steps[4:]
    assert outer.argv[:6] == ("tc", "qdisc", "replace", "dev", "ferry6h2", "root")
    assert inner.argv[:3] == ("nsenter", "--net=/run/netns/ferry6-h2", "--")
    assert inner.argv[3:9] == ("tc", "qdisc", "replace", "dev", "eth0", "root")
    assert loss_out.argv == ("nft", "-f", "-") and "ferry6h2_loss" in loss_out.stdin
    assert loss_in.argv[:3] == inner.argv[:3] and "mod 100000 < 1000 drop" in loss_in.stdin
    # Clearing is the same clearing steps and nothing else; it removes both loss tables.
    clear = [s.argv for s in shape_commands(H2, LinkShape())]
    assert clear == [s.argv for s in steps[:4]]
    assert ("nft", "delete", "table", "netdev", "ferry6h2_loss") in clear


# ---- the CLI ---------------------------------------------------------------------------------
@pytest.mark.parametrize("args,field", [(["--rate", "fast"], "rate"), (["--delay", "1"], "delay"),
                                        (["--loss", "200%"], "loss"), ([], "link"),
                                        (["--clear", "--rate", "1gbit"], "clear")])
def test_lab_link_rejects_bad_input_naming_the_field(args, field):
    result = CliRunner().invoke(cli, ["lab", "--lab-id", "9", "link", "1", *args])
    assert result.exit_code == 2, result.output
    assert f"{field}:" in result.output and "Traceback" not in result.output


def test_lab_cut_off_seconds_must_be_positive():
    result = CliRunner().invoke(cli, ["lab", "--lab-id", "9", "cut-off", "1", "--seconds", "0"])
    assert result.exit_code == 2 and "--seconds" in result.output


# ---- Lab._open -------------------------------------------------------------------------------
class _RecordingLibvirt:
    """Stands in for the libvirt module: records which URIs were opened and which closed."""

    def __init__(self):
        self.opened: list[str] = []
        self.closed: list[str] = []

    def open(self, uri):
        self.opened.append(uri)
        module = self

        class Conn:
            def close(self):
                module.closed.append(uri)
        return Conn()


def test_open_uses_the_local_socket_by_default_and_always_closes(monkeypatch, tmp_path):
    from ferry.lab import guests
    from ferry.lab.lab import Lab

    fake = _RecordingLibvirt()
    monkeypatch.setattr(guests, "libvirt_module", lambda: fake)
    lab = Lab(6, root=tmp_path)
    h = lab.host(2)
    with lab._open(h):
        pass
    with pytest.raises(RuntimeError), lab._open(h, local=False):
        raise RuntimeError("the body failed")
    assert fake.opened == [h.local_uri, h.uri] == fake.closed
    assert h.local_uri == f"qemu+unix:///system?socket={tmp_path}/lab6/h2/run/libvirt-sock"

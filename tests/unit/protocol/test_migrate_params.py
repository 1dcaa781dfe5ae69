"""VM.migrate parameter parsing: Vdsm names and defaults, unknown keys ignored, bad values named."""
import pytest

from ferry.common.errors import InvalidInput
from ferry.protocol.migrate_params import MigrateParams, split_host_port, unrecognized_message


def test_defaults():
    p, unknown = MigrateParams.from_wire({"dst": "127.0.1.3:54321"})
    assert unknown == ()
    assert (p.dst_host, p.dst_port, p.method, p.max_bandwidth, p.parallel, p.zerocopy) == (
        "127.0.1.3", 54321, "online", 52, None, False)
    assert p.schedule is None and p.effective_schedule().legacy
    assert not any([p.tunneled, p.abort_on_error, p.compressed, p.auto_converge, p.encrypted])


def test_values_and_string_forms():
    p, _ = MigrateParams.from_wire({"dst": "h", "parallel": "4", "zerocopy": "true", "maxBandwidth": 0,
                                 "autoConverge": True, "incomingLimit": 1, "outgoingLimit": "2",
                                 "downtime": 300})
    assert (p.parallel, p.zerocopy, p.max_bandwidth, p.auto_converge, p.incoming_limit, p.outgoing_limit) == (
        4, True, 0, True, 1, 2)
    assert p.effective_schedule().init[0].downtime_ms == 61   # 300 ms in 5 steps: offset 60 + base**0
    assert MigrateParams.from_wire({"dst": "h", "parallel": 0})[0].parallel is None


def test_unknown_keys_are_returned_not_errors():
    p, unknown = MigrateParams.from_wire({"dst": "h", "zerocopy": True, "fancy": 1}, knows_zerocopy=False)
    assert unknown == ("fancy", "zerocopy") and p.zerocopy is False
    assert unrecognized_message(unknown) == "parameters ['fancy', 'zerocopy'] were not recognized"


@pytest.mark.parametrize("raw, field", [
    ({}, "dst"),
    ({"dst": ""}, "dst"),
    ({"dst": 5}, "dst"),
    ({"dst": "h:port"}, "dst"),
    ({"dst": "h", "method": "offline"}, "method"),
    ({"dst": "h", "tunneled": 1}, "tunneled"),
    ({"dst": "h", "zerocopy": "yes"}, "zerocopy"),
    ({"dst": "h", "parallel": -1}, "parallel"),
    ({"dst": "h", "parallel": 256}, "parallel"),
    ({"dst": "h", "parallel": True}, "parallel"),
    ({"dst": "h", "parallel": 2.5}, "parallel"),
    ({"dst": "h", "maxBandwidth": -5}, "maxBandwidth"),
    ({"dst": "h", "incomingLimit": 0}, "incomingLimit"),
    ({"dst": "h", "outgoingLimit": "many"}, "outgoingLimit"),
    ({"dst": "h", "downtime": 0}, "downtime"),
    ({"dst": "h", "dstqemu": 7}, "dstqemu"),
    ({"dst": "h", "convergenceSchedule": "fast"}, "convergenceSchedule"),
])
def test_bad_values_name_the_field(raw, field):
    with pytest.raises(InvalidInput) as err:
        MigrateParams.from_wire(raw)
    assert err.value.field == field


def test_split_host_port():
    assert split_host_port("[::1]:54321") == ("::1", 54321)
    assert split_host_port("fd00::1") == ("fd00::1", None)
    assert split_host_port("host") == ("host", None)


def test_what_the_planner_sends_is_what_the_agent_reads():
    """Every example plan's wire form reads back (agent side) as the planner's typed value; only
    an unsent maxBandwidth reads as the agent's default."""
    from dataclasses import replace
    from pathlib import Path

    from ferry.engine.scenario import load_scenario_text

    files = sorted((Path(__file__).resolve().parents[3] / "docs" / "scenarios").iterdir())
    assert files
    for f in files:
        sent = load_scenario_text(f.read_text()).plan().params
        read, unrecognized = MigrateParams.from_wire(sent.to_wire())
        assert unrecognized == ()
        assert read == replace(sent, max_bandwidth=sent.bandwidth_mibs), f.name

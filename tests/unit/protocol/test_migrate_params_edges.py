"""VM.migrate parameters (facts §2): the reasons bad input gets, bracketed destinations, and the
`adaptive` parameter on the wire."""
import pytest

from ferry.common.errors import InvalidInput
from ferry.protocol.adaptive import AdaptiveSpec
from ferry.protocol.migrate_params import MigrateParams, split_host_port


@pytest.mark.parametrize("raw, field, reason", [
    (["dst"], "params", "must be an object, got list"),
    (None, "params", "must be an object, got NoneType"),
    ({}, "dst", "the destination host[:port] is required, got None"),
    ({"dst": "  "}, "dst", "the destination host[:port] is required, got '  '"),
    ({"dst": "h", "method": "offline"}, "method", "only 'online' migration is supported, got 'offline'"),
    ({"dst": "h", "tunneled": 1}, "tunneled", "must be true or false, got 1"),
    ({"dst": "h", "zerocopy": "yes"}, "zerocopy", "must be true or false, got 'yes'"),
    ({"dst": "h", "parallel": "many"}, "parallel", "must be an integer, got 'many'"),
    ({"dst": "h", "parallel": True}, "parallel", "must be an integer, got True"),
    ({"dst": "h", "dstqemu": 7}, "dstqemu", "must be a string, got 7"),
    ({"dst": "h", "consoleAddress": ["c"]}, "consoleAddress", "must be a string, got ['c']"),
    ({"dst": "h:port"}, "dst", "port must be a number, got 'h:port'"),
])
def test_rule_2_bad_params_name_the_field_and_the_reason(raw, field, reason):
    with pytest.raises(InvalidInput) as e:
        MigrateParams.from_wire(raw)
    assert (e.value.field, e.value.reason) == (field, reason)


@pytest.mark.parametrize("address, expected", [
    ("[::1]", ("::1", None)),
    ("[::1]:54321", ("::1", 54321)),
    (" [fd00::3]:1 ", ("fd00::3", 1)),
    ("10.0.0.1:54321", ("10.0.0.1", 54321)),
    ("fd00::1", ("fd00::1", None)),
])
def test_rule_2_destination_forms(address, expected):
    assert split_host_port(address) == expected


@pytest.mark.parametrize("address", ["[::1", "[]", "[]:1", "[::1]x", "[::1]:", "[::1]:5x", "[::1]]:1",
                                     "[fd00::1]::1"])
def test_rule_2_a_malformed_bracketed_destination_is_refused_not_guessed(address):
    """'[::1]junk' used to read as ('::1', no port): the migration then went to the default port
    of a host the caller may not have meant."""
    with pytest.raises(InvalidInput) as e:
        MigrateParams.from_wire({"dst": address})
    assert (e.value.field, e.value.reason) == ("dst", f"must be [address] or [address]:port, got {address!r}")


def test_adaptive_spec_goes_on_the_wire_and_reads_back():
    spec = AdaptiveSpec(max_downtime_ms=800, initial_downtime_ms=100, allow_postcopy=False, max_throttle_pct=50)
    wire = MigrateParams("h", adaptive=spec).to_wire()
    assert wire["adaptive"] == spec.to_wire()
    read, unrecognized = MigrateParams.from_wire(wire)
    assert unrecognized == () and read.adaptive == spec
    assert "adaptive" not in MigrateParams("h").to_wire()
    assert MigrateParams.from_wire({"dst": "h", "adaptive": None})[0].adaptive is None


def test_a_bad_adaptive_spec_is_refused_with_its_field():
    with pytest.raises(InvalidInput) as e:
        MigrateParams.from_wire({"dst": "h", "adaptive": {"maxDowntimeMs": 0}})
    assert e.value.field == "adaptive.maxDowntimeMs"

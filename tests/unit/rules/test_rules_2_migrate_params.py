"""Facts §2 (VM.migrate parameters) at their bounds: every range inclusive at both ends, and the
unknown-key list an agent logs ("parameters [...] were not recognized")."""
import pytest

from ferry.common.errors import InvalidInput
from ferry.protocol.migrate_params import (
    DEFAULT_MAX_BANDWIDTH_MIBS,
    MAX_MIGRATION_LIMIT,
    MAX_PARALLEL_CONNECTIONS,
    MigrateParams,
    parse_bool,
    parse_int,
    url_host,
)
from ferry.protocol.schedule import MAX_DOWNTIME_MS, Schedule, legacy_schedule


def read(**raw):
    return MigrateParams.from_wire({"dst": "h", **raw})[0]


@pytest.mark.parametrize("key, attr, lo, hi", [
    ("parallel", "parallel", 0, MAX_PARALLEL_CONNECTIONS),
    ("outgoingLimit", "outgoing_limit", 1, MAX_MIGRATION_LIMIT),
    ("incomingLimit", "incoming_limit", 1, MAX_MIGRATION_LIMIT),
    ("downtime", "downtime", 1, MAX_DOWNTIME_MS),
    ("maxTimePerGiB", "max_time_per_gib", 0, 86_400),
    ("progressTimeout", "progress_timeout", 0, 86_400),
])
def test_rule_2_ranges_are_inclusive_at_both_ends(key, attr, lo, hi):
    assert getattr(read(**{key: hi}), attr) == hi
    assert getattr(read(**{key: str(hi)}), attr) == hi
    low = getattr(read(**{key: lo}), attr)
    assert low == (None if key == "parallel" else lo)        # parallel 0 = off
    for bad in (hi + 1, lo - 1):
        with pytest.raises(InvalidInput) as e:
            read(**{key: bad})
        assert e.value.field == key and f"must be {lo}..{hi}, got {bad}" == e.value.reason


def test_rule_2_the_limits():
    assert (MAX_PARALLEL_CONNECTIONS, MAX_MIGRATION_LIMIT, DEFAULT_MAX_BANDWIDTH_MIBS) == (255, 64, 52)


def test_rule_2_max_bandwidth_has_no_upper_bound_and_0_means_unlimited():
    assert read(maxBandwidth=10**9).max_bandwidth == 10**9
    p = read(maxBandwidth=0)
    assert p.max_bandwidth == 0 and p.bandwidth_mibs == 0
    with pytest.raises(InvalidInput) as e:
        read(maxBandwidth=-1)
    assert e.value.reason == "must be 0 or more, got -1"
    assert read().bandwidth_mibs == 52 and MigrateParams("h").bandwidth_mibs == 52
    assert MigrateParams("h").max_bandwidth is None


def test_rule_2_a_zerocopy_aware_agent_recognizes_every_key_it_reads():
    raw = {"dst": "h:1", "dstqemu": "10.0.0.1", "method": "online", "tunneled": False, "abortOnError": True,
           "compressed": False, "autoConverge": True, "encrypted": False, "parallel": 4, "zerocopy": True,
           "maxBandwidth": 100, "convergenceSchedule": {"init": [], "stalling": []}, "outgoingLimit": 1,
           "incomingLimit": 1, "enableGuestEvents": True, "consoleAddress": "c", "downtime": 500,
           "vmId": "v", "src": "s", "mode": "x", "maxTimePerGiB": 0, "progressTimeout": 0}
    p, unrecognized = MigrateParams.from_wire(raw)
    assert unrecognized == ()
    assert p.zerocopy is True
    p, unrecognized = MigrateParams.from_wire(raw, knows_zerocopy=False)
    assert unrecognized == ("zerocopy",) and p.zerocopy is False


def test_rule_2_zerocopy_sent_only_when_on_and_round_trips():
    assert "zerocopy" not in MigrateParams("h").to_wire()
    wire = MigrateParams("h", zerocopy=True, parallel=2).to_wire()
    assert wire["zerocopy"] is True
    assert MigrateParams.from_wire(wire) == (MigrateParams("h", zerocopy=True, parallel=2, max_bandwidth=52), ())


def test_rule_2_to_wire_always_has_the_flags_and_only_set_optionals():
    assert MigrateParams("h").to_wire() == {
        "dst": "h", "method": "online", "tunneled": False, "abortOnError": False, "autoConverge": False,
        "compressed": False, "encrypted": False, "enableGuestEvents": False}
    full = MigrateParams("h", dstqemu="q", tunneled=True, abort_on_error=True, compressed=True,
                         auto_converge=True, encrypted=True, enable_guest_events=True, parallel=3,
                         max_bandwidth=0, schedule=Schedule(), outgoing_limit=1, incoming_limit=2,
                         console_address="c", downtime=9, max_time_per_gib=0, progress_timeout=5)
    wire = full.to_wire()
    assert wire == {"dst": "h", "method": "online", "tunneled": True, "abortOnError": True, "autoConverge": True,
                    "compressed": True, "encrypted": True, "enableGuestEvents": True, "outgoingLimit": 1,
                    "incomingLimit": 2, "parallel": 3, "maxBandwidth": 0,
                    "convergenceSchedule": {"init": [], "stalling": []}, "downtime": 9, "dstqemu": "q",
                    "consoleAddress": "c", "maxTimePerGiB": 0, "progressTimeout": 5}
    assert MigrateParams.from_wire(wire)[0] == full


def test_rule_3_no_schedule_means_the_legacy_schedule_with_the_downtime():
    assert MigrateParams("h").effective_schedule() == legacy_schedule()
    assert MigrateParams("h", downtime=1000).effective_schedule() == legacy_schedule(1000)
    assert MigrateParams("h", downtime=0).effective_schedule() == legacy_schedule()
    s = Schedule()
    assert MigrateParams("h", schedule=s, downtime=1000).effective_schedule() is s


def test_rule_2_strings_and_bools():
    assert parse_bool(" TRUE ", "f") is True and parse_bool("false", "f") is False
    for bad in (1, "yes", None):
        with pytest.raises(InvalidInput):
            parse_bool(bad, "f")
    assert parse_int(" 7 ", "f", minimum=0) == 7
    with pytest.raises(InvalidInput) as e:
        parse_int(3, "f", minimum=5)
    assert e.value.reason == "must be 5 or more, got 3"
    assert parse_int(5, "f", minimum=5, maximum=5) == 5
    assert read(dstqemu="").dstqemu is None and read(dstqemu=" q ").dstqemu == "q"
    assert MigrateParams.from_wire({"dst": " h "})[0].dst == "h"
    assert url_host("::1") == "[::1]" and url_host("[::1]") == "[::1]" and url_host("h") == "h"


def test_rule_2_params_must_be_an_object():
    with pytest.raises(InvalidInput) as e:
        MigrateParams.from_wire(["dst"])
    assert e.value.field == "params"

"""Facts §1 (flags from VM.migrate) and the end of §5 (an agent without zero-copy drops the key and
migrates); and the status follower's pacing (engine/status_follow.py), branch by branch."""
import pytest

from ferry.engine.status_follow import ANSWERED_AT_ONCE_S, LONG_POLL_S, pause_before_next, status_request
from ferry.protocol.flags import (
    NOTE_ZEROCOPY_UNAVAILABLE,
    build_migration_flags,
)
from ferry.protocol.migrate_params import MigrateParams
from ferry.protocol.schedule import POSTCOPY, Action, Schedule, StallingStep
from ferry.protocol.status import MigrationStatus

BASE = ("VIR_MIGRATE_LIVE", "VIR_MIGRATE_PEER2PEER", "VIR_MIGRATE_PERSIST_DEST")


def test_rule_1_always_live_peer2peer_persist_and_a_tcp_migrate_uri():
    f = build_migration_flags({"dst": "h2:54321"})
    assert f.names == BASE
    assert f.typed_params == {"migrate_uri": "tcp://h2", "bandwidth": 52}
    assert f.destination_uri == "qemu+tls://h2/system" and f.notes == () and f.warnings == ()
    f = build_migration_flags({"dst": "h2", "maxBandwidth": 0, "dstqemu": "fd00::2"}, libvirt_transport="tcp")
    assert f.typed_params == {"migrate_uri": "tcp://[fd00::2]"} and f.destination_uri == "qemu+tcp://h2/system"
    with pytest.raises(ValueError):
        build_migration_flags({"dst": "h2"}, libvirt_transport="ssh")


def test_rule_1_each_parameter_adds_its_flag():
    f = build_migration_flags({"dst": "h2", "tunneled": True, "abortOnError": True, "compressed": True,
                               "autoConverge": True, "encrypted": True})
    assert f.names == ("VIR_MIGRATE_LIVE", "VIR_MIGRATE_PEER2PEER", "VIR_MIGRATE_TUNNELLED",
                       "VIR_MIGRATE_PERSIST_DEST", "VIR_MIGRATE_COMPRESSED", "VIR_MIGRATE_ABORT_ON_ERROR",
                       "VIR_MIGRATE_AUTO_CONVERGE", "VIR_MIGRATE_TLS")
    assert "migrate_uri" not in f.typed_params and f.typed_params["tls.destination"] == "h2"


def test_rule_1_parallel_zerocopy_and_postcopy():
    f = build_migration_flags(MigrateParams("h2", parallel=4, zerocopy=True))
    assert f.names[-2:] == ("VIR_MIGRATE_PARALLEL", "VIR_MIGRATE_ZEROCOPY")
    assert f.typed_params["parallel.connections"] == 4 and f.warnings == ()
    s = Schedule((), (StallingStep(-1, Action(POSTCOPY)),))
    f = build_migration_flags(MigrateParams("h2", schedule=s))
    assert "VIR_MIGRATE_POSTCOPY" in f.names and f.warnings == ()
    f = build_migration_flags(MigrateParams("h2", schedule=s, parallel=2))
    assert f.warnings == ("post-copy with parallel connections is not supported by QEMU",)


def test_rule_1_refused_combinations_are_warned_not_fixed():
    f = build_migration_flags(MigrateParams("h2", zerocopy=True, encrypted=True, compressed=True))
    assert "VIR_MIGRATE_ZEROCOPY" in f.names
    assert f.warnings == ("zero-copy is only available for parallel migration: libvirt will refuse it",
                          "QEMU refuses zero-copy with TLS encryption", "QEMU refuses zero-copy with compression")
    f = build_migration_flags(MigrateParams("h2", parallel=2, tunneled=True))
    assert f.warnings == ("libvirt refuses parallel connections with a tunnelled migration",)


def test_rule_1_zerocopy_not_available_is_a_note_and_the_migration_goes_on():
    f = build_migration_flags(MigrateParams("h2", parallel=2, zerocopy=True), zerocopy_available=False)
    assert "VIR_MIGRATE_ZEROCOPY" not in f.names and "VIR_MIGRATE_PARALLEL" in f.names
    assert f.notes == (NOTE_ZEROCOPY_UNAVAILABLE,) == ("zero-copy not available, not enabling",)


def test_rule_5_an_agent_without_zerocopy_ignores_the_key_and_migrates():
    f = build_migration_flags({"dst": "h2", "parallel": 2, "zerocopy": True}, knows_zerocopy=False)
    assert "VIR_MIGRATE_ZEROCOPY" not in f.names and "VIR_MIGRATE_PARALLEL" in f.names and f.notes == ()


def test_rule_1_graphics_uri_only_with_a_console():
    f = build_migration_flags(MigrateParams("h2", console_address="::1"), graphics_protocol="vnc")
    assert f.typed_params["graphics_uri"] == "vnc://[::1]"
    f = build_migration_flags(MigrateParams("h2", console_address="c"))
    assert "graphics_uri" not in f.typed_params
    assert f.notes == ("consoleAddress given but the VM has no graphics console; not sending graphics_uri",)


def test_rule_1_flag_value_and_dict():
    class Lib:
        VIR_MIGRATE_LIVE, VIR_MIGRATE_PEER2PEER, VIR_MIGRATE_PERSIST_DEST = 1, 2, 8
    f = build_migration_flags({"dst": "h2"})
    assert f.value(Lib) == 11
    assert f.to_dict() == {"flags": list(BASE), "typed_params": f.typed_params, "destination_uri": f.destination_uri,
                           "notes": [], "warnings": []}


# ---- status follower -------------------------------------------------------------------------

def test_status_request_asks_with_version_0_first():
    assert status_request("vm", None) == {"vmID": "vm", "waitForChange": {"version": 0, "timeout": LONG_POLL_S}}
    assert status_request("vm", 7, 0.5) == {"vmID": "vm", "waitForChange": {"version": 7, "timeout": 0.5}}
    assert LONG_POLL_S == 1.0


@pytest.mark.parametrize("version, asked, call_s, expected", [
    (None, 3, 0.5, 10.0),                        # no extension: plain polling
    (4, 3, 0.0, 0.0),                            # changed: ask again at once
    (3, 3, ANSWERED_AT_ONCE_S / 2, 10.0),        # unchanged and did not wait: don't spin
    (3, 3, ANSWERED_AT_ONCE_S, 0.0),             # waited (at the threshold): go on
    (3, 3, 1.0, 0.0),
    (0, None, 0.0, 0.0),
])
def test_status_follow_pause(version, asked, call_s, expected):
    s = MigrationStatus.from_wire({"state": "running", **({} if version is None else {"version": version})})
    assert pause_before_next(s, asked, call_s, 10.0) == expected

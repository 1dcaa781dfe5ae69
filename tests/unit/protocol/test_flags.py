"""Flag builder: every combination of VM.migrate's flag-relevant parameters (facts §1)."""
import itertools

import libvirt
import pytest

from ferry.common.errors import InvalidInput
from ferry.protocol import flags as F
from ferry.protocol.flags import build_migration_flags

BOOLS = ("tunneled", "abortOnError", "compressed", "autoConverge", "encrypted", "zerocopy")
SIMPLE = {"abortOnError": F.ABORT_ON_ERROR, "compressed": F.COMPRESSED, "autoConverge": F.AUTO_CONVERGE,
          "encrypted": F.TLS, "tunneled": F.TUNNELLED}
SCHEDULES = {
    "none": None,
    "downtime": {"init": [{"name": "setDowntime", "params": ["100"]}],
                 "stalling": [{"limit": 1, "action": {"name": "setDowntime", "params": ["150"]}},
                              {"limit": -1, "action": {"name": "abort", "params": []}}]},
    "postcopy": {"init": [{"name": "setDowntime", "params": ["100"]}],
                 "stalling": [{"limit": 1, "action": {"name": "setDowntime", "params": ["150"]}},
                              {"limit": -1, "action": {"name": "postcopy", "params": []}},
                              {"limit": -1, "action": {"name": "abort", "params": []}}]},
}


def combinations():
    for bits in itertools.product((False, True), repeat=len(BOOLS)):
        for parallel in (None, 0, 4):
            for schedule in SCHEDULES:
                for bandwidth in ("absent", 0, 100):
                    for dstqemu in (None, "10.0.0.9"):
                        for available in (False, True):
                            params = {"dst": "127.0.1.3:54321"}
                            params.update({k: v for k, v in zip(BOOLS, bits)})
                            if parallel is not None:
                                params["parallel"] = parallel
                            if SCHEDULES[schedule] is not None:
                                params["convergenceSchedule"] = SCHEDULES[schedule]
                            if bandwidth != "absent":
                                params["maxBandwidth"] = bandwidth
                            if dstqemu:
                                params["dstqemu"] = dstqemu
                            yield params, available


ALL = list(combinations())


def test_combination_count_is_exhaustive():
    assert len(ALL) == 2 ** 6 * 3 * 3 * 3 * 2 * 2


@pytest.mark.parametrize("chunk", range(8))
def test_every_combination_follows_the_rules(chunk):
    for params, available in ALL[chunk::8]:
        result = build_migration_flags(params, zerocopy_available=available)
        names = set(result.names)
        ctx = (params, available, result)
        # Always live and peer-to-peer, definition kept on the destination.
        assert {F.LIVE, F.PEER2PEER, F.PERSIST_DEST} <= names, ctx
        for key, flag in SIMPLE.items():
            assert (flag in names) == params[key], ctx
        parallel = params.get("parallel") or 0
        assert (F.PARALLEL in names) == bool(parallel), ctx
        assert result.typed_params.get("parallel.connections") == (parallel or None), ctx
        wants_zc = params["zerocopy"]
        assert (F.ZEROCOPY in names) == (wants_zc and available), ctx
        assert (F.NOTE_ZEROCOPY_UNAVAILABLE in result.notes) == (wants_zc and not available), ctx
        assert (F.POSTCOPY in names) == ("convergenceSchedule" in params and any(
            s["action"]["name"] == "postcopy" for s in params["convergenceSchedule"]["stalling"])), ctx
        # Typed params.
        if params["tunneled"]:
            assert "migrate_uri" not in result.typed_params, ctx
        else:
            assert result.typed_params["migrate_uri"] == "tcp://" + (params.get("dstqemu") or "127.0.1.3"), ctx
        assert result.typed_params.get("tls.destination") == ("127.0.1.3" if params["encrypted"] else None), ctx
        bw = params.get("maxBandwidth", 52)
        assert result.typed_params.get("bandwidth") == (bw or None), ctx
        # the cap holds in post-copy too (QEMU's max-postcopy-bandwidth is unlimited otherwise)
        assert result.typed_params.get("bandwidth.postcopy") == ((bw or None) if F.POSTCOPY in names else None), ctx
        assert result.destination_uri == "qemu+tls://127.0.1.3/system"
        # No flag outside the known set, listed in libvirt's bit order.
        assert list(result.names) == [n for n in F.FLAG_ORDER if n in names]
        # Conflicts that libvirt/QEMU refuse are warned about, never silently fixed.
        if F.ZEROCOPY in names and not parallel:
            assert any("only available for parallel" in w for w in result.warnings), ctx
        if F.PARALLEL in names and params["tunneled"]:
            assert any("tunnelled" in w for w in result.warnings), ctx
        if F.ZEROCOPY in names and params["encrypted"]:
            assert any("TLS" in w for w in result.warnings), ctx
        if F.ZEROCOPY in names and params["compressed"]:
            assert any("compression" in w for w in result.warnings), ctx
        if F.ZEROCOPY in names and parallel and not params["encrypted"] and not params["compressed"]:
            assert not any("zero-copy" in w for w in result.warnings), ctx


def test_names_and_typed_params_exist_in_the_binding():
    for name in F.FLAG_ORDER:
        assert isinstance(getattr(libvirt, name), int), name
    assert F.PARAM_BANDWIDTH == libvirt.VIR_MIGRATE_PARAM_BANDWIDTH
    assert F.PARAM_BANDWIDTH_POSTCOPY == libvirt.VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY
    assert F.PARAM_PARALLEL_CONNECTIONS == libvirt.VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS
    assert F.PARAM_URI == libvirt.VIR_MIGRATE_PARAM_URI
    assert F.PARAM_TLS_DESTINATION == libvirt.VIR_MIGRATE_PARAM_TLS_DESTINATION
    assert F.PARAM_GRAPHICS_URI == libvirt.VIR_MIGRATE_PARAM_GRAPHICS_URI
    assert F.PARAM_DEST_XML == libvirt.VIR_MIGRATE_PARAM_DEST_XML


def test_value_is_the_or_of_the_binding_constants():
    result = build_migration_flags({"dst": "h", "parallel": 4, "zerocopy": True, "autoConverge": True})
    expected = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER | libvirt.VIR_MIGRATE_PERSIST_DEST
                | libvirt.VIR_MIGRATE_AUTO_CONVERGE | libvirt.VIR_MIGRATE_PARALLEL | libvirt.VIR_MIGRATE_ZEROCOPY)
    assert result.value(libvirt) == expected
    assert result.typed_params == {"migrate_uri": "tcp://h", "parallel.connections": 4, "bandwidth": 52}


def test_tcp_transport_and_ipv6_hosts():
    result = build_migration_flags({"dst": "[fd00::3]:54321", "dstqemu": "fd00::9"}, libvirt_transport="tcp")
    assert result.destination_uri == "qemu+tcp://[fd00::3]/system"
    assert result.typed_params["migrate_uri"] == "tcp://[fd00::9]"


def test_graphics_uri_only_with_a_console():
    with_console = build_migration_flags({"dst": "h", "consoleAddress": "10.1.1.1"}, graphics_protocol="vnc")
    assert with_console.typed_params["graphics_uri"] == "vnc://10.1.1.1"
    without = build_migration_flags({"dst": "h", "consoleAddress": "10.1.1.1"})
    assert "graphics_uri" not in without.typed_params
    assert any("consoleAddress" in n for n in without.notes)


def test_old_agent_does_not_know_zerocopy():
    result = build_migration_flags({"dst": "h", "parallel": 2, "zerocopy": True}, knows_zerocopy=False)
    assert F.ZEROCOPY not in result.names
    assert result.notes == ()


def test_bad_values_name_the_field():
    with pytest.raises(InvalidInput, match="parallel"):
        build_migration_flags({"dst": "h", "parallel": 256})
    with pytest.raises(InvalidInput, match="zerocopy"):
        build_migration_flags({"dst": "h", "zerocopy": "yes"})

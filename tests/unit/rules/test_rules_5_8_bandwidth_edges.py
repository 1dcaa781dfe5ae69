"""Facts §5 step 8 at its edges (the worked rules are test_rule_5_8_* in test_planner.py):
AUTO with a 0 Mbps link, the texts that say where a number came from, and the cap's floor."""
import pytest

from ferry.engine.bandwidth import (
    AGENT_DEFAULT_MAX_BANDWIDTH_MIBS,
    ClusterBandwidth,
    cluster_bandwidth,
    max_bandwidth_mibps,
    unknown_link_speed,
)
from ferry.engine.options import BandwidthMode, BandwidthSetting, HostMigrationInfo

AUTO = BandwidthSetting(BandwidthMode.AUTO)


def host(name, speed):
    return HostMigrationInfo(name, "127.0.0.1", link_speed_mbps=speed)


@pytest.mark.parametrize("speeds, unknown", [((0, 10_000), ("a",)), ((10_000, 0), ("b",)),
                                             ((0, 0), ("a", "b")), ((-1, 10_000), ("a",)),
                                             ((None, 10_000), ("a",))])
def test_rule_5_8_auto_with_a_0_mbps_link_is_an_unknown_speed(speeds, unknown):
    """A link that reports 0 Mbps (or less) is not known: AUTO then has no bandwidth."""
    bw = cluster_bandwidth(AUTO, host("a", speeds[0]), host("b", speeds[1]))
    assert bw.mbps is None and bw.mibps is None
    assert bw.unknown_hosts == unknown
    assert bw.derivation == f"AUTO: {unknown_link_speed(unknown)}" and bw.setting is AUTO
    assert max_bandwidth_mibps(bw, 1) is None


def test_rule_5_8_auto_with_a_1_mbps_link_is_known():
    bw = cluster_bandwidth(AUTO, host("a", 1), host("b", 10_000))
    assert bw.mbps == 1 and bw.unknown_hosts == () and bw.mibps == 0
    assert max_bandwidth_mibps(bw, 2) == 1      # never 0: the agent would read 0 as unlimited


def test_rule_5_8_auto_derivation_names_both_links_and_the_slower():
    bw = cluster_bandwidth(AUTO, host("a", 25_000), host("b", 10_000))
    assert bw.mbps == 10_000 and bw.mibps == 1250
    assert bw.derivation == "AUTO: slower migration link of a 25000 Mbps, b 10000 Mbps = 10000 Mbps"
    assert bw.setting is AUTO


def test_rule_5_8_auto_bandwidth_a_float_speed_is_not_a_known_speed():
    bw = cluster_bandwidth(AUTO, host("a", 100.0), host("b", 10_000))
    assert bw.mbps is None and bw.unknown_hosts == ("a",)


def test_rule_5_8_unknown_link_texts():
    assert unknown_link_speed(("a", "b")) == "neither host reports its migration link speed"
    assert unknown_link_speed(("h1",)) == ("h1 does not report its migration link speed, and AUTO "
                                           "needs both hosts' speeds")


def test_rule_5_8_hypervisor_default_and_custom_texts():
    hd_setting = BandwidthSetting(BandwidthMode.HYPERVISOR_DEFAULT)
    hd = cluster_bandwidth(hd_setting, host("a", 1), host("b", 1))
    assert hd.setting is hd_setting and hd.mbps is None and hd.unknown_hosts == ()
    assert hd.derivation == (f"HYPERVISOR_DEFAULT: the agent's own limit ({AGENT_DEFAULT_MAX_BANDWIDTH_MIBS}"
                             " MiB/s) applies")
    assert AGENT_DEFAULT_MAX_BANDWIDTH_MIBS == 52
    custom_setting = BandwidthSetting(BandwidthMode.CUSTOM, 800)
    custom = cluster_bandwidth(custom_setting, host("a", None), host("b", None))
    assert custom.setting is custom_setting
    assert (custom.mbps, custom.mibps, custom.derivation, custom.unknown_hosts) == (800, 100, "CUSTOM 800 Mbps", ())


@pytest.mark.parametrize("mbps, max_migrations, expected", [
    (800, 1, 100), (800, 2, 50), (800, 3, 33), (8, 1, 1), (15, 1, 1), (16, 1, 2), (7, 1, 1),
    (800, 0, 100),    # a divisor below 1 reads as 1 (the planner refuses it earlier)
    (800, -3, 100),
])
def test_rule_5_8_max_bandwidth_is_mbps_div_8_div_max_migrations_at_least_1(mbps, max_migrations, expected):
    bw = ClusterBandwidth(AUTO, mbps, "")
    assert max_bandwidth_mibps(bw, max_migrations) == expected

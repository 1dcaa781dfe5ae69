"""Rules of the option values and of destination choice that the mutation run showed no test held:
the field an error names, the reason it gives, and the ranking of a host of unknown memory."""
import pytest

from ferry.common.errors import InvalidInput
from ferry.engine.destination import Candidate, choose_destination
from ferry.engine.options import BandwidthMode, BandwidthSetting, ParallelMode, ParallelSetting


def _error(make):
    with pytest.raises(InvalidInput) as e:
        make()
    return e.value


@pytest.mark.parametrize("n", [1, 256])
def test_custom_connections_out_of_range_error_names_the_range_and_the_value(n):
    err = _error(lambda: ParallelSetting(ParallelMode.CUSTOM, n))
    assert err.field == "parallel.connections"
    assert err.reason == f"must be an integer from 2 to 255 with CUSTOM, got {n}"


def test_connections_without_custom_error_names_the_mode():
    err = _error(lambda: ParallelSetting(ParallelMode.AUTO, 4))
    assert (err.field, err.reason) == ("parallel.connections", "only allowed with CUSTOM, not AUTO")


def test_parse_errors_name_the_parallel_field_by_default():
    err = _error(lambda: ParallelSetting.parse("CUSTOM:lots"))
    assert err.field == "parallel"
    assert err.reason == "CUSTOM needs a connection count, e.g. CUSTOM:4, got 'CUSTOM:lots'"
    assert _error(lambda: ParallelSetting.parse("sometimes", "vm.parallel")).field == "vm.parallel"


def test_parse_of_an_unknown_mode_lists_every_mode():
    err = _error(lambda: ParallelSetting.parse("sometimes"))
    assert err.field == "parallel"
    assert err.reason == ("unknown parallel setting 'sometimes' "
                          "(one of AUTO, AUTO_PARALLEL, DISABLED, CUSTOM, or a number 2..255)")


@pytest.mark.parametrize("v", [0, -5, True, None, "100"])
def test_custom_bandwidth_must_be_positive_and_the_error_says_so(v):
    err = _error(lambda: BandwidthSetting(BandwidthMode.CUSTOM, v))
    assert (err.field, err.reason) == (
        "bandwidth.custom_mbps", f"CUSTOM bandwidth needs a positive Mbps value, got {v!r}")


@pytest.mark.parametrize("mode", [BandwidthMode.AUTO, BandwidthMode.HYPERVISOR_DEFAULT])
def test_bandwidth_mbps_without_custom_error_names_the_field_and_mode(mode):
    err = _error(lambda: BandwidthSetting(mode, 100))
    assert (err.field, err.reason) == ("bandwidth.custom_mbps", f"only allowed with CUSTOM, not {mode.value}")


def test_a_host_passed_over_for_not_being_up_is_named_with_its_status():
    hosts = [Candidate("h2", "c1", False, 4096, status="PREPARING_FOR_MAINTENANCE"),
             Candidate("h3", "c1", False, 4096)]
    choice = choose_destination(hosts, cluster="c1", source="h1", vm_memory_mib=1024)
    assert choice.rejected == (("h2", "host is PREPARING_FOR_MAINTENANCE"), ("h3", "host is not up"))


def test_a_host_of_unknown_free_memory_ranks_below_one_known_to_have_room():
    # h-a's memory is unknown (no stats yet): it is not excluded, but ranks as having none free.
    hosts = [Candidate("h-a", "c1", True, None), Candidate("h-b", "c1", True, 1)]
    assert choose_destination(hosts, cluster="c1", source="h1", vm_memory_mib=1).host == "h-b"


def test_a_chosen_host_still_reports_the_hosts_passed_over():
    hosts = [Candidate("h2", "c1", True, 512), Candidate("h3", "c1", True, 4096)]
    choice = choose_destination(hosts, cluster="c1", source="h1", vm_memory_mib=1024)
    assert choice.host == "h3"
    assert choice.rejected == (("h2", "not enough free memory (512 MiB < 1024 MiB)"),)

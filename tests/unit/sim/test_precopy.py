"""The simulator's passes are the pre-copy model's, and its job stats are libvirt's keys and units."""
import libvirt
import pytest

from ferry.forecast.model import ForecastInputs, forecast
from ferry.sim import precopy
from ferry.sim.precopy import SimVm

MIB = 1 << 20


def test_job_type_values_are_libvirts():
    assert (precopy.JOB_NONE, precopy.JOB_UNBOUNDED, precopy.JOB_COMPLETED) == (
        libvirt.VIR_DOMAIN_JOB_NONE, libvirt.VIR_DOMAIN_JOB_UNBOUNDED, libvirt.VIR_DOMAIN_JOB_COMPLETED)


def test_first_pass_sends_the_touched_memory_at_the_bandwidth():
    vm = SimVm("a", "u", memory_mib=2048, touched_mib=1000, dirty_rate_mibs=0)
    p = precopy.next_pass(vm, iteration=0, send_mib=None, bandwidth_mibs=100, downtime_limit_ms=300)
    assert p.send_mib == 1000 and p.seconds == pytest.approx(10.0)
    assert p.converges and p.remaining_mib == 0


def test_passes_chained_add_up_to_the_forecast_without_its_fixed_costs():
    vm = SimVm("a", "u", memory_mib=4096, touched_mib=2000, dirty_rate_mibs=40, dirty_pattern="random")
    want = forecast(ForecastInputs(memory_mib=4096, touched_mib=2000, dirty_rate_mibs=40, bandwidth_mibs=200,
                                   fixed_cost_s=0.0, dirty_pattern="random", init_downtime_ms=300))
    send, total, n = None, 0.0, 0
    while True:
        p = precopy.next_pass(vm, iteration=n, send_mib=send, bandwidth_mibs=200, downtime_limit_ms=300)
        total += p.seconds
        if p.converges:
            total += p.downtime_ms / 1000
            break
        send, n = p.remaining_mib, n + 1
    assert want.outcome == "converge"
    assert total == pytest.approx(want.total_seconds)
    assert n + 1 == want.iterations


def test_a_pass_that_cannot_converge_under_the_limit_does_not():
    vm = SimVm("a", "u", memory_mib=4096, touched_mib=4000, dirty_rate_mibs=500, dirty_pattern="linear")
    p = precopy.next_pass(vm, iteration=3, send_mib=800, bandwidth_mibs=100, downtime_limit_ms=300)
    assert not p.converges and p.downtime_ms is None
    assert p.remaining_mib == pytest.approx(min(4000, 500 * 8))


def test_a_raised_downtime_limit_lets_the_same_pass_converge():
    vm = SimVm("a", "u", memory_mib=4096, touched_mib=4000, dirty_rate_mibs=5, dirty_pattern="linear")
    low = precopy.next_pass(vm, iteration=2, send_mib=100, bandwidth_mibs=100, downtime_limit_ms=10)
    high = precopy.next_pass(vm, iteration=2, send_mib=100, bandwidth_mibs=100, downtime_limit_ms=5000)
    assert not low.converges and high.converges
    assert high.downtime_ms == pytest.approx(low.remaining_mib / 100 * 1000)


def test_throttle_follows_qemus_every_second_pass_over_half():
    assert precopy.next_throttle(0, 0, 100, 60) == (0, 1)
    assert precopy.next_throttle(0, 1, 100, 60) == (20, 0)
    assert precopy.next_throttle(20, 1, 100, 60) == (30, 0)
    assert precopy.next_throttle(95, 1, 100, 60) == (99, 0)
    assert precopy.next_throttle(20, 1, 100, 40) == (20, 1)


def test_remaining_shrinks_through_a_pass_to_the_models_remaining():
    vm = SimVm("a", "u", memory_mib=1024, touched_mib=800, dirty_rate_mibs=20, dirty_pattern="random")
    p = precopy.next_pass(vm, iteration=0, send_mib=None, bandwidth_mibs=100, downtime_limit_ms=1)
    start, mid, end = (precopy.remaining_during(vm, p, t) for t in (0, p.seconds / 2, p.seconds))
    assert start == pytest.approx(800)
    assert start > mid > end
    assert end == pytest.approx(p.remaining_mib)


def test_running_stats_in_libvirt_units():
    s = precopy.running_job_stats(memory_mib=1024, processed_mib=100, remaining_mib=50, bandwidth_mibs=200,
                                  dirty_rate_mibs=8, iteration=2, elapsed_s=1.5, expected_downtime_ms=120)
    assert s["type"] == libvirt.VIR_DOMAIN_JOB_UNBOUNDED
    assert s["data_total"] == 1024 * MIB and s["data_remaining"] == 50 * MIB and s["data_processed"] == 100 * MIB
    assert s["memory_bps"] == 200 * MIB and s["memory_dirty_rate"] == 8 * MIB // 4096
    assert s["time_elapsed"] == 1500 and s["memory_iteration"] == 2 and s["downtime"] == 120


def test_completed_stats_carry_the_downtime():
    s = precopy.completed_job_stats(memory_mib=1024, processed_mib=700, downtime_ms=42.4, elapsed_s=3,
                                    iteration=4, bandwidth_mibs=100)
    assert s["type"] == libvirt.VIR_DOMAIN_JOB_COMPLETED and s["downtime"] == 42
    assert s["data_remaining"] == 0 and s["data_processed"] == 700 * MIB


def test_vm_round_trips_through_the_wire_form():
    vm = SimVm("a", "u", 2048, 4, 1200.5, 33.0, "linear")
    assert SimVm.from_wire(vm.to_wire()) == vm

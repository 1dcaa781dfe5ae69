"""Accelerator choice, the memtune workaround decision, workload guest specs."""
import resource

import pytest

from ferry.common.errors import InvalidInput
from ferry.common.memlock import CAP_SYS_RESOURCE, has_capability, memtune_workaround_kib
from ferry.lab.accel import choose_accel
from ferry.lab.guest import Workload, workload_cmdline, workload_spec


@pytest.mark.parametrize("dev,usable,pvm,expected", [
    (False, False, False, "tcg"),
    (True, False, False, "tcg"),
    (True, True, True, "tcg"),
    (True, True, False, "kvm"),
])
def test_choose_accel(dev, usable, pvm, expected):
    assert choose_accel(kvm_device=dev, kvm_usable=usable, pvm_module=pvm).accel == expected


def test_pvm_reason_is_explained_and_override_wins():
    assert "kvm_pvm" in choose_accel(kvm_device=True, kvm_usable=True, pvm_module=True).reason
    assert choose_accel(kvm_device=False, kvm_usable=False, pvm_module=False, override="kvm").accel == "kvm"
    with pytest.raises(InvalidInput) as info:
        choose_accel(kvm_device=True, kvm_usable=True, pvm_module=False, override="hvf")
    assert info.value.field == "FERRY_LAB_ACCEL"


def test_capability_parsing():
    # This machine's kind: every capability but CAP_SYS_RESOURCE (bit 24).
    status = "Name:\tx\nCapEff:\t000001fffeffffff\n"
    assert not has_capability(CAP_SYS_RESOURCE, status)
    assert has_capability(23, status) and has_capability(25, status)
    assert has_capability(CAP_SYS_RESOURCE, "CapEff:\t000001ffffffffff\n")
    assert not has_capability(CAP_SYS_RESOURCE, "no caps line")


def test_memtune_workaround_only_without_cap_sys_resource():
    assert memtune_workaround_kib(has_cap_sys_resource=False, memlock_hard_bytes=8 << 20) == 8192
    assert memtune_workaround_kib(has_cap_sys_resource=True, memlock_hard_bytes=8 << 20) is None
    assert memtune_workaround_kib(has_cap_sys_resource=False,
                                  memlock_hard_bytes=resource.RLIM_INFINITY) is None


def test_workload_spec_puts_parameters_on_the_kernel_command_line():
    spec = workload_spec(name="g", kernel="/i/vmlinuz", initrd="/i/initrd", accel="tcg",
                         memory_mib=1024, workload=Workload(850, 32, 128), memtune_hard_limit_kib=8192)
    assert "console=ttyS0" in spec.cmdline
    assert "ferry.fill=850 ferry.dirty=32 ferry.spot=128" in spec.cmdline
    assert spec.memtune_hard_limit_kib == 8192 and spec.accel == "tcg"
    assert workload_cmdline(Workload()).endswith("ferry.fill=64 ferry.dirty=0 ferry.spot=256")
    assert "ferry.cpubound" not in workload_cmdline(Workload())


def test_a_cpu_bound_workload_asks_the_guest_for_compute_bound_pacing():
    assert workload_cmdline(Workload(64, 40, cpu_bound=True)).endswith("ferry.spot=256 ferry.cpubound=1")


@pytest.mark.parametrize("field,workload,memory", [
    ("fill_mib", Workload(0), 1024),
    ("fill_mib", Workload(900), 1024),
    ("dirty_mib_s", Workload(64, -1), 1024),
    ("spot_pages", Workload(64, 0, -5), 1024),
])
def test_workload_spec_rejects_bad_sizes(field, workload, memory):
    with pytest.raises(InvalidInput) as info:
        workload_spec(name="g", kernel="/k", initrd="/i", accel="tcg", memory_mib=memory, workload=workload)
    assert info.value.field == field

"""Workload guests: the VmSpec of a lab guest from its size and workload parameters (pure)."""
from __future__ import annotations

from dataclasses import dataclass

from ferry.common.errors import InvalidInput
from ferry.common.vmspec import VmSpec

# Kernel, page tables, initramfs and the workload's own bookkeeping need room beside the fill.
MIN_HEADROOM_MIB = 128


@dataclass(frozen=True)
class Workload:
    """What the guest program does: fill MiB, dirty MiB/s, pages spot-checked per second, and
    whether it dirties like a compute-bound program (the CPU throttle slows it in proportion)
    rather than a rate-limited writer (which catches up on what a throttle held back)."""

    fill_mib: int = 64
    dirty_mib_s: int = 0
    spot_pages: int = 256
    cpu_bound: bool = False

    def cmdline_params(self) -> str:
        base = f"ferry.fill={self.fill_mib} ferry.dirty={self.dirty_mib_s} ferry.spot={self.spot_pages}"
        return base + (" ferry.cpubound=1" if self.cpu_bound else "")


def workload_cmdline(workload: Workload) -> str:
    """Serial console, quiet boot (TCG prints slowly), stop on panic, then the workload's own."""
    return f"console=ttyS0 quiet panic=-1 oops=panic {workload.cmdline_params()}"


def workload_spec(*, name: str, kernel: str, initrd: str, accel: str, memory_mib: int = 1024,
                  vcpus: int = 1, workload: Workload = Workload(),
                  memtune_hard_limit_kib: int | None = None, uuid: str | None = None) -> VmSpec:
    """The VmSpec of a lab workload guest, after checking the workload fits in its memory."""
    for fname, value, minimum in (("fill_mib", workload.fill_mib, 1),
                                  ("dirty_mib_s", workload.dirty_mib_s, 0),
                                  ("spot_pages", workload.spot_pages, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise InvalidInput(fname, f"must be an integer >= {minimum}, got {value!r}")
    if isinstance(memory_mib, int) and workload.fill_mib > memory_mib - MIN_HEADROOM_MIB:
        raise InvalidInput("fill_mib", f"{workload.fill_mib} MiB does not fit in a {memory_mib} MiB "
                                       f"guest (leave {MIN_HEADROOM_MIB} MiB for the kernel)")
    return VmSpec(name=name, uuid=uuid, memory_mib=memory_mib, vcpus=vcpus, kernel=kernel,
                  initrd=initrd, cmdline=workload_cmdline(workload), accel=accel,
                  memtune_hard_limit_kib=memtune_hard_limit_kib)

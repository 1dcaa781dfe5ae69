"""Where a VM runs and the state that goes with it (pure): a VM that runs has a host of its own
cluster; a DOWN one has none.

Why one module: the VMs repository derives the state it stores when a change gives none, and
the inventory use case checks a change against the same rule before anything is stored, so
the two can never disagree about what a change means. (Beside the records, not in
ferry.engine, because the repository imports it.)
"""
from __future__ import annotations

from ferry.common.errors import InvalidInput
from ferry.engine.db.records import VmStatus


def placed_status(*, has_host: bool, status: VmStatus | None, current: VmStatus | None) -> VmStatus:
    """The VM's status after a change: the one given; else, for a new VM (`current` None) or
    one whose host no longer goes with its state, UP with a host and DOWN without; else as it was."""
    if status is not None:
        return status
    if current is None or (not has_host) != (current is VmStatus.DOWN):
        return VmStatus.UP if has_host else VmStatus.DOWN
    return current


def host_cluster_error(host: str, host_cluster: str, vm_cluster: str) -> InvalidInput | None:
    """A VM runs only on a host of its own cluster."""
    if host_cluster != vm_cluster:
        return InvalidInput("host", f"host {host!r} is in cluster {host_cluster!r}, "
                                    f"not in the VM's cluster {vm_cluster!r}")
    return None


def status_error(status: VmStatus, has_host: bool) -> InvalidInput | None:
    """A DOWN VM runs on no host; any other runs on one."""
    if status is VmStatus.DOWN and has_host:
        return InvalidInput("status", "a VM that is DOWN runs on no host; clear its host too")
    if status is not VmStatus.DOWN and not has_host:
        return InvalidInput("host", f"a VM that is {status.value} must run on a host")
    return None

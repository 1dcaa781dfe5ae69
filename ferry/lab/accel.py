"""Which accelerator lab guests use: KVM where it can boot a stock kernel, TCG otherwise.

A `/dev/kvm` backed by the `kvm_pvm` module (page-table virtualization for nested sandboxes)
only runs PVM-enlightened guest kernels: a stock Debian kernel under it hangs in its
decompressor. So a PVM-backed or missing/unusable /dev/kvm means TCG. FERRY_LAB_ACCEL=tcg|kvm
overrides the choice (e.g. to force TCG on a KVM host for comparison).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ferry.common.errors import InvalidInput


@dataclass(frozen=True)
class AccelChoice:
    accel: str  # "kvm" or "tcg"
    reason: str


def choose_accel(*, kvm_device: bool, kvm_usable: bool, pvm_module: bool,
                 override: str | None = None) -> AccelChoice:
    """Pure decision from what the machine has."""
    if override:
        if override not in ("tcg", "kvm"):
            raise InvalidInput("FERRY_LAB_ACCEL", f"{override!r} is not 'tcg' or 'kvm'")
        return AccelChoice(override, f"FERRY_LAB_ACCEL={override}")
    if not kvm_device:
        return AccelChoice("tcg", "no /dev/kvm on this machine")
    if not kvm_usable:
        return AccelChoice("tcg", "/dev/kvm cannot be opened read-write")
    if pvm_module:
        return AccelChoice("tcg", "/dev/kvm is backed by kvm_pvm, which cannot boot a stock "
                                  "guest kernel")
    return AccelChoice("kvm", "/dev/kvm is a regular KVM device")


def detect_accel(env: dict[str, str] | None = None) -> AccelChoice:
    """Look at this machine and choose."""
    env = os.environ if env is None else env
    dev = Path("/dev/kvm")
    return choose_accel(
        kvm_device=dev.exists(),
        kvm_usable=dev.exists() and os.access(dev, os.R_OK | os.W_OK),
        pvm_module=Path("/sys/module/kvm_pvm").exists(),
        override=env.get("FERRY_LAB_ACCEL") or None,
    )

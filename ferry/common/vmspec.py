"""The VM spec: everything Ferry needs to define a direct-kernel-boot guest on a libvirt host.

One frozen dataclass shared by the host agent's `VM.create` and the lab's own libvirt-level
tests; `ferry.common.domain_xml.build_domain_xml(spec)` turns it into domain XML.

    VmSpec(name, memory_mib, vcpus, kernel, initrd=None, cmdline="", uuid=None,
           accel="tcg" | "kvm", memtune_hard_limit_kib=None, console_log=None,
           emulator="/usr/bin/qemu-system-x86_64", machine="pc")

- `uuid`: None means "derive one from the name" (stable, so re-creating a VM keeps its id).
- `console_log`: file the serial console is logged to, *as seen inside the host* (libvirt
  writes it; after a migration the destination host writes its own copy at the same path in
  its own namespace). None means `/var/log/libvirt/qemu/<name>-serial.log`.
- `memtune_hard_limit_kib`: put `<memtune><hard_limit>` in the XML. Needed for zero-copy
  migration on hosts where libvirt may not raise RLIMIT_MEMLOCK (see ferry.lab.memlock).

`VmSpec.from_dict` / `to_dict` map to plain JSON (the agent's `VM.create` parameters use the
same field names); every invalid field raises `InvalidInput(field, reason)`.
"""
from __future__ import annotations

import dataclasses
import re
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ferry.common.errors import InvalidInput

ACCELERATORS = ("tcg", "kvm")
DEFAULT_EMULATOR = "/usr/bin/qemu-system-x86_64"
CONSOLE_LOG_DIR = "/var/log/libvirt/qemu"
# libvirt accepts more, but these characters keep names safe in file paths and shell output.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_MACHINE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
# Stable namespace for name-derived UUIDs.
_UUID_NAMESPACE = uuidlib.UUID("5b0c3f4e-6a2d-4d8e-9a43-7f1e0c9d2b61")


def default_console_log(name: str) -> str:
    """Where a VM's serial console is logged inside its host when the spec does not say."""
    return f"{CONSOLE_LOG_DIR}/{name}-serial.log"


def uuid_for_name(name: str) -> str:
    """A stable UUID for a VM name, used when the spec gives none."""
    return str(uuidlib.uuid5(_UUID_NAMESPACE, name))


@dataclass(frozen=True)
class VmSpec:
    """A direct-kernel-boot VM: memory, vCPUs, kernel/initrd/cmdline, accelerator and limits."""

    name: str
    memory_mib: int
    vcpus: int
    kernel: str
    initrd: str | None = None
    cmdline: str = ""
    uuid: str | None = None
    accel: str = "tcg"
    memtune_hard_limit_kib: int | None = None
    console_log: str | None = None
    emulator: str = DEFAULT_EMULATOR
    machine: str = "pc"

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_int("memory_mib", self.memory_mib, minimum=16)
        _check_int("vcpus", self.vcpus, minimum=1, maximum=256)
        _check_abs_path("kernel", self.kernel)
        if self.initrd is not None:
            _check_abs_path("initrd", self.initrd)
        if not isinstance(self.cmdline, str):
            raise InvalidInput("cmdline", "must be a string")
        if "\n" in self.cmdline or "\x00" in self.cmdline:
            raise InvalidInput("cmdline", "must be one line without NUL characters")
        if self.uuid is not None:
            try:
                canonical = str(uuidlib.UUID(str(self.uuid)))
            except ValueError:
                raise InvalidInput("uuid", f"{self.uuid!r} is not a UUID") from None
            object.__setattr__(self, "uuid", canonical)
        if self.accel not in ACCELERATORS:
            raise InvalidInput("accel", f"{self.accel!r} is not one of {', '.join(ACCELERATORS)}")
        if self.memtune_hard_limit_kib is not None:
            _check_int("memtune_hard_limit_kib", self.memtune_hard_limit_kib, minimum=1)
        if self.console_log is not None:
            _check_abs_path("console_log", self.console_log)
        _check_abs_path("emulator", self.emulator)
        if not isinstance(self.machine, str) or not _MACHINE_RE.match(self.machine):
            raise InvalidInput("machine", f"{self.machine!r} is not a QEMU machine type name")

    @property
    def effective_uuid(self) -> str:
        """The spec's UUID, or the stable one derived from its name."""
        return self.uuid or uuid_for_name(self.name)

    @property
    def effective_console_log(self) -> str:
        """The serial console log path inside the host."""
        return self.console_log or default_console_log(self.name)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (field names as in the dataclass)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VmSpec:
        """Build a spec from plain JSON; unknown or missing fields are named in the error."""
        if not isinstance(data, Mapping):
            raise InvalidInput("vm", "must be an object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            # an empty key has no name of its own: the error names the spec itself
            raise InvalidInput(unknown[0] or "vm", f"unknown VM spec field {unknown[0]!r}")
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        for name in required:
            if name not in data:
                raise InvalidInput(name, "is required")
        return cls(**dict(data))


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidInput(
            "name", f"{name!r} must be 1-63 characters of letters, digits, '_', '.', '-', "
                    "starting with a letter or digit")


def _check_int(field: str, value: object, *, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"must be an integer, got {value!r}")
    if value < minimum:
        raise InvalidInput(field, f"must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise InvalidInput(field, f"must be at most {maximum}, got {value}")


def _check_abs_path(field: str, value: object) -> None:
    if not isinstance(value, str) or not value.startswith("/"):
        raise InvalidInput(field, f"must be an absolute path, got {value!r}")
    if "\n" in value or "\x00" in value:
        raise InvalidInput(field, "must not contain newlines or NUL characters")

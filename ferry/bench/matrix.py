"""The benchmark's run matrix: sizes × modes × dirty rates × repeats, and the order runs go in.

Pure. One guest is booted per (size, dirty rate) group and migrated back and forth, so the
expensive part (booting and filling a TCG guest) happens once per group. Within a group each
repeat measures, for every mode: the raw TCP throughput for the mode's stream count, then the
migration through Ferry and the same migration through bare virsh, in an order that alternates
with the repeat (Ferry first on even repeats, virsh first on odd ones), so slow drift of a
shared machine does not favour either side.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import product

from ferry.common.errors import InvalidInput

MIN_SIZE_MIB = 256
MAX_SIZE_MIB = 16384
MAX_DIRTY_MIB_S = 4096
MAX_REPEAT = 50
MAX_STREAMS = 255
FERRY, VIRSH = "ferry", "virsh"
DRIVERS = (FERRY, VIRSH)
MIGRATE, IPERF = "migrate", "iperf"

_MODE_RE = re.compile(r"^(plain|parallel(\d+)|zerocopy(\d+))$")


@dataclass(frozen=True, order=True)
class Mode:
    """How the migration moves memory: one connection, N parallel ones, or N zero-copy ones."""

    name: str
    parallel: int | None = None   # None: a single migration connection
    zerocopy: bool = False

    @property
    def streams(self) -> int:
        """TCP streams carrying guest memory (what the raw-throughput baseline uses)."""
        return self.parallel or 1

    def migrate_params(self) -> dict:
        """The mode's part of VM.migrate's parameters."""
        params: dict = {}
        if self.parallel:
            params["parallel"] = self.parallel
        if self.zerocopy:
            params["zerocopy"] = True
        return params


def parse_mode(text: str) -> Mode:
    """'plain', 'parallel4' or 'zerocopy4' -> Mode."""
    raw = text.strip().lower()
    m = _MODE_RE.match(raw)
    if not m:
        raise InvalidInput("modes", f"unknown mode {text!r} (use plain, parallelN or zerocopyN, e.g. parallel4)")
    if raw == "plain":
        return Mode("plain")
    n = int(m.group(2) or m.group(3))
    if not 1 <= n <= MAX_STREAMS:
        raise InvalidInput("modes", f"{text!r}: the connection count must be 1..{MAX_STREAMS}")
    return Mode(raw, parallel=n, zerocopy=raw.startswith("zerocopy"))


def _csv(text: str, field: str) -> list[str]:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(field, "needs at least one value (comma-separated)")
    items = [p.strip() for p in text.split(",")]
    if any(not p for p in items):
        raise InvalidInput(field, f"empty value in {text!r}")
    if len(set(items)) != len(items):
        raise InvalidInput(field, f"a value is listed twice in {text!r}")
    return items


def _ints(text: str, field: str, lo: int, hi: int, unit: str) -> list[int]:
    out = []
    for item in _csv(text, field):
        if not item.isdigit():
            raise InvalidInput(field, f"{item!r} is not a whole number of {unit}")
        value = int(item)
        if not lo <= value <= hi:
            raise InvalidInput(field, f"{value} is out of range {lo}..{hi} {unit}")
        out.append(value)
    return out


def parse_sizes(text: str) -> list[int]:
    return _ints(text, "sizes", MIN_SIZE_MIB, MAX_SIZE_MIB, "MiB")


def parse_dirty(text: str) -> list[int]:
    return _ints(text, "dirty", 0, MAX_DIRTY_MIB_S, "MiB/s")


def parse_modes(text: str) -> list[Mode]:
    return [parse_mode(m) for m in _csv(text, "modes")]


def check_repeat(repeat: int) -> int:
    if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
        raise InvalidInput("repeat", f"must be a whole number 1..{MAX_REPEAT}, got {repeat!r}")
    return repeat


def fill_mib(size_mib: int) -> int:
    """How much of a guest the workload fills: all but room for the kernel (>= 160 MiB or 10%)."""
    return size_mib - max(160, size_mib // 10)


@dataclass(frozen=True)
class Group:
    """One guest: its memory, how much the workload fills, and how fast it dirties memory."""

    size_mib: int
    dirty_mib_s: int

    @property
    def fill_mib(self) -> int:
        return fill_mib(self.size_mib)

    @property
    def key(self) -> str:
        return f"{self.size_mib}MiB/dirty{self.dirty_mib_s}"


@dataclass(frozen=True)
class Step:
    """One measurement: a migration by one driver, or a raw TCP throughput run."""

    kind: str                 # MIGRATE or IPERF
    group: Group
    mode: Mode
    repeat: int               # 0-based
    driver: str | None = None  # FERRY or VIRSH for a migration

    @property
    def label(self) -> str:
        what = f"iperf3 x{self.mode.streams}" if self.kind == IPERF else self.driver
        return f"{self.group.key} {self.mode.name} #{self.repeat + 1} {what}"


@dataclass(frozen=True)
class Matrix:
    sizes: tuple[int, ...]
    modes: tuple[Mode, ...]
    dirty: tuple[int, ...]
    repeat: int
    baselines: bool = True

    def __post_init__(self) -> None:
        check_repeat(self.repeat)
        for size, rate in product(self.sizes, self.dirty):
            if rate and rate * 2 > fill_mib(size):
                raise InvalidInput("dirty", f"{rate} MiB/s is too much for a {size} MiB guest "
                                            f"(it fills {fill_mib(size)} MiB; at most half that per second)")

    @property
    def groups(self) -> list[Group]:
        return [Group(s, d) for s, d in product(self.sizes, self.dirty)]

    def steps(self) -> list[Step]:
        """Every measurement in the order it runs (see the module docstring)."""
        out: list[Step] = []
        for group in self.groups:
            for r in range(self.repeat):
                for mode in self.modes:
                    if not self.baselines:
                        out.append(Step(MIGRATE, group, mode, r, FERRY))
                        continue
                    out.append(Step(IPERF, group, mode, r))
                    order = DRIVERS if r % 2 == 0 else tuple(reversed(DRIVERS))
                    out.extend(Step(MIGRATE, group, mode, r, d) for d in order)
        return out

    def migrations(self) -> int:
        return sum(1 for s in self.steps() if s.kind == MIGRATE)


def build_matrix(sizes: str, modes: str, dirty: str, repeat: int, baselines: bool = True) -> Matrix:
    """The matrix from the CLI's comma-separated options, every value checked."""
    return Matrix(tuple(parse_sizes(sizes)), tuple(parse_modes(modes)), tuple(parse_dirty(dirty)),
                  check_repeat(repeat), baselines)

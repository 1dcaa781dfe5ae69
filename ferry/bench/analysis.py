"""From a benchmark's raw records to the rows and headline ratios the report shows (pure).

- control-plane overhead: Ferry's wall time / bare virsh's, target <= 1.05x. A Ferry run is paired
  with the virsh run of the same configuration in the same direction (source -> destination host)
  nearest in order: the lab's two directions need not be equally fast, and the guest goes back and
  forth, so pairing by repeat would compare one direction with the other;
- migration efficiency: migration throughput / raw TCP throughput with the same stream count
  measured just before the pair, paired per repeat, target >= 0.9x.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ferry.bench.matrix import FERRY, IPERF, MIGRATE, VIRSH
from ferry.bench.qemu_threads import KINDS
from ferry.bench.stats import Summary, paired_ratios, summarize

OVERHEAD_TARGET = 1.05
EFFICIENCY_TARGET = 0.9


@dataclass
class DriverStats:
    runs: int
    failed: int
    verified: int
    wall_s: Summary | None
    total_s: Summary | None
    downtime_ms: Summary | None
    throughput_mib_s: Summary | None
    iterations: Summary | None
    cpu_source_s: Summary | None
    cpu_destination_s: Summary | None
    cpu_kinds: dict = field(default_factory=dict)    # side -> kind -> median seconds
    zerocopy_states: list = field(default_factory=list)
    missed_zero_copy: Summary | None = None
    flags: list = field(default_factory=list)
    errors: list = field(default_factory=list)


@dataclass
class ModeRow:
    size_mib: int
    dirty_mib_s: int
    mode: str
    streams: int
    ferry: DriverStats | None
    virsh: DriverStats | None
    raw_mib_s: Summary | None
    overhead: Summary | None          # Ferry/virsh wall-time ratios, paired in the same direction
    qemu_time_ratio: Summary | None   # the same pairs' QEMU migration-time ratios
    efficiency_ferry: Summary | None  # paired throughput / raw TCP
    efficiency_virsh: Summary | None


def _path(rec: dict, *keys):
    for k in keys:
        if rec is None:
            return None
        rec = rec.get(k)
    return rec


def _seconds(ms) -> float | None:
    return None if ms is None else ms / 1000.0


def driver_stats(recs: list[dict]) -> DriverStats | None:
    if not recs:
        return None
    ok = [r for r in recs if r["ok"]]
    kinds: dict = {}
    for side in ("source", "destination"):
        kinds[side] = {}
        for kind in KINDS:
            s = summarize(_path(r, "cpu", side, "by_kind", kind) for r in ok)
            kinds[side][kind] = s.median if s else None
    return DriverStats(
        runs=len(recs), failed=len(recs) - len(ok), verified=sum(1 for r in recs if r.get("verified")),
        wall_s=summarize(r["wall_s"] for r in ok),
        total_s=summarize(_seconds(_path(r, "figures", "total_ms")) for r in ok),
        downtime_ms=summarize(_path(r, "figures", "downtime_ms") for r in ok),
        throughput_mib_s=summarize(_path(r, "figures", "throughput_mib_s") for r in ok),
        iterations=summarize(_path(r, "figures", "iterations") for r in ok),
        cpu_source_s=summarize(_path(r, "cpu", "source", "total") for r in ok),
        cpu_destination_s=summarize(_path(r, "cpu", "destination", "total") for r in ok),
        cpu_kinds=kinds,
        zerocopy_states=sorted({r["zerocopy"]["state"] for r in ok if r.get("zerocopy")}),
        missed_zero_copy=summarize(_path(r, "zerocopy", "dirty_sync_missed_zero_copy") for r in ok),
        flags=sorted({" ".join(r.get("flags") or []) for r in recs}),
        errors=[r["error"] for r in recs if not r["ok"] and r.get("error")],
    )


def _by_repeat(recs: list[dict]) -> dict[int, dict]:
    return {r["repeat"]: r for r in recs}


def _direction(rec: dict) -> tuple:
    return rec.get("source"), rec.get("destination")


def same_direction_pairs(ferry: list[dict], virsh: list[dict]) -> list[tuple[dict, dict]]:
    """(Ferry run, virsh run) pairs: per direction, the k-th successful run of each, in run order."""
    pairs = []
    for d in dict.fromkeys(_direction(r) for r in ferry + virsh):
        fs = [r for r in ferry if _direction(r) == d and r["ok"]]
        vs = [r for r in virsh if _direction(r) == d and r["ok"]]
        pairs += list(zip(fs, vs))
    return pairs


def direction_ratios(ferry: list[dict], virsh: list[dict], value) -> list[float]:
    return paired_ratios((value(f), value(v)) for f, v in same_direction_pairs(ferry, virsh))


def mode_rows(records: list[dict]) -> list[ModeRow]:
    keys = []
    for r in records:
        k = (r["size_mib"], r["dirty_mib_s"], r["mode"])
        if k not in keys:
            keys.append(k)
    rows = []
    for size, dirty, mode in keys:
        mine = [r for r in records if (r["size_mib"], r["dirty_mib_s"], r["mode"]) == (size, dirty, mode)]
        ferry = [r for r in mine if r["kind"] == MIGRATE and r["driver"] == FERRY]
        virsh = [r for r in mine if r["kind"] == MIGRATE and r["driver"] == VIRSH]
        iperf = [r for r in mine if r["kind"] == IPERF]
        f_by, v_by, i_by = _by_repeat(ferry), _by_repeat(virsh), _by_repeat(iperf)

        def paired(a: dict, b: dict, fa, fb) -> list[float]:
            pairs = []
            for rep, ra in a.items():
                rb = b.get(rep)
                if rb is None or not ra.get("ok", True) or not rb.get("ok", True):
                    continue
                pairs.append((fa(ra), fb(rb)))
            return paired_ratios(pairs)

        def tput(r):
            return _path(r, "figures", "throughput_mib_s")

        def raw(r):
            return _path(r, "raw", "received_mib_s")

        streams = mine[0]["streams"]
        rows.append(ModeRow(
            size_mib=size, dirty_mib_s=dirty, mode=mode, streams=streams,
            ferry=driver_stats(ferry), virsh=driver_stats(virsh),
            raw_mib_s=summarize(raw(r) for r in iperf),
            overhead=summarize(direction_ratios(ferry, virsh, lambda r: r["wall_s"])),
            qemu_time_ratio=summarize(direction_ratios(ferry, virsh, lambda r: _path(r, "figures", "total_ms"))),
            efficiency_ferry=summarize(paired(f_by, i_by, tput, raw)),
            efficiency_virsh=summarize(paired(v_by, i_by, tput, raw)),
        ))
    return rows


@dataclass
class Headline:
    overhead: Summary | None          # every same-direction Ferry/virsh wall-time ratio of the run
    overhead_by_mode: dict            # mode -> Summary
    efficiency_by_mode: dict          # mode -> Summary of Ferry's paired efficiencies
    migrations: int
    failed: int
    verified: int


def headline(records: list[dict]) -> Headline:
    rows = mode_rows(records)
    migrations = [r for r in records if r["kind"] == MIGRATE]
    modes = list(dict.fromkeys(r.mode for r in rows))
    all_overheads: list[float] = []
    by_mode_o: dict = {}
    by_mode_e: dict = {}
    for mode in modes:
        o_vals, e_vals = [], []
        for size, dirty in dict.fromkeys((r.size_mib, r.dirty_mib_s) for r in rows):
            recs = [r for r in records if (r["size_mib"], r["dirty_mib_s"], r["mode"]) == (size, dirty, mode)]
            ferry = [r for r in recs if r["kind"] == MIGRATE and r["driver"] == FERRY]
            virsh = [r for r in recs if r["kind"] == MIGRATE and r["driver"] == VIRSH]
            i = _by_repeat([r for r in recs if r["kind"] == IPERF])
            o_vals += direction_ratios(ferry, virsh, lambda r: r["wall_s"])
            for fr in ferry:
                ir = i.get(fr["repeat"])
                if fr["ok"] and ir is not None:
                    e_vals += paired_ratios([(_path(fr, "figures", "throughput_mib_s"),
                                              _path(ir, "raw", "received_mib_s"))])
        all_overheads += o_vals
        by_mode_o[mode] = summarize(o_vals)
        by_mode_e[mode] = summarize(e_vals)
    return Headline(summarize(all_overheads), by_mode_o, by_mode_e, len(migrations),
                    sum(1 for r in migrations if not r["ok"]), sum(1 for r in migrations if r.get("verified")))


def direction_throughput(records: list[dict]) -> dict[str, dict]:
    """Per direction (source -> destination): throughput over every successful migration, and how
    many runs each driver made that way (a direction-balanced run has equal counts)."""
    out: dict[str, dict] = {}
    migrations = [r for r in records if r["kind"] == MIGRATE and r["ok"]]
    for d in dict.fromkeys(_direction(r) for r in migrations):
        mine = [r for r in migrations if _direction(r) == d]
        out[f"{d[0]} → {d[1]}"] = {
            "throughput_mib_s": summarize(_path(r, "figures", "throughput_mib_s") for r in mine),
            "runs": {drv: sum(1 for r in mine if r["driver"] == drv) for drv in (FERRY, VIRSH)},
        }
    return out

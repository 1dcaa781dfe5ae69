"""The terminal summary printed at the end of a benchmark (pure: lines from a result)."""
from __future__ import annotations

from ferry.bench.analysis import EFFICIENCY_TARGET, OVERHEAD_TARGET, headline, mode_rows
from ferry.bench.stats import verdict


def _t(s, fmt="{:.2f}") -> str:
    return s.text(fmt) if s else "-"


def _m(d: dict | None, fmt: str) -> str:
    return fmt.format(d["median"]) if d else "-"


def summary_lines(result: dict) -> list[str]:
    if result["kind"] == "policies":
        lines = [f"{'policy':28} {'outcome':16} {'time s':>16} {'downtime ms':>16} {'iterations':>12}"]
        for s in result["summary"]:
            outcome = f"{s['converged_runs']}/{s['runs']} converged" if s["converged_runs"] else \
                f"{s['aborted_runs']}/{s['runs']} aborted"
            t = _m(s["time_s"], "{:.1f}")
            d = _m(s["downtime_ms"], "{:.0f}")
            it = _m(s["iterations"], "{:.0f}")
            lines.append(f"{s['policy']:28} {outcome:16} {t:>16} {d:>16} {it:>12}")
        return lines
    recs = result["records"]
    lines = [f"{'config':28} {'driver':6} {'wall s':>18} {'QEMU s':>18} {'downtime ms':>16} {'MiB/s':>16} "
             f"{'verified':>8}"]
    for r in mode_rows(recs):
        cfg = f"{r.size_mib}MiB d{r.dirty_mib_s} {r.mode}"
        for name, ds in (("ferry", r.ferry), ("virsh", r.virsh)):
            if ds is None:
                continue
            lines.append(f"{cfg:28} {name:6} {_t(ds.wall_s):>18} {_t(ds.total_s):>18} "
                         f"{_t(ds.downtime_ms, '{:.0f}'):>16} {_t(ds.throughput_mib_s, '{:.0f}'):>16} "
                         f"{str(ds.verified) + '/' + str(ds.runs):>8}")
        if r.raw_mib_s:
            lines.append(f"{cfg:28} {'raw':6} {'':>18} {'':>18} {'':>16} {_t(r.raw_mib_s, '{:.0f}'):>16}")
    h = headline(recs)
    if h.overhead:
        lines.append(f"control-plane overhead (Ferry/virsh wall time): {h.overhead.text('{:.2f}x')} "
                     f"(target <= {OVERHEAD_TARGET}x: {verdict(h.overhead.median, OVERHEAD_TARGET, higher_is_better=False)})")
    for mode, s in h.efficiency_by_mode.items():
        if s:
            lines.append(f"efficiency {mode} (throughput / raw TCP): {s.text('{:.2f}x')} "
                         f"(target >= {EFFICIENCY_TARGET}x: {verdict(s.median, EFFICIENCY_TARGET, higher_is_better=True)})")
    lines.append(f"{h.migrations} migrations, {h.failed} failed, {h.verified} memory verified")
    return lines

"""The report of `ferry bench forecast`: errors of the forecast against what the lab did.

Pure analysis (`summarize`) and rendering (`render_section`): total-time error as |predicted -
actual| / actual over the runs where both ended, downtime error over the runs both call
converged, the confusion matrix of outcomes, the live ETA at 50% progress; then the section
is written into docs/benchmarks.md (replacing an earlier one, the rest left as it is) with a
scatter plot of predicted against actual total time.
"""
from __future__ import annotations

import json
from pathlib import Path

from ferry.bench.doc_blocks import markers, write_block
from ferry.bench.forecast_bench import OUTCOMES
from ferry.engine.forecasting import check_chunk
from ferry.forecast.model import SWITCHOVER_SYNCS, ForecastInputs, forecast

HEADING = "## Migration forecast against the lab"
ACTUAL_OUTCOMES = (*OUTCOMES, "failed")


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    xs = sorted(values)
    k = max(0, min(len(xs) - 1, round(q * (len(xs) - 1))))
    return xs[k]


def total_errors(runs: list[dict]) -> list[float]:
    """|predicted - actual| / actual of total time, where the forecast has a total."""
    out = []
    for r in runs:
        p, a = r["forecast"]["totalSeconds"], r["actual"]["wall_s"]
        if p is not None and a:
            out.append(abs(p - a) / a)
    return out


def downtime_errors(runs: list[dict]) -> list[float]:
    """|predicted - actual| ms of downtime, over runs forecast and measured as converged."""
    return [abs(r["forecast"]["downtimeMs"] - r["actual"]["downtime_ms"]) for r in runs
            if r["forecast"]["outcome"] == "converge" and r["actual"]["outcome"] == "converge"
            and r["forecast"]["downtimeMs"] is not None and r["actual"]["downtime_ms"] is not None]


def downtime_in_range(runs: list[dict]) -> tuple[int, int]:
    """(inside, of): runs whose measured downtime lies in the forecast's downtime range, over
    the runs with a range (forecast to converge or switch to post-copy) and a measured downtime."""
    both = [(r["forecast"].get("downtimeRangeMs") or {}, r["actual"]["downtime_ms"]) for r in runs
            if r["forecast"]["outcome"] == r["actual"]["outcome"] and r["actual"]["downtime_ms"] is not None]
    both = [(rng, dt) for rng, dt in both if rng.get("low") is not None and rng.get("high") is not None]
    return sum(1 for rng, dt in both if rng["low"] <= dt <= rng["high"]), len(both)


def confusion(runs: list[dict]) -> dict[str, dict[str, int]]:
    """{forecast outcome: {actual outcome: runs}}."""
    m = {p: dict.fromkeys(ACTUAL_OUTCOMES, 0) for p in OUTCOMES}
    for r in runs:
        m[r["forecast"]["outcome"]][r["actual"]["outcome"]] += 1
    return m


def eta_errors(runs: list[dict], key: str = "eta_s") -> list[float]:
    """|ETA - actual time left| / time left at 50% progress; key "before_eta_s": the ETA the
    engine computed on the same sample before it used the pre-migration rate and pass time."""
    out = []
    for r in runs:
        h = r.get("live_eta_at_50") or {}
        if h.get(key) is not None and h.get("actual_left_s"):
            out.append(abs(h[key] - h["actual_left_s"]) / h["actual_left_s"])
    return out


def reforecast(run: dict, final_mibs: float | None) -> dict:
    """The run's forecast again from the inputs it was made from, with the engine adapter's
    current physics (in-pass check, switch-over iterations, the final copy at `final_mibs`)."""
    inp = ForecastInputs.from_wire(run["inputs"])
    inp = ForecastInputs.from_wire({**inp.to_wire(), "checkChunkSeconds": check_chunk(inp.bandwidth_source),
                                    "switchoverSyncs": SWITCHOVER_SYNCS,
                                    "finalBandwidthMiBs": final_mibs if final_mibs and final_mibs > inp.bandwidth_mibs
                                    else None})
    fc = forecast(inp)
    return {"outcome": fc.outcome, "totalSeconds": fc.total_seconds, "downtimeMs": fc.downtime_ms,
            "downtimeRangeMs": {"low": fc.downtime_low_ms, "high": fc.downtime_high_ms},
            "iterations": fc.iterations, "range": {"low": fc.low, "high": fc.high}, "reason": fc.reason}


def final_speeds(migrate_result: dict) -> dict[tuple[str, str, str], float]:
    """{(mode, source, destination): median uncapped MiB/s} of Ferry's runs in a `ferry bench
    migrate` result: the final copy's speed per host pair (host names without the lab prefix)."""
    import statistics

    by: dict[tuple[str, str, str], list[float]] = {}
    for r in migrate_result.get("records", []):
        f = r.get("figures") or {}
        if r.get("kind") == "iperf" or not r.get("ok") or r.get("driver") != "ferry" or not f.get("throughput_mib_s"):
            continue
        key = (r["mode"], r["source"].rsplit("-", 1)[-1], r["destination"].rsplit("-", 1)[-1])
        by.setdefault(key, []).append(float(f["throughput_mib_s"]))
    return {k: statistics.median(v) for k, v in by.items()}


def reforecast_all(result: dict, speeds: dict[tuple[str, str, str], float]) -> dict:
    """Every run forecast again (`reforecast`), the final copy at its pair's and mode's speed."""
    def speed(r: dict) -> float | None:
        return speeds.get((r["case"]["mode"], r["source"].rsplit("-", 1)[-1], r["destination"].rsplit("-", 1)[-1]))
    return with_forecasts(result, [reforecast(r, speed(r)) for r in result["runs"]])


def with_forecasts(result: dict, forecasts: list[dict]) -> dict:
    return {**result, "runs": [{**r, "forecast": f} for r, f in zip(result["runs"], forecasts, strict=True)]}


def summarize(result: dict) -> dict:
    runs = result["runs"]
    te, de, ee = total_errors(runs), downtime_errors(runs), eta_errors(runs)
    right = sum(1 for r in runs if r["forecast"]["outcome"] == r["actual"]["outcome"])
    return {"runs": len(runs), "verified": sum(1 for r in runs if r["verified"]),
            "outcome_right": right, "total_error_median": _pct(te, 0.5), "total_error_p90": _pct(te, 0.9),
            "total_error_runs": len(te), "downtime_error_ms_median": _pct(de, 0.5),
            "downtime_error_ms_p90": _pct(de, 0.9), "downtime_runs": len(de),
            "eta_error_median": _pct(ee, 0.5), "eta_error_p90": _pct(ee, 0.9), "eta_runs": len(ee),
            "eta_before_median": _pct(eta_errors(runs, "before_eta_s"), 0.5),
            "eta_before_runs": len(eta_errors(runs, "before_eta_s")), "confusion": confusion(runs),
            "downtime_in_range": downtime_in_range(runs)}


def _f(x, fmt="{:.0%}") -> str:
    return "–" if x is None else fmt.format(x)


def summary_text(result: dict) -> str:
    s = summarize(result)
    return (f"{s['runs']} runs, outcome right in {s['outcome_right']}/{s['runs']}; total-time |error| median "
            f"{_f(s['total_error_median'])}, p90 {_f(s['total_error_p90'])} ({s['total_error_runs']} runs); "
            f"downtime |error| median {_f(s['downtime_error_ms_median'], '{:.0f} ms')} ({s['downtime_runs']} runs), "
            f"inside the range {s['downtime_in_range'][0]}/{s['downtime_in_range'][1]}; "
            f"live ETA at 50% |error| median {_f(s['eta_error_median'])} ({s['eta_runs']} runs); "
            f"memory verified {s['verified']}/{s['runs']}")


def render_section(result: dict, plot: str | None, notes: list[str] = (), heading: str = HEADING) -> str:
    s = summarize(result)
    m = result["machine"] if isinstance(result.get("machine"), dict) else {}
    lines = [heading, "",
             f"- Run {result['started_at'][:19]}Z – {result['ended_at'][:19]}Z by `ferry bench forecast`"
             + (" (issue 14's full matrix)." if result.get("full_matrix") else
                f": a **reduced matrix** of {s['runs']} cases chosen with `--case`, not issue 14's full one "
                "(sizes 512-8192 MiB, touched 20-95%, dirty 0-1.2x the cap, caps 30-1000 MiB/s, plain/parallel/"
                "zero-copy, four policies: thousands of migrations, far too long for one session on a shared 2-core "
                "machine)."),
             f"- Machine: {m.get('cores', '?')} cores, load average at start {m.get('load_avg_at_start', '?')} "
             f"(shared with other work); QEMU {m.get('qemu', '?')}, libvirt {m.get('libvirt', '?')}, accelerator "
             f"{m.get('accelerator', '?')}; lab {m.get('lab_id', '?')}: {', '.join(m.get('lab_hosts') or [])}.",
             f"- Each run: the engine plans with the run's policy and cap, the source agent measures the dirty "
             f"rate (VM.getDirtyRate, page sampling, {result['dirty_seconds']} s, bias-corrected), the engine "
             f"forecasts (pattern `{result['pattern']}`: the lab's workload rewrites uniformly random pages of its "
             "fill), then migrates; actual time is the benchmark's wall time of the migration request to the end "
             "the engine records. Nothing is fitted to these runs. Bandwidth used: "
             + _sources(result["runs"]) + ".",
             "",
             "| measure | target | measured |", "|---|---|---|",
             f"| total time, median abs. error | ≤ 10% | {_f(s['total_error_median'])} ({s['total_error_runs']} runs) |",
             f"| total time, p90 abs. error | ≤ 20% | {_f(s['total_error_p90'])} |",
             f"| outcome right | ≥ 95% | {s['outcome_right']}/{s['runs']} |",
             f"| downtime abs. error, median (p90) | – | {_f(s['downtime_error_ms_median'], '{:.0f} ms')} "
             f"({_f(s['downtime_error_ms_p90'], '{:.0f} ms')}; {s['downtime_runs']} runs converged in both) |",
             f"| measured downtime inside the forecast's range | – | {s['downtime_in_range'][0]}/"
             f"{s['downtime_in_range'][1]} (runs with the outcome right and a downtime) |",
             f"| live ETA at 50% progress, median abs. error | ≤ ±10% | {_f(s['eta_error_median'])} "
             f"(p90 {_f(s['eta_error_p90'])}; {s['eta_runs']} runs) |",
             *([f"| the same, as the ETA was computed before (same samples) | – | {_f(s['eta_before_median'])} "
                f"({s['eta_before_runs']} runs) |"] if s["eta_before_runs"] else []),
             f"| memory verified | all | {s['verified']}/{s['runs']} |", "",
             "Confusion matrix (rows: forecast, columns: what the lab did):", "",
             "| forecast \\ actual | " + " | ".join(ACTUAL_OUTCOMES) + " |",
             "|---|" + "---|" * len(ACTUAL_OUTCOMES)]
    for p, row in s["confusion"].items():
        lines.append(f"| {p} | " + " | ".join(str(row[a]) for a in ACTUAL_OUTCOMES) + " |")
    lines += ["", "| case | forecast | actual | iterations f/a | downtime ms f/a | dirty MiB/s measured→used |",
              "|---|---|---|---|---|---|"]
    for r in result["runs"]:
        c, f, a, i = r["case"], r["forecast"], r["actual"], r.get("inputs") or {}
        total = "never" if f["totalSeconds"] is None else f"{f['totalSeconds']:.1f} s"
        lines.append(f"| {c['size_mib']} MiB, {c['touched_pct']}%, dirty {c['dirty_mib_s']}, cap {c['cap_mib_s']}, "
                     f"{c['mode']}, {c['policy']} | {f['outcome']} {total} | {a['outcome']} {a['wall_s']:.1f} s | "
                     f"{f['iterations']}/{a['iterations'] if a['iterations'] is not None else '–'} | "
                     f"{_f(f['downtimeMs'], '{:.0f}')}{_range(f.get('downtimeRangeMs'))}/"
                     f"{_f(a['downtime_ms'], '{:.0f}')} | "
                     f"{_f(i.get('dirtyRateMiBs'), '{:.1f}')} (touched {_f(i.get('touchedMiB'), '{:.0f}')} MiB) |")
    lines += ["", *notes]
    if plot:
        lines += ["", f"![Forecast vs actual]({plot})"]
    return "\n".join(lines) + "\n"


def _range(rng: dict | None) -> str:
    if not rng or rng.get("low") is None or rng.get("high") is None:
        return ""
    return f" [{rng['low']:.0f}–{rng['high']:.0f}]"


def _sources(runs: list[dict]) -> str:
    """Where the runs' forecast bandwidth came from, e.g. 'cap 8, measured 2 (final copy at the
    pair's measured speed in 9)'."""
    count: dict[str, int] = {}
    final = 0
    for r in runs:
        i = r.get("inputs") or {}
        count[i.get("bandwidthSource") or "?"] = count.get(i.get("bandwidthSource") or "?", 0) + 1
        final += 1 if i.get("finalBandwidthMiBs") else 0
    parts = ", ".join(f"{k} in {v}" for k, v in sorted(count.items()))
    return parts + (f" (the final copy at the pair's measured speed in {final})" if final else "")


def plot_scatter(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    colors = {"converge": "tab:green", "abort": "tab:red", "postcopy": "tab:blue", "failed": "black"}
    top = 1.0
    for r in result["runs"]:
        p, a = r["forecast"]["totalSeconds"], r["actual"]["wall_s"]
        marker = "o" if r["forecast"]["outcome"] == r["actual"]["outcome"] else "x"
        y = p if p is not None else a * 2
        top = max(top, a, y)
        ax.scatter([a], [y], c=colors.get(r["actual"]["outcome"], "grey"), marker=marker)
    ax.plot([0, top * 1.05], [0, top * 1.05], "k--", lw=0.8)
    ax.set_xlabel("actual total time, s (colour: actual outcome)")
    ax.set_ylabel("forecast total time, s (x: outcome wrong)")
    ax.set_title("Forecast vs lab")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(result: dict, path: Path) -> None:
    """The confusion matrix of outcomes as a picture: forecast rows, actual columns, counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conf = confusion(result["runs"])
    rows = list(conf)
    grid = [[conf[p][a] for a in ACTUAL_OUTCOMES] for p in rows]
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.imshow(grid, cmap="Greens")
    ax.set_xticks(range(len(ACTUAL_OUTCOMES)), ACTUAL_OUTCOMES)
    ax.set_yticks(range(len(rows)), rows)
    for i, row in enumerate(grid):
        for j, n in enumerate(row):
            ax.text(j, i, str(n), ha="center", va="center")
    ax.set_xlabel("what the lab did")
    ax.set_ylabel("forecast")
    ax.set_title("Outcomes")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


BEGIN, END = markers("forecast")


def write_forecast_report(report: str | Path, result: dict, notes: list[str] = (),
                          second: tuple[str, dict, list[str]] | None = None, name: str = "forecast",
                          extra: str = "") -> Path:
    """Raw JSON beside the report (`name`.json), the scatter plot, and the section put into the
    report between its markers (or, in a report written before them, from its heading to the
    next section or marker), the rest left as it is; `second` (heading, result, notes) adds a
    subsection for the same runs forecast again; `extra` is markdown appended to the section."""
    report = Path(report)
    data_dir = report.parent / report.stem
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / f"{name}.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    plot = None
    try:
        plot_scatter(result, data_dir / f"{name}.png")
        plot = f"{data_dir.name}/{name}.png"
    except ImportError:
        pass
    section = render_section(result, plot, list(notes))
    try:
        plot_confusion(result, data_dir / f"{name}-confusion.png")
        section += f"\n![Confusion matrix of outcomes]({data_dir.name}/{name}-confusion.png)\n"
    except ImportError:
        pass
    if second is not None:
        heading, again, again_notes = second
        try:
            plot_scatter(again, data_dir / f"{name}-second.png")
            plot2 = f"{data_dir.name}/{name}-second.png"
        except ImportError:
            plot2 = None
        section += "\n" + render_section(again, plot2, again_notes, heading=heading)
    if extra:
        section += "\n" + extra.rstrip("\n") + "\n"
    write_block(report, "forecast", section, adopt_heading=HEADING)
    return report



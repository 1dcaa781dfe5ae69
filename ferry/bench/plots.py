"""PNG plots for docs/benchmarks.md, drawn with matplotlib (the `bench` extra) from analysed rows.

Bars are medians; whiskers span min–max of the repeats.
"""
from __future__ import annotations

from pathlib import Path

from ferry.bench.analysis import ModeRow
from ferry.bench.qemu_threads import KINDS
from ferry.bench.stats import Summary
from ferry.common.errors import OperationFailed

COLORS = {"ferry": "#1f6fb4", "virsh": "#e07b24", "raw": "#7a7a7a"}
KIND_COLORS = {"main": "#4c72b0", "mig": "#55a868", "send": "#c44e52", "recv": "#8172b2",
               "vcpu": "#ccb974", "other": "#64b5cd"}


def _plt():
    try:
        import matplotlib
    except ImportError:
        raise OperationFailed("plots need matplotlib: pip install -e '.[bench]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(row: ModeRow) -> str:
    return f"{row.size_mib} MiB\ndirty {row.dirty_mib_s}\n{row.mode}"


def _bar(ax, xs, summaries: list[Summary | None], width, offset, color, label):
    heights = [s.median if s else 0 for s in summaries]
    lo = [s.median - s.minimum if s else 0 for s in summaries]
    hi = [s.maximum - s.median if s else 0 for s in summaries]
    ax.bar([x + offset for x in xs], heights, width, yerr=[lo, hi], capsize=3, color=color, label=label)


def _stat(ds, attr):
    return getattr(ds, attr) if ds is not None else None


def plot_times(rows: list[ModeRow], path: Path) -> Path:
    plt = _plt()
    fig, axes = plt.subplots(3, 1, figsize=(max(8, 0.9 * len(rows) + 2), 11))
    xs = list(range(len(rows)))
    for ax, attr, title, unit in ((axes[0], "wall_s", "Wall time (request → done)", "s"),
                                  (axes[1], "total_s", "QEMU migration time", "s"),
                                  (axes[2], "downtime_ms", "Downtime", "ms")):
        _bar(ax, xs, [_stat(r.ferry, attr) for r in rows], 0.38, -0.2, COLORS["ferry"], "Ferry")
        _bar(ax, xs, [_stat(r.virsh, attr) for r in rows], 0.38, 0.2, COLORS["virsh"], "bare virsh")
        ax.set_title(title)
        ax.set_ylabel(unit)
        ax.set_xticks(xs, [_label(r) for r in rows], fontsize=7)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_throughput(rows: list[ModeRow], path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(rows) + 2), 4.6))
    xs = list(range(len(rows)))
    _bar(ax, xs, [_stat(r.ferry, "throughput_mib_s") for r in rows], 0.27, -0.28, COLORS["ferry"], "Ferry migration")
    _bar(ax, xs, [_stat(r.virsh, "throughput_mib_s") for r in rows], 0.27, 0.0, COLORS["virsh"], "bare virsh migration")
    _bar(ax, xs, [r.raw_mib_s for r in rows], 0.27, 0.28, COLORS["raw"], "raw TCP (iperf3, same streams)")
    ax.set_ylabel("MiB/s")
    ax.set_title("Migration throughput vs the lab network's raw TCP throughput")
    ax.set_xticks(xs, [_label(r) for r in rows], fontsize=7)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_cpu(rows: list[ModeRow], path: Path) -> Path:
    """Stacked CPU seconds by thread kind, source and destination QEMU, Ferry's runs."""
    plt = _plt()
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 0.9 * len(rows) + 2), 8), sharey=True)
    xs = list(range(len(rows)))
    for ax, side in zip(axes, ("source", "destination")):
        bottom = [0.0] * len(rows)
        for kind in KINDS:
            vals = [((r.ferry.cpu_kinds.get(side) or {}).get(kind) or 0.0) if r.ferry else 0.0 for r in rows]
            if not any(vals):
                continue
            ax.bar(xs, vals, 0.6, bottom=bottom, color=KIND_COLORS[kind], label=kind)
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_title(f"{side} QEMU CPU seconds (Ferry runs, medians)")
        ax.set_xticks(xs, [_label(r) for r in rows], fontsize=7)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("CPU s")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_policies(rows: list[dict], path: Path) -> Path:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    names = [r["policy"] for r in rows]
    xs = list(range(len(rows)))
    colors = ["#3a9a4a" if r["converged_runs"] == r["runs"] else ("#c0392b" if r["converged_runs"] == 0 else "#d4a017")
              for r in rows]
    axes[0].bar(xs, [r["time_s"]["median"] if r["time_s"] else 0 for r in rows], 0.6, color=colors)
    axes[0].set_title("Time until converged (green) or aborted (red)")
    axes[0].set_ylabel("s")
    axes[1].bar(xs, [r["downtime_ms"]["median"] if r["downtime_ms"] else 0 for r in rows], 0.6, color=colors)
    axes[1].set_title("Downtime of converged runs")
    axes[1].set_ylabel("ms")
    for ax in axes:
        ax.set_xticks(xs, names, fontsize=8, rotation=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_policy_matrix(runs: list[dict], path: Path) -> Path:
    """Time (top) and downtime (bottom) per workload, one bar per policy; hatched = aborted."""
    plt = _plt()
    keys = list(dict.fromkeys((r["memory_mib"], r["dirty_mib_s"], r.get("cap_mib_s"), bool(r.get("doomed")))
                              for r in runs))
    policies = list(dict.fromkeys(r["policy"] for r in runs))
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 1.2 * len(keys) + 3), 7), sharex=True)
    width = 0.8 / max(1, len(policies))
    cmap = plt.get_cmap("tab10")
    for j, policy in enumerate(policies):
        xs, ts, ds, hatch = [], [], [], []
        for i, k in enumerate(keys):
            rs = [r for r in runs if r["policy"] == policy and
                  (r["memory_mib"], r["dirty_mib_s"], r.get("cap_mib_s"), bool(r.get("doomed"))) == k]
            if not rs:
                continue
            r = rs[0]
            xs.append(i + (j - (len(policies) - 1) / 2) * width)
            ts.append(r["wall_s"])
            d = (r.get("figures") or {}).get("downtime_ms") or r.get("agent_downtime_ms")
            ds.append(d if r["outcome"] == "converged" and d is not None else 0)
            hatch.append(r["outcome"] != "converged")
        bars = axes[0].bar(xs, ts, width, color=cmap(j), label=policy)
        for b, h in zip(bars, hatch, strict=True):
            if h:
                b.set_hatch("//")
                b.set_alpha(0.55)
        axes[1].bar(xs, ds, width, color=cmap(j))
    axes[0].set_ylabel("time s (hatched: aborted)")
    axes[0].legend(fontsize=7, ncol=3)
    axes[1].set_ylabel("downtime ms (converged)")
    axes[1].set_xticks(range(len(keys)), [f"{m} MiB\n{d} MiB/s / {c}{chr(10) + 'doomed' if dm else ''}"
                                          for m, d, c, dm in keys], fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

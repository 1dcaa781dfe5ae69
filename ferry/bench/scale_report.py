"""The scale section of docs/benchmarks.md: a table per run, the targets, and the growth plot.

`ferry bench scale --report docs/benchmarks.md --label L` stores its JSON as
docs/benchmarks/scale-L.json, draws docs/benchmarks/scale.png from every stored run, and
puts the section into the report as its own block (ferry.bench.doc_blocks: replaced in place, or
appended the first time), so the other sections around it are left as they are.
"""
from __future__ import annotations

import json
from pathlib import Path

from ferry.bench.doc_blocks import markers, write_block
from ferry.bench.scale_failover import section as failover_section

BEGIN, END = markers("scale")
TARGETS = {"period": 10.0, "cpu": 1.0, "p95": 200.0, "plan": 2.0}


def _get(d: dict, *keys, default=None):  # noqa: ANN001, ANN202
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def _fmt(x, spec: str = "{:.1f}") -> str:  # noqa: ANN001
    return "–" if x is None else spec.format(x)


def _period(size: dict) -> float | None:
    """The refresh period a host sees: the mean one, or the worst gap if that is longer."""
    r = size.get("refresh") or {}
    if r.get("hosts_not_refreshed"):
        return r.get("mean_period_s")
    return max(x for x in (r.get("mean_period_s"), r.get("worst_gap_s")) if x is not None) if r else None


def cpu_ms_per_refresh(refresh: dict) -> float | None:
    """Engine CPU per host refresh (ms): what the engine spends, whatever CPU it was given."""
    rate, cores = refresh.get("refreshes_per_s"), refresh.get("engine_cpu_cores")
    return None if not rate or cores is None else cores / rate * 1000


def run_table(run: dict) -> list[str]:
    out = [f"### Run `{run['label']}` ({run['at']}; monitor interval {run['monitor_interval_s']:g} s, "
           f"window {run['window_s']:g} s, drain planner: {run.get('planner', '?')})", "",
           "| hosts | VMs | refreshes/s | mean period s | worst gap s | not refreshed in window | engine CPU cores "
           "| engine CPU ms per refresh | cores for every host every 10 s | API p50 ms | API p95 ms | API errors "
           "| drain plan s | per-request plan est. s | import s |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in run["sizes"]:
        r, a, p = s.get("refresh", {}), s.get("api", {}), s.get("planning", {})
        sample = s.get("planning_per_vm_sample", {})
        plan = _fmt(p.get("seconds"), "{:.2f}") if "seconds" in p else f"failed: {p.get('error', '?')[:60]}"
        if "first_s" in p:
            plan += f" (first {p['first_s']:.2f})"
        est = _fmt(sample.get("estimate_for_drain_s")) if "seconds" in sample else "–"
        per = cpu_ms_per_refresh(r)
        out.append(f"| {s['hosts']} | {s['vms']} | {_fmt(r.get('refreshes_per_s'), '{:.2f}')} | "
                   f"{_fmt(r.get('mean_period_s'))} | {_fmt(r.get('worst_gap_s'))} | "
                   f"{r.get('hosts_not_refreshed', '–')} | {_fmt(r.get('engine_cpu_cores'), '{:.2f}')} | "
                   f"{_fmt(per, '{:.0f}')} | {_fmt(None if per is None else per * s['hosts'] / 10 / 1000)} | "
                   f"{_fmt(a.get('p50_ms'))} | {_fmt(a.get('p95_ms'))} | {a.get('errors', '–')} | {plan} | {est} | "
                   f"{_fmt(s.get('import_s'))} |")
    return out + [""]


def render(runs: list[dict], plot_name: str | None) -> str:
    out = ["## Engine at fleet scale (simulated hosts, PostgreSQL)", "",
           "`ferry bench scale`: a real engine process on a throw-away PostgreSQL server against "
           "250..2,000 simulated hosts (`ferry lab sim`: the real agent and its JSON-RPC server over mutual "
           "TLS, on a time-driven libvirt stand-in), 20 VMs each. Targets (issue 18): every host refreshed at "
           "least every 10 s, engine CPU <= 1 core, API p95 < 200 ms with 50 concurrent clients (bounded "
           "loops of GETs of one host, one VM, the last migrations and events), a drain of 100 hosts "
           "(2,000 VMs) planned in <= 2 s. The machine has 2 cores shared with the simulated hosts "
           "themselves and with other work, so the simulator competes with the engine for CPU.", "",
           "\"Drain plan\" is the bulk plan (ferry.engine.services.bulk_planning): one migration for every "
           "VM on 100 hosts (destination choice with those hosts excluded, then the planner); \"per-request\" "
           "is the same through the path a REST request takes, timed on the 20 VMs of one host and scaled by 100.", ""]
    for run in runs:
        out += run_table(run)
    out += ["What changed between the runs, and why (measured first, then fixed):", "",
            "- `before`: the host monitor refreshed one host at a time, each over three fresh TLS connections, "
            "and read every VM of the cluster for every host's refresh (40,000 rows per host at 2,000 hosts); "
            "most hosts were never refreshed within the window at any size.",
            "- `after`: a bounded pool of 16 refresh threads (one lock per host), one kept-alive connection "
            "per agent (`ferry.engine.agent_pool`), and only the VMs a host's answer can change; a drain "
            "planned in one pass (`ferry.engine.destination.assign_destinations`: the destination rule over "
            "a heap, counting the VMs planned before it, which the per-request path does not: its 100-VM sample sends them "
            "all to one host), and each VM's and host's cluster and host loaded with the row in the "
            "repositories (one query per list, not one per row).",
            "- `per-agent`: py-spy on the engine at 500 hosts showed refresh threads queued on httpcore's "
            "pool lock, which on every request polls each pooled socket (2,000 at 2,000 hosts), and on a "
            "5 + 10 connection database pool shared with the API. Now each agent has its own kept-alive "
            "connection (a dict lookup, no shared lock), the loop reads a narrow schedule instead of every "
            "host's capabilities each second, a loop refresh skips one read transaction, the PostgreSQL pool "
            "is 24 + 24 and 32 refresh threads overlap their round trips. At 500 hosts in a 20 s window: "
            "3.65 -> 53.4 refreshes/s, 68 -> 10 ms of engine CPU per refresh. A drain's VMs are read in one "
            "query (not one per drained host), and VM lists load only their host's and cluster's names (a "
            "host row carries the agent's capabilities and stats as JSON): cProfile at 2,000 hosts, "
            "planning 20.6 -> 7.3 s on the loaded machine.",
            "- `batched`: py-spy on the engine at 500 hosts (monitor only) showed most of its CPU in recording "
            "answers: a transaction per host of about eight round trips (pool ping, the host row and its "
            "cluster, the update, the active migrations, the host's VMs as full ORM objects, commit). Now "
            "refresh threads only ask the agents, and one writer thread records the answers in batches "
            "(`ferry.engine.monitor_batch`: the hosts' ids and statuses in one narrow query, one executemany "
            "update, the active migrations once, the batch's VMs as name/UUID/host/status in one query; "
            "same rules, a unit test checks a batch ends as one-by-one recording would). Probe at 500 hosts, "
            "98 refreshes/s: engine CPU 0.70 -> 0.12 cores. REST reads: the token check and plain GETs run "
            "outside a transaction on PostgreSQL (READ COMMITTED reads the same; BEGIN and COMMIT were two of "
            "about nine round trips), a host's or VM's cluster and host names come in the same query, and the "
            "pool pings only a connection idle 10 s or more (pool_pre_ping was a round trip per checkout). "
            "Drain plans are now timed four times (`first`, then the median of three): the earlier runs' "
            "2.4-4.6 s below 2,000 hosts against 1.35 s at 2,000 were single plans in the bench process "
            "while the engine took 0.56-0.83 of the 2 cores at load 11-23; cProfile at 500 hosts finds no "
            "cost that shrinks with the fleet (2,000 plan_migration calls, one read of the hosts and one of "
            "the drained VMs), so the spread was the CPU left over, and it narrows now the engine takes less. "
            "Run `batched` started at load 2.3 and ended at 12.4 (other work on the machine during the 2,000-host "
            "size): up to 1,000 hosts every host is refreshed within 6.1 s at 0.07-0.25 engine cores; at 2,000 "
            "every host is refreshed but the worst gap is 13.3 s with the engine at 0.52 cores (not CPU-bound: "
            "not yet found where it waits). API p95 is 429-851 ms (was 2.7-3.6 s), still above 200 ms: without "
            "the monitor the API alone served 166 requests/s at 0.71 cores (500 hosts), about 4 ms of engine CPU "
            "each, so 50 closed-loop clients wait ~300 ms.", ""]
    if plot_name:
        out += [f"![cost against hosts]({plot_name})", ""]
    return "\n".join(out) + "\n"


def plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    panels = [("refresh period (s)", _period, "period"),
              ("engine CPU (cores)", lambda s: _get(s, "refresh", "engine_cpu_cores"), "cpu"),
              ("API p95 (ms), 50 clients", lambda s: _get(s, "api", "p95_ms"), "p95"),
              ("drain planning, 2,000 VMs (s)", lambda s: _get(s, "planning", "seconds"), "plan")]
    for ax, (title, value, target) in zip(axes.flat, panels, strict=True):
        for run in runs:
            xs = [s["hosts"] for s in run["sizes"] if value(s) is not None]
            ys = [value(s) for s in run["sizes"] if value(s) is not None]
            if xs:
                ax.plot(xs, ys, marker="o", label=run["label"])
        ax.axhline(TARGETS[target], color="red", linestyle=":", label="target")
        ax.set_title(title)
        ax.set_xlabel("simulated hosts")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_scale_report(report: Path, result: dict) -> Path:
    data_dir = report.parent / report.stem
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / f"scale-{result['label']}.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    runs = sorted((json.loads(p.read_text()) for p in data_dir.glob("scale-*.json")), key=lambda r: r["at"])
    plot(runs, data_dir / "scale.png")
    section = render(runs, f"{data_dir.name}/scale.png") + "\n".join(failover_section(data_dir)) + "\n"
    write_block(report, "scale", section)
    return report

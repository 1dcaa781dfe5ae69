"""`ferry bench scale`: the engine on PostgreSQL against 250..2,000 simulated hosts (ferry.bench.scale)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import click


@click.command("scale")
@click.option("--sizes", default="250,500,1000,2000", show_default=True, help="Simulated host counts (20 VMs each).")
@click.option("--window", "window_s", default=30.0, show_default=True, type=click.FloatRange(10, 600),
              help="Seconds over which refreshes and engine CPU are measured, per size.")
@click.option("--label", default="run", show_default=True, help="Name of this run in the report (e.g. before, after).")
@click.option("--planner", type=click.Choice(["per-vm", "batch"]), default="batch", show_default=True,
              help="per-vm: one destination choice and plan per VM as 2,000 REST requests would; "
                   "batch: the engine's batch planning.")
@click.option("--report", type=click.Path(dir_okay=False), default=None,
              help="Write the scale section of this report (e.g. docs/benchmarks.md), its plot and JSON.")
@click.option("--lab-id", type=click.IntRange(0, 9), default=None, help="Lab 0..9 (default: $FERRY_LAB_ID or 0).")
def scale_cmd(sizes: str, window_s: float, label: str, planner: str, report: str | None, lab_id: int | None) -> None:
    """Engine at fleet scale: refresh period, CPU, API p95, drain planning time per size."""
    from ferry.bench import scale
    from ferry.common.errors import InvalidInput

    try:
        counts = tuple(int(s) for s in sizes.split(",") if s.strip())
    except ValueError:
        raise InvalidInput("--sizes", f"must be comma-separated host counts, got {sizes!r}") from None
    if not counts or any(n < 101 for n in counts):
        raise InvalidInput("--sizes", "each size must be above 100 (a drain of 100 hosts needs somewhere to go)")
    lab = lab_id if lab_id is not None else int(os.environ.get("FERRY_LAB_ID") or 0)
    plan_all = scale.plan_drain_per_vm if planner == "per-vm" else scale.plan_drain_batch
    work = Path(os.environ.get("FERRY_STATE_DIR") or "/var/lib/ferry") / "bench-scale"
    result = scale.run_scale(counts, lab=lab, window_s=window_s, label=label, work_dir=work, plan_all=plan_all,
                             progress=lambda m: click.echo(m, err=True))
    result["planner"] = planner
    if report:
        from ferry.bench.scale_report import write_scale_report

        click.echo(f"wrote {write_scale_report(Path(report), result)}", err=True)
    click.echo(json.dumps(result, indent=1))

"""`ferry bench migrate` and `ferry bench policies`: real migrations on the lab, measured.

Both need a lab with two hosts up (`ferry lab up`); they print one line per run as they go
(to stderr), then a summary table, or the raw result with --json, and with --report they
(re)write docs/benchmarks.md with its plots.
"""
from __future__ import annotations

import json
import sys

import click


def _progress(msg: str) -> None:
    click.echo(msg, err=True)


def _lab(lab_id: int | None):
    from ferry.lab import Lab

    return Lab(lab_id)


@click.group("bench")
def bench() -> None:
    """Benchmarks on the lab: Ferry vs bare virsh vs raw TCP, and convergence per policy."""


@bench.command("migrate")
@click.option("--sizes", default="1024,4096", show_default=True, help="Guest memory sizes, MiB.")
@click.option("--modes", default="plain,parallel4,zerocopy4", show_default=True,
              help="plain, parallelN (N connections) or zerocopyN (N zero-copy connections).")
@click.option("--dirty", default="0,32", show_default=True, help="Guest dirty rates, MiB/s.")
@click.option("--repeat", default=3, show_default=True, type=int, help="Repeats of every configuration.")
@click.option("--no-baselines", is_flag=True, help="Only Ferry's migrations (no bare virsh, no iperf3).")
@click.option("--iperf-seconds", default=3.0, show_default=True, type=click.FloatRange(1, 60))
@click.option("--via", type=click.Choice(["agent", "engine"]), default="engine", show_default=True,
              help="Drive Ferry's migrations through the host agents' JSON-RPC or the engine's REST API.")
@click.option("--engine-url", default=None, help="With --via engine: the engine's URL (default: start one).")
@click.option("--json", "as_json", is_flag=True, help="Print the raw result as JSON.")
@click.option("--report", type=click.Path(dir_okay=False), default=None,
              help="Write the report (e.g. docs/benchmarks.md) with its plots and raw JSON beside it.")
@click.option("--lab-id", type=click.IntRange(0, 9), default=None, help="Lab 0..9 (default: $FERRY_LAB_ID or 0).")
def migrate_cmd(sizes, modes, dirty, repeat, no_baselines, iperf_seconds, via, engine_url, as_json, report, lab_id):
    """Migrate guests of each size/mode/dirty rate REPEAT times, each beside its baselines."""
    from ferry.bench.matrix import build_matrix
    from ferry.bench.migrate_bench import MigrateBench

    matrix = build_matrix(sizes, modes, dirty, repeat, baselines=not no_baselines)
    lab = _needs_two_hosts(_lab(lab_id))
    _progress(f"bench migrate on lab {lab.lab_id}: {len(matrix.groups)} guest(s), {matrix.migrations()} migrations")
    with _ferry_driver(via, lab, engine_url) as driver:
        result = MigrateBench(lab, matrix, ferry_driver=driver, progress=_progress,
                              iperf_seconds=iperf_seconds).run()
    _finish(result, as_json, report)


@bench.command("policies")
@click.option("--policies", "names", default="Minimal downtime,Suspend workload if needed,Very large VMs,Legacy,Adaptive",
              show_default=True, help="Built-in (or custom) policy names or ids, comma-separated.")
@click.option("--memory", default=512, show_default=True, type=click.IntRange(256, 16384), help="Guest MiB.")
@click.option("--fill", default=320, show_default=True, type=click.IntRange(16, 16000), help="MiB the workload fills.")
@click.option("--dirty", default=32, show_default=True, type=click.IntRange(0, 4096), help="MiB/s it rewrites.")
@click.option("--cap", default=40, show_default=True, type=click.IntRange(1, 100000),
              help="Migration bandwidth cap, MiB/s (the same for every policy).")
@click.option("--repeat", default=1, show_default=True, type=click.IntRange(1, 20))
@click.option("--workloads", default=None,
              help="Harder workloads instead of --memory/--dirty: MiB:percent-of-cap[:fillMiB][@capMiBs] items, "
                   "e.g. 512:50,512:120,2048:100:640@60 (fill defaults to --fill's share of --memory, cap to --cap).")
@click.option("--doomed", default=None,
              help="Doomed workloads, same form: Adaptive runs them with 2 parallel connections (no post-copy on "
                   "QEMU 10.0) beside --doomed-policies, to compare how early each aborts.")
@click.option("--doomed-policies", default="Adaptive,Minimal downtime,Suspend workload if needed", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the raw result as JSON.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Also write the raw result (JSON) here.")
@click.option("--merge", "merge_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Do not migrate: merge these raw results (--out of earlier parts) and report them as one.")
@click.option("--notes", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Markdown added to the report's section (what the numbers mean).")
@click.option("--report", type=click.Path(dir_okay=False), default=None, help="Write the report (docs/benchmarks.md).")
@click.option("--lab-id", type=click.IntRange(0, 9), default=None, help="Lab 0..9 (default: $FERRY_LAB_ID or 0).")
def policies_cmd(names, memory, fill, dirty, cap, repeat, workloads, doomed, doomed_policies, as_json, out,
                 merge_files, notes, report, lab_id):
    """A workload dirtying memory nearly as fast as the cap, under each policy: converged or aborted."""
    from ferry.bench.policy_bench import PolicyBench, merge, parse_policies, parse_workloads

    if merge_files:
        parts = []
        for path in merge_files:
            with open(path) as f:
                parts.append(json.load(f))
        result = merge(parts)
    else:
        policies = parse_policies(names)
        loads = parse_workloads(workloads, cap, fill_mib=fill, base_memory_mib=memory) if workloads else None
        dl = (parse_workloads(doomed, cap, fill_mib=fill, base_memory_mib=memory, doomed=True, field="doomed")
              if doomed else None)
        result = PolicyBench(_needs_two_hosts(_lab(lab_id)), policies, memory_mib=memory, fill_mib=fill,
                             dirty_mib_s=dirty, cap_mib_s=cap, repeat=repeat, progress=_progress, workloads=loads,
                             doomed=dl, doomed_policies=parse_policies(doomed_policies),
                             checkpoint=(lambda partial: _write_json(out, partial)) if out else None).run()
    if notes:
        with open(notes) as f:
            result["notes"] = f.read()
    if out:
        _write_json(out, result)
    _finish(result, as_json, report)


@bench.command("forecast")
@click.option("--case", "cases", multiple=True, metavar="SIZE:TOUCHED:DIRTY:CAP:MODE:POLICY",
              help="Run this case (repeatable), e.g. '512:60:32:40:plain:Minimal downtime' (MiB, %, MiB/s, "
                   "MiB/s); default: issue 14's full matrix.")
@click.option("--dirty-seconds", default=2, show_default=True, type=click.IntRange(1, 60),
              help="VM.getDirtyRate's window.")
@click.option("--pattern", type=click.Choice(["linear", "random"]), default="random", show_default=True,
              help="The write pattern the forecast assumes (the lab's workload writes random pages).")
@click.option("--engine-url", default=None, help="A running engine's URL (default: start one).")
@click.option("--calibrate", is_flag=True, help="First migrate an idle guest uncapped each way (not compared): "
              "the engine's per-host-pair calibration.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the raw result (JSON) here.")
@click.option("--report", type=click.Path(dir_okay=False), default=None, help="Write the report (docs/benchmarks.md).")
@click.option("--from-raw", "from_raw", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Do not migrate: report on a stored raw result (--out of an earlier run).")
@click.option("--final-speeds", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A `ferry bench migrate` raw result: also forecast every run again with the current "
                   "physics, the final copy at that benchmark's uncapped speed per host pair and mode.")
@click.option("--name", default="forecast", show_default=True,
              help="Name of the raw JSON and plot written beside the report (docs/benchmarks/NAME.json).")
@click.option("--notes", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Markdown appended to the report's section (what the numbers mean).")
@click.option("--also", type=click.Path(exists=True, dir_okay=False), default=None,
              help="With --from-raw: another raw result (an earlier run) reported as a subsection.")
@click.option("--also-heading", default="### An earlier run", show_default=True, help="That subsection's heading.")
@click.option("--lab-id", type=click.IntRange(0, 9), default=None, help="Lab 0..9 (default: $FERRY_LAB_ID or 0).")
def forecast_cmd(cases, dirty_seconds, pattern, engine_url, calibrate, out, report, from_raw, final_speeds, name,
                 notes, also, also_heading, lab_id):
    """Measure, forecast, migrate through the engine and compare, per case."""
    from ferry.bench.engine_driver import engine_driver
    from ferry.bench.forecast_bench import ForecastBench, full_matrix, parse_case
    from ferry.bench.forecast_report import final_speeds as speeds_of
    from ferry.bench.forecast_report import reforecast_all, summary_text, write_forecast_report

    if from_raw:
        with open(from_raw) as f:
            result = json.load(f)
        second = None
        if final_speeds:
            with open(final_speeds) as f:
                again = reforecast_all(result, speeds_of(json.load(f)))
            second = ("### The same runs, forecast again with the current physics", again, [])
            click.echo(summary_text(again))
        elif also:
            with open(also) as f:
                second = (also_heading, json.load(f), [])
        if report:
            extra = open(notes).read() if notes else ""
            _progress(f"report written: {write_forecast_report(report, result, second=second, name=name, extra=extra)}")
        click.echo(summary_text(result))
        return
    chosen = [parse_case(c) for c in cases] if cases else full_matrix()
    lab = _needs_two_hosts(_lab(lab_id))
    _progress(f"bench forecast on lab {lab.lab_id}: {len(chosen)} migration(s)"
              + ("" if cases else " (issue 14's full matrix)"))
    with engine_driver(lab, engine_url, progress=_progress) as driver:
        result = ForecastBench(lab, driver, chosen, progress=_progress, dirty_seconds=dirty_seconds,
                               pattern=pattern, calibrate=calibrate,
                               checkpoint=(lambda partial: _write_json(out, partial)) if out else None).run()
    result["full_matrix"] = not cases
    if out:
        _write_json(out, result)
    if report:
        extra = open(notes).read() if notes else ""
        _progress(f"report written: {write_forecast_report(report, result, name=name, extra=extra)}")
    click.echo(summary_text(result))


def _write_json(path: str, result: dict) -> None:
    with open(path, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)


@bench.command("evacuate")
@click.option("--vms", default=4, show_default=True, type=click.IntRange(1, 16), help="Guests on host 1.")
@click.option("--memory", default=256, show_default=True, type=click.IntRange(256, 4096), help="Guest MiB.")
@click.option("--fill", default=64, show_default=True, type=click.IntRange(16, 4000), help="MiB each fills.")
@click.option("--dirty", default=0, show_default=True, type=click.IntRange(0, 1024), help="MiB/s each rewrites.")
@click.option("--repeat", default=1, show_default=True, type=click.IntRange(1, 10))
@click.option("--json", "as_json", is_flag=True, help="Print the raw result as JSON.")
@click.option("--report", type=click.Path(dir_okay=False), default=None,
              help="Put the result's section into this report (e.g. docs/benchmarks.md).")
@click.option("--lab-id", type=click.IntRange(0, 9), default=None, help="Lab 0..9 (default: $FERRY_LAB_ID or 0).")
def evacuate_cmd(vms, memory, fill, dirty, repeat, as_json, report, lab_id):
    """Empty lab host 1 with the drain, against the same migrations one by one (needs 3 hosts)."""
    from ferry.bench.evacuate_bench import EvacuateBench, write_section

    result = EvacuateBench(_lab(lab_id), vms=vms, memory_mib=memory, fill_mib=fill, dirty_mib_s=dirty,
                           repeat=repeat, progress=_progress).run()
    if report:
        _progress(f"report written: {write_section(report, result)}")
    if as_json:
        click.echo(json.dumps(result, indent=1, sort_keys=True))
    else:
        click.echo(f"one by one {result['sequential_median_s']} s, drain {result['drain_median_s']} s: "
                   f"{result['speedup']}x")


def _needs_two_hosts(lab):
    from ferry.common.errors import OperationFailed

    up = len(lab.hosts())
    if up < 2:
        raise OperationFailed(f"lab {lab.lab_id} has {up} host(s) up; the benchmarks need 2: "
                              f"run `FERRY_LAB_ID={lab.lab_id} ferry lab up` first")
    return lab


class _NoEngine:
    def __init__(self, driver):
        self.driver = driver

    def __enter__(self):
        return self.driver

    def __exit__(self, *exc):
        return False


def _ferry_driver(via: str, lab, engine_url: str | None):
    from ferry.bench.drivers import AgentDriver, lab_agents

    if via == "agent":
        return _NoEngine(AgentDriver(lab_agents(lab)[0]))
    from ferry.bench.engine_driver import engine_driver

    return engine_driver(lab, engine_url, progress=_progress)


def _write_json(path: str, result: dict) -> None:
    """The result so far, so a part cut short (a time-boxed hold) keeps its finished workloads."""
    with open(path, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)


def _finish(result: dict, as_json: bool, report: str | None) -> None:
    if report:
        from ferry.bench.report import write_report

        path = write_report(report, result)
        _progress(f"report written: {path}")
    if as_json:
        click.echo(json.dumps(result, indent=1, sort_keys=True))
        return
    from ferry.bench.summary_text import summary_lines

    for line in summary_lines(result):
        click.echo(line)
    sys.stdout.flush()


def register(group: click.Group) -> None:
    from ferry.cli import (
        bench_failover,  # noqa: F401 - registers `ferry bench failover` (issue 18)
        bench_faults,  # noqa: F401 - its @bench.command registers `ferry bench faults`
    )
    from ferry.cli.bench_scale import scale_cmd

    bench.add_command(scale_cmd)
    group.add_command(bench)

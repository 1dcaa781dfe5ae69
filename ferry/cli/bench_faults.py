"""`ferry bench faults`: the fault matrix on the lab (ferry.bench.faults), and docs/reliability.md.

Runs each fault (all by default) RUNS times against an engine process of its own over the lab's
first three hosts, prints one line per run, a summary, and with --report writes the matrix.
"""
from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import click

from ferry.cli.bench import _lab, _progress, bench
from ferry.common.errors import InvalidInput, OperationFailed


@bench.command("faults")
@click.option("--faults", "names", default="all", show_default=True,
              help="Comma-separated faults, or 'all' (see ferry/bench/faults.py FAULTS).")
@click.option("--runs", default=1, show_default=True, type=click.IntRange(1, 20), help="Runs of each fault.")
@click.option("--cut-seconds", default=30.0, show_default=True, type=click.FloatRange(1, 300),
              help="How long the network cuts last.")
@click.option("--report", type=click.Path(dir_okay=False), default=None,
              help="Write the matrix into the report's faults block (e.g. docs/reliability.md); the rest of it stays.")
@click.option("--json", "as_json", is_flag=True, help="Print every run as JSON.")
@click.option("--lab-id", type=click.IntRange(0, 9), default=None, help="Lab 0..9 (default: $FERRY_LAB_ID or 0).")
def faults_cmd(names, runs, cut_seconds, report, as_json, lab_id):
    """Inject each fault mid-migration; check the record against libvirt, one host, memory intact."""
    from ferry.bench.doc_blocks import write_block
    from ferry.bench.faults import FAULTS, TITLE, FaultLab, report_markdown

    chosen = list(FAULTS) if names.strip() == "all" else [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in FAULTS]
    if unknown or not chosen:
        raise InvalidInput("--faults", f"unknown fault(s) {unknown}; choose from {', '.join(FAULTS)} or 'all'")
    lab = _lab(lab_id)
    if not lab.is_up(3):
        raise OperationFailed(f"lab {lab.lab_id} needs 3 hosts up: run `ferry lab up --hosts 3`")
    results = []
    with tempfile.TemporaryDirectory(prefix="ferry-faults-") as tmp, \
            FaultLab(lab, Path(tmp), progress=_progress, cut_s=cut_seconds) as fl:
        for fault in chosen:
            for _ in range(runs):
                results.append(fl.run(fault))
    if report:
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        write_block(report, "faults", report_markdown(results, lab_id=lab.lab_id, when=when), head=TITLE + "\n")
        _progress(f"report written: {report}")
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=1))
    else:
        for r in results:
            click.echo(f"{r.fault:26} {'ok' if r.ok else 'NOT OK':7} record {r.record or '-':9} "
                       f"libvirt {r.reality or '-':10} intact {r.intact}  {r.seconds:.0f} s")
    bad = sum(not r.ok for r in results)
    click.echo(f"{len(results) - bad}/{len(results)} runs ok")
    if bad:
        raise SystemExit(1)

"""`ferry bench failover`: kill -9 to takeover between engines on one PostgreSQL (ferry.bench.failover).

Starts a PostgreSQL server of its own (as `ferry bench scale` does), engine processes on it and
RUNS kills of the engine that owns the work; prints each takeover time and a JSON summary.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from ferry.cli.bench import bench


@bench.command("failover")
@click.option("--runs", default=3, show_default=True, type=click.IntRange(1, 20), help="Engines killed in turn.")
@click.option("--migrations", default=6, show_default=True, type=click.IntRange(1, 500),
              help="Migrations the killed engine owns.")
def failover_cmd(runs: int, migrations: int) -> None:
    """Several engines on one PostgreSQL: seconds from kill -9 of the owner to another engine owning its work."""
    from ferry.bench.failover import measure_failover
    from ferry.bench.scale_postgres import PostgresServer

    server = PostgresServer()
    server.start()
    try:
        server.admin('CREATE DATABASE "ferry_failover"')
        with tempfile.TemporaryDirectory(prefix="ferry-failover-") as work:
            result = measure_failover(server.url("ferry_failover"), Path(work), runs=runs, migrations=migrations,
                                      progress=lambda m: click.echo(m, err=True))
    finally:
        server.stop()
    click.echo(json.dumps(result, indent=1))


@bench.command("scale-failover")
@click.option("--engines", default=3, show_default=True, type=click.IntRange(2, 5), help="Engine processes.")
@click.option("--hosts", default=24, show_default=True, type=click.IntRange(4, 2000), help="Simulated hosts.")
@click.option("--vms-per-host", default=8, show_default=True, type=click.IntRange(1, 40))
@click.option("--drained", default=2, show_default=True, type=click.IntRange(1, 20), help="Hosts drained at once.")
@click.option("--report", type=click.Path(dir_okay=False), default=None,
              help="Add the run to the failover table of the scale section of this report (docs/benchmarks.md).")
@click.option("--lab-id", type=click.IntRange(0, 9), default=None, help="Lab 0..9 (default: $FERRY_LAB_ID or 0).")
def scale_failover_cmd(engines: int, hosts: int, vms_per_host: int, drained: int, report: str | None,
                       lab_id: int | None) -> None:
    """The scale section's failover phase: kill -9 of an engine mid-drain over simulated hosts."""
    import os

    from ferry.bench.scale_failover import run_failover, store_run
    from ferry.common.errors import InvalidInput

    if drained >= hosts:
        raise InvalidInput("--drained", f"must be below --hosts ({hosts}): the VMs need somewhere to go")
    lab = lab_id if lab_id is not None else int(os.environ.get("FERRY_LAB_ID") or 0)
    work = Path(os.environ.get("FERRY_STATE_DIR") or "/var/lib/ferry") / "bench-scale-failover"
    result = run_failover(lab=lab, work_dir=work, engines=engines, hosts=hosts, vms_per_host=vms_per_host,
                          drained=drained, progress=lambda m: click.echo(m, err=True))
    if report:
        click.echo(f"wrote {store_run(Path(report), result)}", err=True)
    click.echo(json.dumps(result, indent=1))

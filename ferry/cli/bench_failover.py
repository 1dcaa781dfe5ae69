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

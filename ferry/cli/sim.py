"""`ferry lab sim`: simulated hosts for scale tests (ferry.sim), never real ones.

    ferry lab sim --hosts 2000 --vms 40000     start them, write the inventory
    ferry lab sim --import DATABASE_URL        put that inventory into an engine database
    ferry lab sim --down                       stop them
"""
from __future__ import annotations

import json

import click


def _lab_id(ctx: click.Context, lab_id: int | None) -> int:
    import os

    if lab_id is not None:
        return lab_id
    parent = (ctx.obj or {}).get("lab_id")
    return parent if parent is not None else int(os.environ.get("FERRY_LAB_ID") or 0)


@click.command("sim")
@click.option("--hosts", type=click.IntRange(1, 64000), default=20, show_default=True)
@click.option("--vms", type=click.IntRange(0, 10_000_000), default=None, help="Default: 20 per host.")
@click.option("--processes", type=click.IntRange(1, 64), default=None, help="Default: one per 500 hosts (max 8).")
@click.option("--down", is_flag=True, help="Stop the simulated hosts of this lab.")
@click.option("--import", "import_url", default=None, metavar="DATABASE_URL",
              help="Import the running fleet's inventory into this engine database.")
@click.option("--sim-lab", "lab_id", type=click.IntRange(0, 9), default=None, help="Default: the lab id.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def sim(ctx: click.Context, hosts: int, vms: int | None, processes: int | None, down: bool,
        import_url: str | None, lab_id: int | None, as_json: bool) -> None:
    """Simulated hypervisor hosts (real agent protocol over mutual TLS; loopback only)."""
    from ferry.sim import control

    lab = _lab_id(ctx, lab_id)
    if down:
        n = control.stop(lab)
        click.echo(f"stopped {n} simulator processes of lab {lab}")
        return
    if import_url:
        from ferry.engine.db import Database

        inventory = json.loads((control.sim_dir(lab) / "inventory.json").read_text())
        db = Database(import_url)
        db.upgrade()
        added = control.import_inventory(db, inventory)
        click.echo(f"imported {added[0]} hosts and {added[1]} VMs into {import_url}")
        return
    running = control.start(hosts, 20 * hosts if vms is None else vms, lab=lab, processes=processes,
                            progress=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps({"sim_dir": str(running.sim_dir), "inventory": str(running.inventory_path),
                               "pids": list(running.pids), "hosts": running.hosts, "vms": running.vms}))
    else:
        click.echo(f"{running.hosts} simulated hosts up (pids {', '.join(map(str, running.pids))}); "
                   f"inventory {running.inventory_path}")

"""`ferry migrate VM [--to HOST] [--policy P] [--wait] [--json]`, `ferry migrate cancel ID`,
`ferry migrate show ID`, `ferry migrate list`.

The engine plans and runs the migration; with --wait the terminal follows it (a rich progress
bar when it is a terminal, one line per change otherwise) and the last line sums it up. The exit
status is 0 only when a waited-for migration succeeded.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from ferry.cli.progress import BAR_WIDTH, bar_line, progress_line, route_text, summary_line
from ferry.client.follow import FINAL, wait_for


def _client():
    from ferry.client.engine_client import EngineClient

    return EngineClient()


class _DefaultGroup(click.Group):
    """`ferry migrate VM ...` runs `start`; `ferry migrate cancel|show|list ...` the subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["start", *args]
        return super().parse_args(ctx, args)


def follow_with_bar(client, migration: dict, *, extra: Callable[[dict], None] | None = None,
                    out=None) -> dict:
    """Follow a migration on the terminal: a rich bar with the live line, or plain lines when
    the output is not a terminal. `extra` sees every update (the demo asks QEMU through it)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(file=out or sys.stdout)
    if not console.is_terminal:
        last = [""]

        def plain(m: dict) -> None:
            if extra:
                extra(m)
            line = progress_line(m)
            if line != last[0]:
                last[0] = line
                console.print(line, highlight=False, soft_wrap=True)

        plain(migration)
        return wait_for(client, migration, on_update=plain)
    console.print(f"migration {migration['id']}: VM {migration['vm']} {route_text(migration)}", highlight=False)
    # bar + line + elapsed time within 80 columns (ferry.cli.progress.bar_line)
    with Progress(BarColumn(bar_width=BAR_WIDTH), TextColumn("{task.fields[line]}"), TimeElapsedColumn(),
                  console=console, transient=False) as bar:
        task = bar.add_task("migrate", total=100, line=bar_line(migration))
        shown_route = [route_text(migration)]

        def update(m: dict) -> None:
            if extra:
                extra(m)
            if route_text(m) != shown_route[0]:   # a rerun goes elsewhere
                shown_route[0] = route_text(m)
                console.print(f"rerun: VM {m['vm']} {shown_route[0]}", highlight=False)
            bar.update(task, completed=m.get("progress") or 0, line=bar_line(m))

        final = wait_for(client, migration, on_update=update)
        update(final)
    return final


def _with_placement(client, migration: dict) -> dict:
    try:
        vm = client.get(f"/api/vms/{migration['vm']}")
        return {**migration, "vm_host": vm.get("host")}
    except Exception:  # noqa: BLE001 - only for the summary's wording
        return migration


@click.group("migrate", cls=_DefaultGroup, invoke_without_command=False)
def migrate_group() -> None:
    """Live-migrate a VM (`ferry migrate VM`), follow, list or cancel migrations."""


@migrate_group.command("start")
@click.argument("vm")
@click.option("--to", "to", default=None, help="Destination host (default: the engine picks one).")
@click.option("--policy", default=None, help="Migration policy name or id (default: the VM's).")
@click.option("--wait", is_flag=True, help="Follow the migration until it ends.")
@click.option("--json", "as_json", is_flag=True, help="Print the migration record as JSON.")
def migrate_start(vm: str, to: str | None, policy: str | None, wait: bool, as_json: bool) -> None:
    """Migrate VM (also `ferry migrate VM`)."""
    client = _client()
    body = {k: v for k, v in {"to": to, "policy": policy}.items() if v is not None}
    migration = client.post(f"/api/vms/{vm}/migrate", body)
    if not wait:
        if as_json:
            click.echo(json.dumps(migration, indent=2))
        else:
            click.echo(f"migration {migration['id']} of VM {vm}: {migration['source']} → "
                       f"{migration['destination']} started; follow it with `ferry migrate show "
                       f"{migration['id']}` or cancel it with `ferry migrate cancel {migration['id']}`")
        return
    try:
        final = wait_for(client, migration) if as_json else follow_with_bar(client, migration)
    except KeyboardInterrupt:
        click.echo(f"\nstopped following; migration {migration['id']} goes on "
                   f"(`ferry migrate cancel {migration['id']}` stops it)", err=True)
        sys.exit(130)
    if as_json:
        click.echo(json.dumps(final, indent=2))
    else:
        click.echo(summary_line(_with_placement(client, final)))
    sys.exit(0 if final["state"] == "SUCCEEDED" else 1)


@migrate_group.command("cancel")
@click.argument("migration_id")
@click.option("--wait", is_flag=True, help="Wait until the agent confirms.")
@click.option("--json", "as_json", is_flag=True)
def migrate_cancel(migration_id: str, wait: bool, as_json: bool) -> None:
    """Cancel a running migration (the VM stays on its source host)."""
    client = _client()
    migration = client.post(f"/api/migrations/{migration_id}/cancel", {})
    if wait:
        migration = wait_for(client, migration, timeout=120)
    if as_json:
        click.echo(json.dumps(migration, indent=2))
    elif wait:
        click.echo(summary_line(_with_placement(client, migration)))
    else:
        click.echo(f"migration {migration_id}: cancel requested ({migration['state']})")


@migrate_group.command("set-speed")
@click.argument("migration_id")
@click.argument("mibs", type=int)
@click.option("--json", "as_json", is_flag=True)
def migrate_set_speed(migration_id: str, mibs: int, as_json: bool) -> None:
    """Change a running migration's bandwidth cap to MIBS MiB/s (VM.migrateChangeParams)."""
    answer = _client().post(f"/api/migrations/{migration_id}/speed", {"mibs": mibs})
    if as_json:
        click.echo(json.dumps(answer, indent=2))
    else:
        click.echo(f"migration {migration_id}: {answer['message']}")


@migrate_group.command("show")
@click.argument("migration_id")
@click.option("--json", "as_json", is_flag=True)
def migrate_show(migration_id: str, as_json: bool) -> None:
    """Show one migration: state, progress, result."""
    m = _client().get(f"/api/migrations/{migration_id}")
    if as_json:
        click.echo(json.dumps(m, indent=2))
        return
    click.echo(summary_line(m) if m["state"] in FINAL else f"VM {m['vm']}: {progress_line(m)}")
    for entry in (m.get("plan") or {}).get("explanation", []):
        click.echo(f"  planner: {entry['field']}: {entry['from']} → {entry['to']}: {entry['reason']}")
    flags = (m.get("result") or {}).get("flags")
    if flags:
        click.echo(f"  libvirt flags: {' | '.join(flags)}")


@migrate_group.command("list")
@click.option("--vm", default=None)
@click.option("--active", is_flag=True, help="Only migrations still running.")
@click.option("--json", "as_json", is_flag=True)
def migrate_list(vm: str | None, active: bool, as_json: bool) -> None:
    """List migrations, newest first."""
    rows: list[dict[str, Any]] = _client().get("/api/migrations", params={"vm": vm, "active": active or None})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from ferry.cli.inventory.common import table as _table

    _table("migrations", ["id", "VM", "from", "to", "state", "progress", "created"], [
        [m["id"][:8], m["vm"], m["source"], m["destination"], m["state"], f"{m['progress']}%",
         (m["created_at"] or "")[:19].replace("T", " ")] for m in rows])


def register(group: click.Group) -> None:
    group.add_command(migrate_group)

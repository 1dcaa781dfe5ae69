"""`ferry events [--vm VM] [--host H] [--migration ID] [--limit N] [--follow] [--json]`:
the engine's audit log (oVirt's event ids: 62 started, 63 done, 65 failed, 128 rerun, ...)."""
from __future__ import annotations

import json
import time

import click

from ferry.cli.progress import event_line

FOLLOW_POLL_S = 1.0


@click.command("events")
@click.option("--vm", default=None, help="Only this VM's events.")
@click.option("--host", default=None, help="Only this host's events.")
@click.option("--migration", default=None, help="Only this migration's events.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000),
              help="How many of the newest events to show.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until Ctrl-C.")
@click.option("--json", "as_json", is_flag=True, help="JSON (with --follow: one object per line).")
def events_command(vm, host, migration, limit, follow, as_json) -> None:
    """Show the engine's events, oldest first."""
    from ferry.client.engine_client import EngineClient

    client = EngineClient()
    params = {"vm": vm, "host": host, "migration": migration, "limit": limit}
    events = client.get("/api/events", params=params)
    if as_json and not follow:
        click.echo(json.dumps(events, indent=2))
        return

    def show(batch):
        for e in batch:
            click.echo(json.dumps(e) if as_json else event_line(e))

    show(events)
    if not follow:
        return
    last = events[-1]["id"] if events else 0
    try:
        while True:
            time.sleep(FOLLOW_POLL_S)
            batch = client.get("/api/events", params={**params, "after": last, "limit": 1000})
            show(batch)
            if batch:
                last = batch[-1]["id"]
    except KeyboardInterrupt:
        pass


def register(group: click.Group) -> None:
    group.add_command(events_command)

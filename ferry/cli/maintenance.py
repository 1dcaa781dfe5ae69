"""`ferry host maintenance H [--wait] [--reason TEXT] [--order shortest|largest]`,
`ferry host maintenance H --cancel [--abort-running]`, `--pause`, `--resume`, `--status`,
`ferry host activate H`, and `ferry migrate force-complete ID`.

One progress view of a drain (the engine's GET /api/hosts/{name}/maintenance): VMs done/total,
bytes, the whole drain's ETA and a line per running migration; with --wait it is followed
(a rich live view on a terminal, one line per change otherwise; --json: one JSON object per
change, the last one final). Exit status with --wait: 0 once the host is in MAINTENANCE, 1 when
the drain was cancelled or a VM is stuck (the reasons are printed).
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import Any

import click

from ferry.cli.progress import format_mib

POLL_S = 0.5


def _client():
    from ferry.client.engine_client import EngineClient

    return EngineClient()


def _eta(seconds: Any) -> str:
    if seconds is None:
        return "ETA unknown"
    return f"ETA {seconds:.0f} s" if seconds >= 10 else f"ETA {seconds:.1f} s"


def summary_line(v: Mapping[str, Any]) -> str:
    """host h1 PREPARING_FOR_MAINTENANCE (drain ACTIVE): 2/4 VMs, 300 MiB of 1.2 GiB, ETA 12 s."""
    return (f"host {v['host']} {v['host_status']} (drain {v.get('state') or '-'}): "
            f"{v['vms_done']}/{v['vms_total']} VMs moved, {v['vms_running']} migrating, {v['vms_queued']} queued; "
            f"{format_mib(v['bytes_done'])} of {format_mib(v['bytes_expected'])}; {_eta(v.get('eta_seconds'))}")


def running_line(r: Mapping[str, Any]) -> str:
    paused = " (paused VM)" if r.get("paused_vm") else ""
    return (f"  VM {r['vm']}{paused} → {r.get('destination') or '?'}: {r.get('progress') or 0}%, "
            f"{format_mib(r.get('bytes') or 0)}, {_eta(r.get('eta_seconds'))}")


def stuck_lines(v: Mapping[str, Any]) -> list[str]:
    return [f"  VM {s['vm']} {s['state']}: {s.get('reason') or '?'}" for s in v.get("stuck") or []]


def view_lines(v: Mapping[str, Any]) -> list[str]:
    return [summary_line(v), *(running_line(r) for r in v.get("running") or []), *stuck_lines(v)]


def finished(v: Mapping[str, Any]) -> bool:
    """The drain ended, or nothing is left that could move (only stuck VMs)."""
    if v.get("state") in (None, "DONE", "CANCELLED"):
        return True
    return v.get("state") == "ACTIVE" and not v["vms_running"] and not v["vms_queued"] and bool(v.get("stuck"))


def _follow(client, host: str, view: dict, as_json: bool) -> dict:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = Console()
    if as_json or not console.is_terminal:
        last = ""
        while True:
            text = json.dumps(view) if as_json else "\n".join(view_lines(view))
            if text != last:
                click.echo(text)
                last = text
            if finished(view):
                return view
            time.sleep(POLL_S)
            view = client.get(f"/api/hosts/{host}/maintenance")
    with Live(Text("\n".join(view_lines(view))), console=console, refresh_per_second=4) as live:
        while not finished(view):
            time.sleep(POLL_S)
            view = client.get(f"/api/hosts/{host}/maintenance")
            live.update(Text("\n".join(view_lines(view))))
    return view


@click.command("maintenance")
@click.argument("host")
@click.option("--reason", default=None, help="Why (shown in the maintenance event).")
@click.option("--order", type=click.Choice(["shortest", "largest"]), default="shortest", show_default=True,
              help="Forecast order: shortest first frees slots fast; largest first starts the long tail first.")
@click.option("--wait", is_flag=True, help="Follow the drain until the host is in maintenance.")
@click.option("--cancel", is_flag=True, help="Cancel: drop queued migrations, let running ones finish.")
@click.option("--abort-running", is_flag=True, help="With --cancel: cancel the running migrations too.")
@click.option("--pause", is_flag=True, help="Pause the drain (no new migration starts).")
@click.option("--resume", is_flag=True, help="Resume a paused drain.")
@click.option("--status", "status_only", is_flag=True, help="Only show the drain's progress.")
@click.option("--json", "as_json", is_flag=True, help="JSON (with --wait: one object per change).")
def maintenance_cmd(host, reason, order, wait, cancel, abort_running, pause, resume, status_only, as_json):
    """Move HOST to maintenance: migrate its VMs away, then MAINTENANCE."""
    from ferry.common.errors import InvalidInput

    if abort_running and not cancel:
        raise InvalidInput("abort_running", "only goes with --cancel")
    if sum((cancel, pause, resume, status_only)) > 1:
        raise InvalidInput("cancel", "give one of --cancel, --pause, --resume, --status")
    client = _client()
    if cancel:
        view = client.post(f"/api/hosts/{host}/maintenance/cancel", {"abort_running": abort_running})
    elif pause:
        view = client.post(f"/api/hosts/{host}/maintenance/pause", {})
    elif resume:
        view = client.post(f"/api/hosts/{host}/maintenance/resume", {})
    elif status_only:
        view = client.get(f"/api/hosts/{host}/maintenance")
    else:
        body = {"order": order, **({"reason": reason} if reason else {})}
        view = client.post(f"/api/hosts/{host}/maintenance", body)
    if not wait:
        click.echo(json.dumps(view, indent=2) if as_json else "\n".join(view_lines(view)))
        return
    try:
        view = _follow(client, host, view, as_json)
    except KeyboardInterrupt:
        click.echo(f"\nstopped following; the drain goes on (`ferry host maintenance {host} --cancel` stops it)",
                   err=True)
        sys.exit(130)
    if not as_json:
        click.echo(summary_line(view))
    sys.exit(0 if view.get("host_status") == "MAINTENANCE" else 1)


@click.command("activate")
@click.argument("host")
@click.option("--json", "as_json", is_flag=True)
def activate_cmd(host, as_json):
    """Bring HOST back UP from MAINTENANCE."""
    h = _client().post(f"/api/hosts/{host}/activate", {})
    click.echo(json.dumps(h, indent=2) if as_json else f"host {h['name']} is {h['status']}")


def force_complete_text(r: Mapping[str, Any]) -> str:
    how = {"postcopy": "switched to post-copy", "downtime": f"downtime limit raised to {r.get('downtime_ms')} ms"}
    return f"migration {r['migration_id']} of VM {r['vm']}: {how.get(r.get('mode'), r.get('mode'))} ({r.get('reason')})"


@click.command("force-complete")
@click.argument("migration_id")
@click.option("--json", "as_json", is_flag=True)
def force_complete_cmd(migration_id, as_json):
    """Finish a running migration now: post-copy where allowed, else a raised downtime limit."""
    r = _client().post(f"/api/migrations/{migration_id}/force-complete", {})
    click.echo(json.dumps(r, indent=2) if as_json else force_complete_text(r))


def register(group: click.Group) -> None:
    """Adds to `ferry host` and `ferry migrate` (registered before this module)."""
    host = group.commands.get("host")
    if isinstance(host, click.Group):
        host.add_command(maintenance_cmd)
        host.add_command(activate_cmd)
    migrate = group.commands.get("migrate")
    if isinstance(migrate, click.Group):
        migrate.add_command(force_complete_cmd)

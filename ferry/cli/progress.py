"""What the terminal shows of a migration (pure: a migration's JSON in, text out).

`progress_line` is the live line of plain output (percent, MiB/s, remaining, iteration, current
max downtime, ETA); `bar_line` the shorter one beside the bar, which fits 80 columns with the bar
and the elapsed time; `summary_line` is the one line printed when it ends; `event_line` is one
row of `ferry events`. No I/O here, so every wording is unit-tested.

The ETA is the record's `eta` (GET /api/migrations/{id}); a record without the key (an engine
route that does not add it) gets it from the same pure function (ferry.engine.migration_eta).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ferry.engine.migration_eta import migration_eta

MIB = 1024 * 1024
TERMINAL_WIDTH = 80
BAR_WIDTH = 20
ELAPSED_WIDTH = 7          # rich's TimeElapsedColumn: "0:00:12"
BAR_LINE_WIDTH = TERMINAL_WIDTH - BAR_WIDTH - ELAPSED_WIDTH - 2   # the two column gaps

STATE_WORDS = {
    "PENDING": "waiting to start", "RUNNING": "migrating", "CANCELLING": "cancelling",
    "SUCCEEDED": "succeeded", "FAILED": "failed", "CANCELLED": "cancelled", "ABORTED": "aborted",
}


def _mib(n: Any) -> float | None:
    return n / MIB if isinstance(n, (int, float)) and not isinstance(n, bool) else None


def format_mib(n_bytes: Any) -> str:
    """1.5 GiB / 812 MiB / 3.2 MiB / 0 MiB."""
    mib = _mib(n_bytes)
    if mib is None:
        return "?"
    if mib >= 1024:
        return f"{mib / 1024:.1f} GiB"
    if mib >= 10 or mib == 0:
        return f"{mib:.0f} MiB"
    return f"{mib:.1f} MiB"


def format_rate(bps: Any) -> str:
    mib = _mib(bps)
    if mib is None:
        return "? MiB/s"
    return f"{mib:.0f} MiB/s" if mib >= 10 else f"{mib:.1f} MiB/s"


def format_ms(ms: Any) -> str:
    if not isinstance(ms, (int, float)) or isinstance(ms, bool):
        return "?"
    if ms >= 60_000:
        minutes, seconds = divmod(round(ms / 1000), 60)
        return f"{minutes} min {seconds} s"
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.0f} ms"


def progress_line(migration: Mapping[str, Any], route: bool = True) -> str:
    """'42% · 512 MiB/s · 380 MiB left · iteration 2 · max downtime 300 ms · ferry-h1 → ferry-h2'
    (without the route when the caller shows it elsewhere, e.g. above a progress bar)."""
    f = migration.get("figures") or {}
    state = migration.get("state", "")
    parts = [f"{int(migration.get('progress') or 0)}%"]
    if state == "PENDING" or (state == "RUNNING" and not f):
        parts.append("starting")
    elif f.get("agent_state") == "waiting":
        parts.append("waiting for the destination")
    else:
        parts.append(format_rate(f.get("bandwidth_bps")))
        if f.get("data_total") or f.get("memory_total"):
            remaining = f.get("data_remaining") if f.get("data_total") else f.get("memory_remaining")
            parts.append(f"{format_mib(remaining)} left")
        if f.get("iteration"):
            parts.append(f"iteration {f['iteration']}")
        if f.get("max_downtime_ms"):
            parts.append(f"max downtime {format_ms(f['max_downtime_ms'])}")
        eta = eta_text(migration)
        if eta:
            parts.append(eta)
    if state == "CANCELLING":
        parts.append("cancelling")
    if not route:
        return " · ".join(parts)
    return " · ".join(parts + [route_text(migration)])


def format_eta(seconds: float) -> str:
    """~8 s / ~95 s / ~4 min / ~2.5 h: an estimate, so rounded."""
    if seconds < 100:
        return f"~{max(1, round(seconds))} s"
    if seconds < 100 * 60:
        return f"~{round(seconds / 60)} min"
    return f"~{seconds / 3600:.1f} h"


def eta_text(migration: Mapping[str, Any]) -> str | None:
    """'ETA ~12 s', 'will abort in ~25 s', 'post-copy, ends in ~9 s', 'never converges'; None
    without an ETA (not running, no throughput yet)."""
    if "eta" in migration:
        eta = migration.get("eta")
    else:
        live = migration_eta(migration)
        eta = None if live is None else live.to_wire()
    if not isinstance(eta, Mapping):
        return None
    seconds, outcome = eta.get("seconds"), eta.get("outcome")
    if outcome == "abort":
        return "never converges" if seconds is None else f"will abort in {format_eta(seconds)}"
    if seconds is None:
        return None
    if outcome == "postcopy":
        return f"post-copy, ends in {format_eta(seconds)}"
    return f"ETA {format_eta(seconds)}"


def bar_line(migration: Mapping[str, Any], width: int = BAR_LINE_WIDTH) -> str:
    """The line beside the bar: percent, ETA, MiB/s, what is left; the least needed parts are
    dropped until it fits `width` (so bar + line + elapsed time fit 80 columns)."""
    f = migration.get("figures") or {}
    state = migration.get("state", "")
    pct = f"{int(migration.get('progress') or 0)}%"
    if state == "PENDING" or (state == "RUNNING" and not f):
        parts = [pct, "starting"]
    elif f.get("agent_state") == "waiting":
        parts = [pct, "waiting for the destination"]
    else:
        eta = eta_text(migration)
        remaining = f.get("data_remaining") if f.get("data_total") else f.get("memory_remaining")
        left = f"{format_mib(remaining)} left" if (f.get("data_total") or f.get("memory_total")) else None
        parts = [p for p in (pct, eta, format_rate(f.get("bandwidth_bps")), left) if p]
    if state == "CANCELLING":
        parts.insert(1, "cancelling")
    while len(parts) > 1 and len(" · ".join(parts)) > width:
        parts.pop()
    return " · ".join(parts)[:width]


def route_text(migration: Mapping[str, Any]) -> str:
    return f"{migration.get('source') or '?'} → {migration.get('destination') or '?'}"


def summary_line(migration: Mapping[str, Any]) -> str:
    """One line saying how the migration ended, with its figures."""
    vm = migration.get("vm")
    state = migration.get("state", "?")
    r = migration.get("result") or {}
    dest = migration.get("destination") or "?"
    src = migration.get("source") or "?"
    tried = r.get("hosts_tried") or []
    rerun = f" after trying {', '.join(tried[:-1])}" if len(tried) > 1 else ""
    if state == "SUCCEEDED":
        figures = [f"in {format_ms(r.get('duration_ms'))}",
                   f"downtime {format_ms(r.get('downtime_ms'))}",
                   f"{format_mib(r.get('bytes'))} at {_throughput(r.get('throughput_mibps'))}"]
        if r.get("iterations"):
            figures.append(f"{r['iterations']} iteration{'s' if r['iterations'] != 1 else ''}")
        mode = _mode(r)
        if mode:
            figures.append(mode)
        return f"VM {vm} migrated {src} → {dest}{rerun} {', '.join(figures)}"
    word = STATE_WORDS.get(state, state.lower())
    if state in ("PENDING", "RUNNING", "CANCELLING"):
        return f"VM {vm}: migration {word} ({progress_line(migration)})"
    error = migration.get("error") or r.get("error") or "no reason given"
    where = f"{src} → {dest}{rerun}"
    return f"VM {vm}: migration {where} {word}: {error}; the VM runs on {_runs_on(migration)}"


def _throughput(mibps: Any) -> str:
    return "?" if not isinstance(mibps, (int, float)) else f"{mibps:.0f} MiB/s"


def _mode(result: Mapping[str, Any]) -> str:
    flags = result.get("flags") or []
    n = (result.get("typed_params") or {}).get("parallel.connections")
    if "VIR_MIGRATE_ZEROCOPY" in flags:
        return f"zero-copy x{n}" if n else "zero-copy"
    if "VIR_MIGRATE_PARALLEL" in flags:
        return f"parallel x{n}" if n else "parallel"
    return ""


def _runs_on(migration: Mapping[str, Any]) -> str:
    return str(migration.get("vm_host") or migration.get("source") or "?")


def event_line(event: Mapping[str, Any]) -> str:
    """'2025-01-02 10:11:12  63 normal   Migration completed (...)'."""
    time_ = str(event.get("time") or "")[:19].replace("T", " ")
    return f"{time_}  {event.get('code'):>4} {str(event.get('severity')):<8} {event.get('message')}"

"""What the engine's records mean as Prometheus metrics (pure: plain dicts in, frozen families out).

The engine builds its metrics at scrape time from the database (ferry.engine.metrics_collector),
so every engine process that shares the database exports the same numbers. This module holds
the mapping only: migration records (their `to_dict()` form), host records and rows of
finished migrations become metric families with their samples. Names follow KubeVirt's
(kubevirt_vmi_migration_* -> ferry_vmi_migration_*) so that existing dashboards map onto them.

Per migration in flight (labels vmi, migration, source, destination, policy):
  ferry_vmi_migration_data_total_bytes / _data_processed_bytes / _data_remaining_bytes,
  ferry_vmi_migration_dirty_memory_rate_bytes, ferry_vmi_migration_memory_transfer_rate_bytes
  (bytes per second, as KubeVirt), ferry_vmi_migration_start_time_seconds (epoch),
  ferry_vmi_migration_progress_percent, and, only when the record carries them,
  ferry_vmi_migration_eta_seconds (the live `eta` of issue 14), ferry_vmi_migration_forecast_seconds
  (the plan's `forecast.totalSeconds`) and ferry_vmi_migration_dirty_sync_missed_zero_copy
  (QEMU's dirty-sync-missed-zero-copy: the agent reads it over QMP during zero-copy migrations).
From finished migrations: ferry_vmi_migrations_total{result, policy} (a counter),
  ferry_vmi_migration_duration_seconds and ferry_vmi_migration_downtime_seconds (histograms of
  succeeded ones, by policy), ferry_vmi_migration_forecast_ratio (actual / forecast duration, only
  for migrations whose plan had a forecast), ferry_vmi_migrations_dirty_sync_missed_zero_copy_total
  {policy} (the missed syncs of ended migrations whose agent reported them).
Hosts: ferry_hosts{status} (how many per status), ferry_host_status{host, cluster, status} = 1,
  ferry_host_zerocopy_support{host, cluster, support} = 1, ferry_host_migrations_in_flight{host,
  direction="in"|"out"}; and ferry_vmi_migrations_in_flight{state}.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ferry.engine.db.records import MIGRATION_ACTIVE_STATES, MIGRATION_FINAL_STATES, HostStatus
from ferry.engine.options import ZeroCopySupport

_FINAL_STATE_VALUES = frozenset(s.value for s in MIGRATION_FINAL_STATES)
PREFIX = "ferry_vmi_migration_"
MIGRATION_LABELS = ("vmi", "migration", "source", "destination", "policy")
INF = math.inf
DURATION_BUCKETS_S = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, INF)
DOWNTIME_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, INF)
FORECAST_RATIO_BUCKETS = (0.5, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2, INF)

# The gauges of a migration in flight: name suffix, where the value is in the record, help text.
_FIGURE_GAUGES = (
    ("data_total_bytes", "data_total", "Bytes the migration has to send in all (memory and disks)."),
    ("data_processed_bytes", "data_processed", "Bytes sent so far."),
    ("data_remaining_bytes", "data_remaining", "Bytes left to send."),
    ("dirty_memory_rate_bytes", "dirty_rate_bps", "Rate at which the guest dirties memory, bytes per second."),
    ("memory_transfer_rate_bytes", "bandwidth_bps", "Rate at which memory is sent, bytes per second."),
    ("dirty_sync_missed_zero_copy", "dirty_sync_missed_zero_copy",
     "Dirty syncs in which the kernel copied anyway although zero-copy was asked (QEMU's count)."),
)


@dataclass(frozen=True)
class Sample:
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(frozen=True)
class HistogramSample:
    labels: tuple[tuple[str, str], ...]
    buckets: tuple[tuple[float, int], ...]   # (upper bound, cumulative count), the last one +Inf
    count: int
    total: float


@dataclass(frozen=True)
class Family:
    name: str
    kind: str                                # "gauge" | "counter" | "histogram"
    help: str
    label_names: tuple[str, ...]
    samples: tuple[Sample | HistogramSample, ...] = ()


@dataclass(frozen=True)
class FinishedRow:
    """What the metrics need of one finished migration (the collector reads only these columns)."""

    state: str
    policy: str | None
    duration_s: float | None
    downtime_s: float | None
    forecast_s: float | None = None
    missed_zero_copy: float | None = None    # QEMU's dirty-sync-missed-zero-copy, if the agent read it


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _epoch(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None


def policy_of(plan: Mapping[str, Any] | None) -> str:
    """The policy's name as the plan recorded it ("" when the record has no plan)."""
    policy = (plan or {}).get("policy") or {}
    return str(policy.get("name") or "") if isinstance(policy, Mapping) else ""


def forecast_seconds(record: Mapping[str, Any]) -> float | None:
    """The forecast total duration: the record's own `forecast` or its plan's (issue 14's
    `totalSeconds`); None until a forecast exists."""
    for holder in (record, record.get("plan") or {}):
        forecast = holder.get("forecast") if isinstance(holder, Mapping) else None
        if isinstance(forecast, Mapping):
            seconds = _number(forecast.get("totalSeconds"))
            if seconds is not None:
                return seconds
    return None


def eta_of(record: Mapping[str, Any]) -> tuple[float, str] | None:
    """(seconds, outcome) of the record's live `eta`, when it carries one."""
    eta = record.get("eta")
    if not isinstance(eta, Mapping):
        return None
    seconds = _number(eta.get("seconds"))
    return None if seconds is None else (seconds, str(eta.get("outcome") or ""))


def migration_labels(record: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    values = (record.get("vm"), record.get("id"), record.get("source"), record.get("destination"),
              policy_of(record.get("plan")))
    return tuple(zip(MIGRATION_LABELS, (str(v or "") for v in values)))


def in_flight_families(migrations: Iterable[Mapping[str, Any]]) -> list[Family]:
    """The per-migration gauges of the migrations still active (others are ignored)."""
    active = [m for m in migrations if m.get("state") in MIGRATION_ACTIVE_STATES]
    families = []
    for suffix, key, help_text in _FIGURE_GAUGES:
        samples = []
        for m in active:
            value = _number((m.get("figures") or {}).get(key))
            if value is not None:
                samples.append(Sample(migration_labels(m), value))
        families.append(Family(PREFIX + suffix, "gauge", help_text, MIGRATION_LABELS, tuple(samples)))
    start = [Sample(migration_labels(m), t) for m in active if (t := _epoch(m.get("started_at"))) is not None]
    families.append(Family(PREFIX + "start_time_seconds", "gauge",
                           "When the migration was sent to the source agent (Unix time).", MIGRATION_LABELS,
                           tuple(start)))
    progress = [Sample(migration_labels(m), float(m.get("progress") or 0)) for m in active]
    families.append(Family(PREFIX + "progress_percent", "gauge", "The migration's progress, 0..100.",
                           MIGRATION_LABELS, tuple(progress)))
    etas = [Sample(migration_labels(m) + (("outcome", eta[1]),), eta[0]) for m in active if (eta := eta_of(m))]
    families.append(Family(PREFIX + "eta_seconds", "gauge", "Seconds left, by the live forecast (issue 14), "
                           "with the outcome it expects.", MIGRATION_LABELS + ("outcome",), tuple(etas)))
    forecasts = [Sample(migration_labels(m), f) for m in active if (f := forecast_seconds(m)) is not None]
    families.append(Family(PREFIX + "forecast_seconds", "gauge", "The total duration forecast before the "
                           "migration started.", MIGRATION_LABELS, tuple(forecasts)))
    states = Counter(m["state"] for m in active)
    families.append(Family("ferry_vmi_migrations_in_flight", "gauge", "Migrations not ended yet, by state.",
                           ("state",), tuple(Sample((("state", s),), float(states.get(s, 0)))
                                             for s in MIGRATION_ACTIVE_STATES)))
    return families


def histogram(values: Iterable[float], bounds: tuple[float, ...]) -> tuple[tuple[tuple[float, int], ...], int, float]:
    """(cumulative buckets, count, sum) of `values` over upper `bounds` (the last must be +Inf)."""
    values = list(values)
    buckets = tuple((b, sum(1 for v in values if v <= b)) for b in bounds)
    return buckets, len(values), float(sum(values))


def _by_policy_histogram(name: str, help_text: str, pairs: Iterable[tuple[str, float]],
                         bounds: tuple[float, ...]) -> Family:
    grouped: dict[str, list[float]] = {}
    for policy, value in pairs:
        grouped.setdefault(policy, []).append(value)
    samples = []
    for policy in sorted(grouped):
        buckets, count, total = histogram(grouped[policy], bounds)
        samples.append(HistogramSample((("policy", policy),), buckets, count, total))
    return Family(name, "histogram", help_text, ("policy",), tuple(samples))


def finished_families(rows: Iterable[FinishedRow]) -> list[Family]:
    """Counters of ended migrations by result and policy; histograms of the succeeded ones'
    duration and downtime; the forecast's ratio to the actual duration where there was one."""
    rows = [r for r in rows if r.state in _FINAL_STATE_VALUES]
    counts = Counter((r.state.lower(), r.policy or "") for r in rows)
    counter = Family("ferry_vmi_migrations", "counter", "Migrations ended, by result and policy.",
                     ("result", "policy"),
                     tuple(Sample((("result", res), ("policy", pol)), float(n)) for (res, pol), n in sorted(counts.items())))
    succeeded = [r for r in rows if r.state == "SUCCEEDED"]
    duration = _by_policy_histogram(PREFIX + "duration_seconds", "How long succeeded migrations took.",
                                    ((r.policy or "", r.duration_s) for r in succeeded if r.duration_s is not None),
                                    DURATION_BUCKETS_S)
    downtime = _by_policy_histogram(PREFIX + "downtime_seconds", "The guest's downtime in succeeded migrations.",
                                    ((r.policy or "", r.downtime_s) for r in succeeded if r.downtime_s is not None),
                                    DOWNTIME_BUCKETS_S)
    ratio = _by_policy_histogram(PREFIX + "forecast_ratio", "Actual duration / forecast duration of succeeded "
                                 "migrations that had a forecast (1 = exact).",
                                 ((r.policy or "", r.duration_s / r.forecast_s) for r in succeeded
                                  if r.duration_s is not None and r.forecast_s), FORECAST_RATIO_BUCKETS)
    missed: dict[str, float] = {}
    for r in rows:
        if r.missed_zero_copy is not None:
            missed[r.policy or ""] = missed.get(r.policy or "", 0.0) + r.missed_zero_copy
    missed_family = Family("ferry_vmi_migrations_dirty_sync_missed_zero_copy", "counter",
                           "Dirty syncs of ended zero-copy migrations in which the kernel copied anyway "
                           "(QEMU's dirty-sync-missed-zero-copy, summed), by policy.", ("policy",),
                           tuple(Sample((("policy", pol),), n) for pol, n in sorted(missed.items())))
    return [counter, duration, downtime, ratio, missed_family]


def finished_row(state: str, policy: str | None, result: Mapping[str, Any] | None,
                 forecast_s: float | None = None) -> FinishedRow:
    """A FinishedRow from a record's result: the agent's duration (else the engine's wall time)
    and downtime, both in seconds."""
    result = result or {}
    duration_ms = _number(result.get("duration_ms"))
    wall = _number(result.get("wall_s"))
    downtime_ms = _number(result.get("downtime_ms"))
    return FinishedRow(state, policy, duration_ms / 1000 if duration_ms is not None else wall,
                       downtime_ms / 1000 if downtime_ms is not None else None, forecast_s,
                       _number(result.get("dirty_sync_missed_zero_copy")))


def host_families(hosts: Iterable[Mapping[str, Any]], migrations: Iterable[Mapping[str, Any]]) -> list[Family]:
    """Hosts by status, each host's status and zero-copy support, and migrations in/out of each."""
    hosts = list(hosts)
    statuses = Counter(h.get("status") for h in hosts)
    by_status = Family("ferry_hosts", "gauge", "Hosts, by status.", ("status",),
                       tuple(Sample((("status", s.value),), float(statuses.get(s.value, 0))) for s in HostStatus))
    status = Family("ferry_host_status", "gauge", "1 for each host, labelled with its status.",
                    ("host", "cluster", "status"),
                    tuple(Sample((("host", h["name"]), ("cluster", str(h.get("cluster") or "")),
                                  ("status", str(h.get("status")))), 1.0) for h in hosts))
    zerocopy = Family("ferry_host_zerocopy_support", "gauge", "1 for each host, labelled with what its agent "
                      f"says of zero-copy migrations ({'|'.join(z.value for z in ZeroCopySupport)}).",
                      ("host", "cluster", "support"),
                      tuple(Sample((("host", h["name"]), ("cluster", str(h.get("cluster") or "")),
                                    ("support", str(h.get("zerocopy") or ZeroCopySupport.UNKNOWN.value))), 1.0)
                            for h in hosts))
    active = [m for m in migrations if m.get("state") in MIGRATION_ACTIVE_STATES]
    out = Counter(m.get("source") for m in active)
    into = Counter(m.get("destination") for m in active)
    flows = []
    for h in hosts:
        flows.append(Sample((("host", h["name"]), ("direction", "in")), float(into.get(h["name"], 0))))
        flows.append(Sample((("host", h["name"]), ("direction", "out")), float(out.get(h["name"], 0))))
    in_flight = Family("ferry_host_migrations_in_flight", "gauge", "Migrations in flight into and out of each host.",
                       ("host", "direction"), tuple(flows))
    return [by_status, status, zerocopy, in_flight]

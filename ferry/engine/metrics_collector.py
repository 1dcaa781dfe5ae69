"""The Prometheus collector of the engine: reads the database at each scrape.

Nothing is counted in the engine's memory: in-flight migrations, hosts and the finished
migrations' results are read from the database when Prometheus scrapes, and mapped by
ferry.engine.metrics (pure). Several engines sharing a database therefore export the same
numbers, and a restarted engine loses no counts. The finished migrations are read as a few
JSON fields per row (state, policy name, duration, downtime, forecast, missed zero-copy syncs), not whole records.
The collector also exports how long it took (ferry_metrics_scrape_duration_seconds).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select

from ferry.engine import metrics as mp
from ferry.engine.db import Database
from ferry.engine.db import models as m
from ferry.engine.db.records import MIGRATION_FINAL_STATES

log = logging.getLogger("ferry.engine.metrics")

IN_FLIGHT_LIMIT = 10_000


def _bound(b: float) -> str:
    return "+Inf" if b == mp.INF else repr(float(b))


def to_prometheus(family: mp.Family) -> Metric:
    """One pure family as prometheus_client's metric family."""
    labels = list(family.label_names)
    if family.kind == "counter":
        out = CounterMetricFamily(family.name, family.help, labels=labels)
    elif family.kind == "histogram":
        out = HistogramMetricFamily(family.name, family.help, labels=labels)
    else:
        out = GaugeMetricFamily(family.name, family.help, labels=labels)
    for s in family.samples:
        values = [v for _, v in s.labels]
        if isinstance(s, mp.HistogramSample):
            out.add_metric(values, [(_bound(b), n) for b, n in s.buckets], s.total)
        else:
            out.add_metric(values, s.value)
    return out


def finished_rows(session) -> list[mp.FinishedRow]:
    """A FinishedRow per ended migration, from the JSON columns' fields only."""
    q = select(m.Migration.state,
               m.Migration.plan[("policy", "name")].as_string(),
               m.Migration.result["duration_ms"].as_float(),
               m.Migration.result["wall_s"].as_float(),
               m.Migration.result["downtime_ms"].as_float(),
               m.Migration.plan[("forecast", "totalSeconds")].as_float(),
               m.Migration.result["dirty_sync_missed_zero_copy"].as_float(),
               ).where(m.Migration.state.in_([s.value for s in MIGRATION_FINAL_STATES]))
    rows = []
    for state, policy, duration_ms, wall_s, downtime_ms, forecast_s, missed in session.execute(q):
        rows.append(mp.finished_row(state, policy, {"duration_ms": duration_ms, "wall_s": wall_s,
                                                    "downtime_ms": downtime_ms,
                                                    "dirty_sync_missed_zero_copy": missed}, forecast_s))
    return rows


class EngineCollector(Collector):
    """Everything the engine knows, as metric families, read at scrape time."""

    def __init__(self, db: Database):
        self.db = db

    def families(self) -> list[mp.Family]:
        with self.db.unit_of_work() as store:   # reads only: nothing to commit
            migrations = [r.to_dict() for r in store.migrations.list(active=True, limit=IN_FLIGHT_LIMIT)]
            hosts = [h.to_dict() for h in store.hosts.list()]
            finished = finished_rows(store.session)
        return (mp.in_flight_families(migrations) + mp.finished_families(finished)
                + mp.host_families(hosts, migrations))

    def collect(self) -> Iterator[Metric]:
        t0 = time.perf_counter()
        for family in self.families():
            yield to_prometheus(family)
        took = GaugeMetricFamily("ferry_metrics_scrape_duration_seconds",
                                 "How long reading the database for this scrape took.")
        took.add_metric([], time.perf_counter() - t0)
        yield took

    def describe(self) -> list[Metric]:
        return []   # built at scrape time: nothing to check at registration

"""What `ferry bench scale` measures on a running engine (issue 18 item 2), one function each.

- `refresh_period`: how often the host monitor refreshes every host, from the hosts'
  capabilities_at in the database, sampled every second over a window: the mean period
  (hosts / refreshes per second) and the worst gap any host saw (from the window's start to its
  first refresh, between refreshes, from its last to the window's end);
- `cpu_cores`: the engine process's CPU time over a wall-clock span (/proc/<pid>/stat);
- `api_latency`: 50 concurrent clients, each a bounded loop of GETs (loopback only), p50/p95/max;
- `planning_time`: planning the migrations that a drain of 100 hosts needs (every VM on them:
  destination choice + plan), in process, on the engine's database; the first plan apart.
"""
from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable

import httpx

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS   # utime + stime (fields 14, 15)


def _host_times(db) -> dict[str, float | None]:  # noqa: ANN001
    from sqlalchemy import select

    from ferry.engine.db import models as m

    with db.session() as session:
        return {name: (at.timestamp() if at is not None else None)
                for name, at in session.execute(select(m.Host.name, m.Host.capabilities_at))}


def refresh_and_cpu(db, pid: int, window_s: float) -> dict:  # noqa: ANN001
    """Samples the hosts' refresh times every second for `window_s` and the engine's CPU meanwhile."""
    first = _host_times(db)
    seen: dict[str, list[float]] = {name: [] for name in first}
    last = dict(first)
    t0, cpu0 = time.time(), _cpu_seconds(pid)
    wall0 = time.monotonic()
    while time.monotonic() - wall0 < window_s:
        time.sleep(1.0)
        now = time.time()
        for name, at in _host_times(db).items():
            if at is not None and at != last.get(name):
                seen.setdefault(name, []).append(now)
                last[name] = at
    cpu = (_cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0)
    t1 = time.time()
    refreshes = sum(len(v) for v in seen.values())
    worst = 0.0
    never = 0
    for times in seen.values():
        if not times:
            never += 1
            worst = max(worst, t1 - t0)
            continue
        points = [t0, *times, t1]
        worst = max(worst, max(b - a for a, b in zip(points, points[1:], strict=False)))
    hosts = len(seen)
    rate = refreshes / (t1 - t0)
    return {"window_s": round(t1 - t0, 1), "refreshes": refreshes, "refreshes_per_s": round(rate, 2),
            "mean_period_s": round(hosts / rate, 1) if rate else None, "worst_gap_s": round(worst, 1),
            "hosts_not_refreshed": never, "engine_cpu_cores": round(cpu, 3)}


def api_latency(url: str, token: str, paths: list[str], *, clients: int = 50, requests_each: int = 40,
                timeout: float = 30.0) -> dict:
    """`clients` threads, each `requests_each` GETs over its own keep-alive connection."""
    if not url.startswith(("http://127.", "https://127.", "http://localhost", "https://localhost")):
        raise ValueError(f"the API load runs against loopback only, got {url}")
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client(k: int) -> None:
        mine, bad = [], []
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout) as c:
            start.wait()
            for i in range(requests_each):
                path = paths[(k * requests_each + i) % len(paths)]
                t = time.perf_counter()
                try:
                    r = c.get(path)
                    ok = r.status_code == 200
                except httpx.HTTPError as exc:
                    ok, r = False, exc
                mine.append(time.perf_counter() - t)
                if not ok:
                    bad.append(f"{path}: {getattr(r, 'status_code', r)}")
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    wall = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - wall
    ms = sorted(x * 1000 for x in latencies)
    return {"clients": clients, "requests": len(ms), "errors": len(errors), "error_samples": errors[:5],
            "p50_ms": round(statistics.median(ms), 1), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1),
            "max_ms": round(ms[-1], 1), "requests_per_s": round(len(ms) / wall, 1)}


def planning_time(db, drained_hosts: list[str], plan_all: Callable, repeats: int = 3) -> dict:  # noqa: ANN001
    """Time `plan_all(db, drained_hosts)` -> list of (vm, destination) for every VM on them.

    The first plan after the inventory is loaded is timed apart (`first_s`): it also pays for
    what a long-running engine has done once (SQL compiled for this database's engine, the
    tables' pages read into PostgreSQL's cache); `seconds` is the median of `repeats` more."""
    times = []
    for _ in range(1 + repeats):
        t = time.perf_counter()
        planned = plan_all(db, drained_hosts)
        times.append(time.perf_counter() - t)
    destinations = {d for _vm, d in planned}
    return {"hosts": len(drained_hosts), "migrations": len(planned),
            "seconds": round(statistics.median(times[1:]) if repeats else times[0], 3),
            "first_s": round(times[0], 3), "destinations_used": len(destinations),
            "into_drained_hosts": sum(1 for _vm, d in planned if d in set(drained_hosts))}

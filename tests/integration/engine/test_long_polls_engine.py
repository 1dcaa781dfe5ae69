"""200 open long polls against a real engine process: GET /api/health still answers (issue 11 item 4).

Before, 60 readonly long polls on /wait took all 40 worker threads and health took 8.7 s. The
engine here is `ferry engine run` on a loopback port, with one migration record that stays
RUNNING (its source agent's address answers nothing), so every long poll waits its full timeout.
The latency is measured and printed; the assertion is that health answers while the long polls
are open, with a margin far above the 100 ms target (timings belong to benchmarks); run with
-s to see the numbers.
"""
from __future__ import annotations

import asyncio
import statistics
import time

import httpx

from ferry.common.vmspec import VmSpec
from ferry.engine.api.long_polls import DEFAULT_PER_TOKEN
from ferry.engine.db import Database, upgrade_database
from ferry.engine.process import free_port, start_engine, stop_engine
from ferry.engine.services.tokens import issue_token

LONG_POLLS = 200
WAIT_S = 8.0
HEALTH_SAMPLES = 20


def _engine_with_a_running_migration(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'engine.db'}"
    upgrade_database(db_url)
    db = Database(db_url)
    with db.unit_of_work() as store:
        store.clusters.create("c", policy="Very large VMs")
        for name, address in (("h1", "127.255.255.253"), ("h2", "127.255.255.254")):   # nothing listens there
            store.hosts.add(name, cluster="c", address=address, status="UP", link_speed_mbps=10000)
        store.vms.add(VmSpec(name="vm1", memory_mib=512, vcpus=1, kernel="/k"), cluster="c", host="h1")
        m = store.migrations.create("vm1", source="h1", destination="h2", plan={"params": {}}, state="RUNNING")
    db.dispose()
    tokens = [issue_token(db_url, "readonly", f"poller{i}")[0] for i in range(4)]
    return db_url, m.id, tokens


async def _measure(url: str, migration_id: str, tokens: list[str]) -> dict:
    # No connection reuse: a kept-alive connection the server closed would fail a poll for nothing.
    limits = httpx.Limits(max_connections=LONG_POLLS + 20, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=WAIT_S + 30) as client, \
            httpx.AsyncClient(base_url=url, timeout=30) as health:
        first = (await client.get(f"/api/migrations/{migration_id}",
                                  headers={"Authorization": f"Bearer {tokens[0]}"})).json()
        await health.get("/api/health")             # its connection is open before the polls start
        per_token = [DEFAULT_PER_TOKEN] * 3 + [LONG_POLLS - 3 * DEFAULT_PER_TOKEN]

        async def poll(token: str, wait: float = WAIT_S) -> tuple[int, float]:
            t0 = time.monotonic()
            r = await client.get(f"/api/migrations/{migration_id}/wait",
                                 params={"since": first["updated_at"], "timeout": wait},
                                 headers={"Authorization": f"Bearer {token}"})
            return r.status_code, time.monotonic() - t0

        polls = [asyncio.create_task(poll(tok)) for tok, n in zip(tokens, per_token) for _ in range(n)]
        # Open: the first token's next long poll is refused once its 64 are all waiting.
        over, deadline = None, time.monotonic() + WAIT_S - 1.5
        while time.monotonic() < deadline:
            over, _ = await poll(tokens[0], 0.0)
            if over == 429:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)                     # the last ones' auth and first read are done
        latencies, codes = [], []
        for _ in range(HEALTH_SAMPLES):
            t0 = time.monotonic()
            r = await health.get("/api/health")
            latencies.append(time.monotonic() - t0)
            codes.append(r.status_code)
            await asyncio.sleep(0.02)
        still_open = sum(1 for p in polls if not p.done())
        results = await asyncio.gather(*polls)
    return {"latencies": latencies, "codes": codes, "still_open": still_open, "results": results, "over": over}


def test_health_answers_with_200_long_polls_open_and_the_tokens_limit_is_429(tmp_path, capsys):
    db_url, migration_id, tokens = _engine_with_a_running_migration(tmp_path)
    port = free_port()
    proc = start_engine(db_url, tmp_path / "engine.log", port=port)
    try:
        got = asyncio.run(_measure(f"http://127.0.0.1:{port}", migration_id, tokens))
    finally:
        stop_engine(proc)
    lat_ms = sorted(x * 1000 for x in got["latencies"])
    with capsys.disabled():
        print(f"\nhealth with {got['still_open']} long polls open: median {statistics.median(lat_ms):.1f} ms, "
              f"max {lat_ms[-1]:.1f} ms over {HEALTH_SAMPLES} calls, in order (ms): "
              f"{[round(x * 1000, 1) for x in got['latencies']]}")
    assert got["still_open"] == LONG_POLLS            # every long poll was open while health was asked
    assert got["codes"] == [200] * HEALTH_SAMPLES
    # Generous: answered, not starved (it took 8.7 s behind 60 long polls); the target of 100 ms is
    # for the median printed above, on a machine that is not shared with other test runs.
    assert lat_ms[-1] < 2000, lat_ms
    assert got["over"] == 429
    statuses = [code for code, _ in got["results"]]
    assert statuses == [200] * LONG_POLLS
    assert min(took for _, took in got["results"]) >= WAIT_S - 0.5   # they really waited

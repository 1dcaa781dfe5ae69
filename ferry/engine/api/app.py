"""The engine's FastAPI application: one process, one database, a unit of work per request.

`create_app(database_url)` builds it; at start-up (the ASGI lifespan) the database schema is
upgraded to the newest Alembic revision. OpenAPI is at /openapi.json, docs at /docs.
The app holds the orchestrator (migrations), the VM lifecycle and the host monitor; with
`background=True` (what `ferry engine run` uses) the lifespan also starts the monitor's
periodic refresh and picks up migrations a previous engine process left running.
Other parts add their routers with `app.include_router(...)` (see `ROUTERS`).
"""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool

import ferry
from ferry.engine.api import inventory, maintenance, operations, plans, policies, steering
from ferry.engine.api.auth import require_token
from ferry.engine.api.body_guard import refuse_marked_body
from ferry.engine.api.errors import install_error_handlers
from ferry.engine.api.long_polls import DEFAULT_PER_TOKEN, LongPollLimit, SharedReads
from ferry.engine.api.responses import HealthOut
from ferry.engine.db import Database

ROUTERS = [inventory.router, policies.router, plans.router, operations.router, steering.router, maintenance.router]


def create_app(database_url: str | None = None, *, upgrade: bool = True, background: bool = False,
               monitor_interval: float = 5.0, poll_interval: float = 0.5,
               long_polls_per_token: int = DEFAULT_PER_TOKEN, engine_id: str | None = None) -> FastAPI:
    from ferry.engine.drain_runner import DrainRunner
    from ferry.engine.monitor import HostMonitor, PlacementGuard
    from ferry.engine.orchestrator import Orchestrator
    from ferry.engine.ownership import ownership_for
    from ferry.engine.services.vms import VmLifecycle

    db = Database(database_url)
    guard = PlacementGuard()
    ownership = ownership_for(db, engine_id)   # leases on PostgreSQL (several engines), sole owner on SQLite
    orchestrator = Orchestrator(db, guard=guard, poll_interval=poll_interval, ownership=ownership)
    monitor = HostMonitor(db, guard=guard, interval=monitor_interval,
                          share=ownership.hosts_to_refresh if ownership.shared else None)   # its share of the hosts
    drain_runner = DrainRunner(db, orchestrator, ownership=ownership)   # host maintenance (issue 15), beside the orchestrator

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if upgrade:
            await run_in_threadpool(db.upgrade)
        ownership.start()             # the lease heartbeat, and the takeover of other engines' expired work
        if background:
            await run_in_threadpool(orchestrator.start)
            monitor.start()
            drain_runner.start()      # resumes drains a previous engine process left going
        yield
        if background:
            await run_in_threadpool(drain_runner.stop)
            await run_in_threadpool(monitor.stop)
        await run_in_threadpool(orchestrator.stop)
        await run_in_threadpool(ownership.stop)   # releases this engine's leases: taken over at once
        db.dispose()

    app = FastAPI(title="Ferry engine", version=getattr(ferry, "__version__", "0.1.0"),
                  description="Inventory, migration policies and plans of a Ferry installation.",
                  lifespan=lifespan)
    app.state.db = db
    app.state.orchestrator = orchestrator
    app.state.ownership = ownership
    app.state.monitor = monitor
    app.state.long_polls = LongPollLimit(long_polls_per_token)
    app.state.shared_reads = SharedReads()
    app.state.drain_runner = drain_runner
    app.state.vm_lifecycle = VmLifecycle(db, guard=guard)
    install_error_handlers(app)
    for router in ROUTERS:  # every router needs a bearer token (ferry.engine.api.auth), then a sound body
        app.include_router(router, dependencies=[Depends(require_token), Depends(refuse_marked_body)])

    health_body = {"status": "ok", "database": db.engine.dialect.name}

    @app.get("/api/health", tags=["engine"], response_model=HealthOut)
    async def health() -> dict:
        # async, no dependency and no I/O: it answers on the event loop without a worker thread
        # (a sync dependency would run in the pool), even when every worker thread is busy
        return health_body

    from ferry.engine import metrics_http, web
    metrics_http.install(app)   # GET /metrics and the request-latency middleware (issue 16)
    web.mount(app)              # the dashboard at / (issue 16)

    return app

"""The engine's FastAPI application: one process, one database, a session per request.

`create_app(database_url)` builds it; at start-up (the ASGI lifespan) the database schema is
upgraded to the newest Alembic revision. OpenAPI is at /openapi.json, docs at /docs.
Other parts add their routers with `app.include_router(...)` (see `ROUTERS`).
"""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

import ferry
from ferry.engine.api import inventory, plans, policies
from ferry.engine.api.errors import install_error_handlers
from ferry.engine.db import Database

ROUTERS = [inventory.router, policies.router, plans.router]


def create_app(database_url: str | None = None, *, upgrade: bool = True) -> FastAPI:
    db = Database(database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if upgrade:
            await run_in_threadpool(db.upgrade)
        yield
        db.dispose()

    app = FastAPI(title="Ferry engine", version=getattr(ferry, "__version__", "0.1.0"),
                  description="Inventory, migration policies and plans of a Ferry installation.",
                  lifespan=lifespan)
    app.state.db = db
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)

    @app.get("/api/health", tags=["engine"])
    def health(request: Request) -> dict:
        return {"status": "ok", "database": request.app.state.db.engine.dialect.name}

    return app

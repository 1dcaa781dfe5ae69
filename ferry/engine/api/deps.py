"""What routes depend on, as Annotated dependencies: the request's unit of work and the engine's
parts created with the app (ferry.engine.api.app). Routes name these instead of reaching into
`request.app.state`.

The getters only read the app's state, so they are async: FastAPI runs a sync dependency in
the thread pool, and a thread hop for an attribute read costs a request a queue slot.

`StoreDep` is one unit of work per request: committed when the route returns, rolled back when
it raises (scope="function": before the response is sent, so a failed commit is an error answer).
`ReadStoreDep` is the same for a route that only reads (Database.reads).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from ferry.engine.db import Database, Store

if TYPE_CHECKING:
    from ferry.engine.api.long_polls import LongPollLimit
    from ferry.engine.monitor import HostMonitor
    from ferry.engine.orchestrator import Orchestrator
    from ferry.engine.services.vms import VmLifecycle


async def get_database(request: Request) -> Database:
    return request.app.state.db


def get_store(db: Annotated[Database, Depends(get_database)]) -> Iterator[Store]:
    with db.unit_of_work() as store:
        yield store


def get_read_store(db: Annotated[Database, Depends(get_database)]) -> Iterator[Store]:
    with db.reads() as store:
        yield store


async def get_orchestrator(request: Request) -> Orchestrator:
    return request.app.state.orchestrator


async def get_vm_lifecycle(request: Request) -> VmLifecycle:
    return request.app.state.vm_lifecycle


async def get_monitor(request: Request) -> HostMonitor:
    return request.app.state.monitor


async def get_long_poll_limit(request: Request) -> LongPollLimit:
    return request.app.state.long_polls


DatabaseDep = Annotated[Database, Depends(get_database)]
StoreDep = Annotated[Store, Depends(get_store, scope="function")]
# For routes that only read: no transaction on PostgreSQL (Database.reads: two round trips fewer)
ReadStoreDep = Annotated[Store, Depends(get_read_store, scope="function")]
OrchestratorDep = Annotated["Orchestrator", Depends(get_orchestrator)]
VmLifecycleDep = Annotated["VmLifecycle", Depends(get_vm_lifecycle)]
MonitorDep = Annotated["HostMonitor", Depends(get_monitor)]
LongPollLimitDep = Annotated["LongPollLimit", Depends(get_long_poll_limit)]

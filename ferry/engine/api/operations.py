"""REST routes that make things happen on hosts: migrate, cancel, start/stop VMs, refresh hosts.

They hand the work to the engine's orchestrator, VM lifecycle and host monitor (created with the
app, see ferry.engine.api.app); a migration answers at once (202) with its record, whose state,
progress and figures GET /api/migrations/{id} serves while it runs, and
GET /api/migrations/{id}/wait?since=<updated_at> serves as soon as they change (a long poll, so a
follower learns of the end without polling fast).
"""
from __future__ import annotations

import time

from fastapi import APIRouter, Body, Query, Request
from pydantic import Field

from ferry.engine.api import long_polls
from ferry.engine.api.deps import DatabaseDep, LongPollLimitDep, MonitorDep, OrchestratorDep, VmLifecycleDep
from ferry.engine.api.responses import HostOut, MigrationOut, VmOut
from ferry.engine.api.schemas import Body as StrictBody
from ferry.engine.api.schemas import PlanRequest
from ferry.engine.db import Database
from ferry.engine.db.records import MigrationState
from ferry.engine.services.inventory import vm_view

router = APIRouter(prefix="/api")


class MigrateRequest(PlanRequest):
    user: str | None = Field(None, description="who asks (shown in the events); default 'admin'")


class StartRequest(StrictBody):
    host: str | None = Field(None, description="host to start on; null = the engine picks an up host")


class CancelRequest(StrictBody):
    user: str | None = None


def _vm_out(db: Database, name: str) -> dict:
    with db.unit_of_work() as store:
        return vm_view(store, store.vms.get(name))


@router.post("/vms/{vm}/migrate", status_code=202, tags=["migrations"], response_model=MigrationOut)
def migrate(vm: str, orchestrator: OrchestratorDep,
            body: MigrateRequest = Body(default_factory=MigrateRequest)) -> dict:
    """Plan and start a live migration; follow it at GET /api/migrations/{id}."""
    return orchestrator.migrate(vm, to=body.to, policy=body.policy, user=body.user).to_dict()


MAX_WAIT_S = 10.0


@router.get("/migrations/{migration_id}/wait", tags=["migrations"], response_model=MigrationOut,
            responses={429: {"description": "the token already holds its limit of open long polls"}})
async def wait_for_change(migration_id: str, request: Request, db: DatabaseDep, orchestrator: OrchestratorDep,
                          limit: LongPollLimitDep,
                          since: str | None = Query(None, description="the record's updated_at as last seen; "
                                                    "omitted = answer at once"),
                          timeout: float = Query(MAX_WAIT_S, ge=0, le=MAX_WAIT_S,
                                                 description="seconds to wait at most for a change")) -> dict:
    """The migration's record once its updated_at differs from `since` or it has ended, or
    after `timeout` s unchanged. Waiting holds no request thread (ferry.engine.api.long_polls);
    each token may hold a limited number open (429 beyond it)."""
    changes = orchestrator.changes
    reads = request.app.state.shared_reads
    token = getattr(request.state, "token", None)
    with limit.slot(token.name if token is not None else "-"):
        deadline = time.monotonic() + timeout
        while True:
            seen = changes.count(migration_id)          # before the read: no write slips past
            body = await reads.read(migration_id, seen, lambda: _record(db, migration_id))
            left = deadline - time.monotonic()
            if since is None or body["updated_at"] != since or MigrationState(body["state"]).final or left <= 0:
                return body
            await long_polls.wait_past(changes, migration_id, seen, left)


def _record(db: Database, migration_id: str) -> dict:
    with db.unit_of_work() as store:
        return store.migrations.get(migration_id).to_dict()


@router.post("/migrations/{migration_id}/cancel", tags=["migrations"], response_model=MigrationOut)
def cancel(migration_id: str, orchestrator: OrchestratorDep,
           body: CancelRequest = Body(default_factory=CancelRequest)) -> dict:
    """Cancel a running migration; the VM stays on its source host."""
    return orchestrator.cancel(migration_id, user=body.user).to_dict()


@router.post("/vms/{vm}/start", tags=["vms"], response_model=VmOut)
def start_vm(vm: str, db: DatabaseDep, vms: VmLifecycleDep,
             body: StartRequest = Body(default_factory=StartRequest)) -> dict:
    """Start a DOWN VM on a host (its agent's VM.create with the VM's spec)."""
    return _vm_out(db, vms.start(vm, host=body.host).name)


@router.post("/vms/{vm}/stop", tags=["vms"], response_model=VmOut)
def stop_vm(vm: str, db: DatabaseDep, vms: VmLifecycleDep) -> dict:
    """Stop (destroy) a running VM on its host."""
    return _vm_out(db, vms.stop(vm).name)


@router.post("/hosts/{name}/refresh", tags=["hosts"], response_model=HostOut)
def refresh_host(name: str, monitor: MonitorDep) -> dict:
    """Ask the host's agent now: status, capabilities, free memory, VMs."""
    return monitor.refresh(name).to_dict()

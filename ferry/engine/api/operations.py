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

from ferry.engine.api.schemas import Body as StrictBody
from ferry.engine.api.schemas import PlanRequest

router = APIRouter(prefix="/api")


class MigrateRequest(PlanRequest):
    user: str | None = Field(None, description="who asks (shown in the events); default 'admin'")


class StartRequest(StrictBody):
    host: str | None = Field(None, description="host to start on; null = the engine picks an up host")


class CancelRequest(StrictBody):
    user: str | None = None


def _vm_out(request: Request, name: str) -> dict:
    from ferry.engine.db import Store

    with request.app.state.db.session() as session:
        store = Store(session)
        vm = store.get_vm(name)
        return vm.to_dict(policy_name=store.policy_name(vm.overrides.policy_id))


@router.post("/vms/{vm}/migrate", status_code=202, tags=["migrations"])
def migrate(vm: str, request: Request, body: MigrateRequest = Body(default_factory=MigrateRequest)) -> dict:
    """Plan and start a live migration; follow it at GET /api/migrations/{id}."""
    record = request.app.state.orchestrator.migrate(vm, to=body.to, policy=body.policy, user=body.user)
    return record.to_dict()


MAX_WAIT_S = 10.0
FINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "ABORTED")


@router.get("/migrations/{migration_id}/wait", tags=["migrations"])
def wait_for_change(migration_id: str, request: Request,
                    since: str | None = Query(None, description="the record's updated_at as last seen; "
                                              "omitted = answer at once"),
                    timeout: float = Query(MAX_WAIT_S, ge=0, le=MAX_WAIT_S,
                                           description="seconds to wait at most for a change")) -> dict:
    """The migration's record once its updated_at differs from `since` or it has ended, or
    after `timeout` s unchanged."""
    from ferry.engine.db import Store

    changes = request.app.state.orchestrator.changes
    deadline = time.monotonic() + timeout
    while True:
        seen = changes.count(migration_id)          # before the read: no write slips past
        with request.app.state.db.session() as session:
            record = Store(session).get_migration(migration_id).to_dict()
        left = deadline - time.monotonic()
        if since is None or record["updated_at"] != since or record["state"] in FINAL or left <= 0:
            return record
        changes.wait_past(migration_id, seen, left)


@router.post("/migrations/{migration_id}/cancel", tags=["migrations"])
def cancel(migration_id: str, request: Request, body: CancelRequest = Body(default_factory=CancelRequest)) -> dict:
    """Cancel a running migration; the VM stays on its source host."""
    return request.app.state.orchestrator.cancel(migration_id, user=body.user).to_dict()


@router.post("/vms/{vm}/start", tags=["vms"])
def start_vm(vm: str, request: Request, body: StartRequest = Body(default_factory=StartRequest)) -> dict:
    """Start a DOWN VM on a host (its agent's VM.create with the VM's spec)."""
    return _vm_out(request, request.app.state.vm_lifecycle.start(vm, host=body.host).name)


@router.post("/vms/{vm}/stop", tags=["vms"])
def stop_vm(vm: str, request: Request) -> dict:
    """Stop (destroy) a running VM on its host."""
    return _vm_out(request, request.app.state.vm_lifecycle.stop(vm).name)


@router.post("/hosts/{name}/refresh", tags=["hosts"])
def refresh_host(name: str, request: Request) -> dict:
    """Ask the host's agent now: status, capabilities, free memory, VMs."""
    return request.app.state.monitor.refresh(name).to_dict()

"""REST routes of host maintenance (issue 15) and of steering a running migration.

POST /api/hosts/{name}/maintenance starts draining the host (202, the progress view), GET the
same path is the one progress view (VMs done/total, bytes, the drain's ETA, a line per running
migration), .../maintenance/cancel, .../maintenance/pause, .../maintenance/resume steer the
drain, POST /api/hosts/{name}/activate brings a host in MAINTENANCE back UP.
POST /api/migrations/{id}/force-complete finishes a running migration now and says how.
Unknown host or migration: 404; a state that does not allow the request: 409 saying why.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Body, Request
from pydantic import Field

from ferry.engine import maintenance
from ferry.engine.api.deps import DatabaseDep, OrchestratorDep, StoreDep
from ferry.engine.api.responses import HostOut, Out
from ferry.engine.api.schemas import Body as StrictBody
from ferry.engine.db.store import Store
from ferry.engine.steering import force_complete as steer_force_complete

router = APIRouter(prefix="/api")


class MaintenanceRequest(StrictBody):
    reason: str | None = Field(None, max_length=maintenance.MAX_REASON_CHARS,
                               description="why (shown in event 600)")
    order: str = Field("shortest", pattern="^(shortest|largest)$",
                       description="shortest (default: slots free up fast) or largest first, by forecast")
    user: str | None = None


class CancelMaintenanceRequest(StrictBody):
    abort_running: bool = Field(False, description="also cancel the migrations already running")
    user: str | None = None


class UserRequest(StrictBody):
    user: str | None = None


class RunningLine(Out):
    vm: str
    migration_id: str | None
    destination: str | None
    state: str | None
    progress: int
    bytes: int
    eta_seconds: float | None
    paused_vm: bool


class MaintenanceOut(Out):
    host: str
    host_status: str = Field(description="UP | PREPARING_FOR_MAINTENANCE | MAINTENANCE | ...")
    drain_id: str | None
    state: str | None = Field(description="ACTIVE | PAUSED | CANCELLING | DONE | CANCELLED; null: never drained")
    vms_total: int
    vms_done: int
    vms_running: int
    vms_queued: int
    bytes_done: int
    bytes_expected: int
    eta_seconds: float | None = Field(description="the whole drain's ETA from the forecast; null when a VM "
                                                  "is stuck, the drain is paused, or a VM never converges")
    running: list[RunningLine]
    stuck: list[dict[str, Any]]
    items: list[dict[str, Any]]


class ForceCompleteOut(Out):
    migration_id: str
    vm: str
    source: str | None
    destination: str | None
    mode: str | None = Field(description="postcopy | downtime: which happened")
    downtime_ms: int | None
    reason: str | None


def _wake(request: Request) -> None:
    runner = getattr(request.app.state, "drain_runner", None)
    if runner is not None:
        runner.wake()


def _view(db, name: str) -> dict:
    with db.unit_of_work() as store:
        return maintenance.view(store, name)


def _changed(request: Request, db, name: str, change: Callable[[Store], object]) -> dict:
    """Make the change in its own unit of work (committed), wake the drain runner, then show
    the drain as it is now (another unit of work, so the view sees what was committed)."""
    with db.unit_of_work() as store:
        change(store)
    _wake(request)
    return _view(db, name)


@router.post("/hosts/{name}/maintenance", status_code=202, tags=["hosts"], response_model=MaintenanceOut)
def start_maintenance(name: str, request: Request, db: DatabaseDep,
                      body: MaintenanceRequest = Body(default_factory=MaintenanceRequest)) -> dict:
    """PREPARING_FOR_MAINTENANCE: migrate every VM away (the drain), then MAINTENANCE."""
    return _changed(request, db, name, lambda store: maintenance.start(
        store, name, reason=body.reason, order=body.order, user=body.user))


@router.get("/hosts/{name}/maintenance", tags=["hosts"], response_model=MaintenanceOut)
def get_maintenance(name: str, store: StoreDep) -> dict:
    """The host's latest drain: VMs done/total, bytes, ETA, one line per running migration."""
    return maintenance.view(store, name)


@router.post("/hosts/{name}/maintenance/cancel", tags=["hosts"], response_model=MaintenanceOut)
def cancel_maintenance(name: str, request: Request, db: DatabaseDep,
                       body: CancelMaintenanceRequest = Body(default_factory=CancelMaintenanceRequest)) -> dict:
    """Drop the queued migrations, let running ones finish (abort_running: cancel them); UP again."""
    return _changed(request, db, name, lambda store: maintenance.cancel(
        store, name, abort_running=body.abort_running, user=body.user))


@router.post("/hosts/{name}/maintenance/pause", tags=["hosts"], response_model=MaintenanceOut)
def pause_maintenance(name: str, request: Request, db: DatabaseDep,
                      body: UserRequest = Body(default_factory=UserRequest)) -> dict:
    """No new migration of the drain starts; running ones go on."""
    return _changed(request, db, name, lambda store: maintenance.pause(store, name, user=body.user))


@router.post("/hosts/{name}/maintenance/resume", tags=["hosts"], response_model=MaintenanceOut)
def resume_maintenance(name: str, request: Request, db: DatabaseDep,
                       body: UserRequest = Body(default_factory=UserRequest)) -> dict:
    return _changed(request, db, name, lambda store: maintenance.resume(store, name, user=body.user))


@router.post("/hosts/{name}/activate", tags=["hosts"], response_model=HostOut)
def activate_host(name: str, store: StoreDep, body: UserRequest = Body(default_factory=UserRequest)) -> dict:
    """MAINTENANCE -> UP (event VDS_ACTIVATE 16)."""
    return maintenance.activate(store, name, user=body.user).to_dict()


@router.post("/migrations/{migration_id}/force-complete", tags=["migrations"], response_model=ForceCompleteOut)
def force_complete(migration_id: str, db: DatabaseDep, orchestrator: OrchestratorDep,
                   body: UserRequest = Body(default_factory=UserRequest)) -> dict:
    """Finish a running migration now: post-copy where allowed, else a raised downtime limit."""
    return steer_force_complete(db, orchestrator.agent, migration_id, user=body.user)

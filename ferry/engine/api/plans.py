"""REST routes for plans (the dry run of a migration) and the migration/event history."""
from __future__ import annotations

from fastapi import APIRouter, Body, Query

from ferry.engine.api.deps import OrchestratorDep, ReadStoreDep, StoreDep
from ferry.engine.api.responses import EventOut, MigrationOut, PlanOut, RecommendationOut
from ferry.engine.api.schemas import PlanRequest
from ferry.engine.migration_eta import with_eta
from ferry.engine.services import events
from ferry.engine.services.forecasts import DEFAULT_DIRTY_SECONDS, forecast_for_vm, recommend_for_vm
from ferry.engine.services.planning import plan_for_vm

router = APIRouter(prefix="/api")


@router.post("/vms/{vm}/plan", tags=["plans"], response_model=PlanOut)
def plan(vm: str, store: StoreDep, orchestrator: OrchestratorDep,
         body: PlanRequest = Body(default_factory=PlanRequest),
         forecast: bool = Query(False, description="also forecast the migration: the source agent measures "
                                "the VM's dirty rate (VM.getDirtyRate, `dirtySeconds` s) first"),
         dirty_seconds: int = Query(DEFAULT_DIRTY_SECONDS, alias="dirtySeconds", ge=1, le=60,
                                    description="the dirty-rate measurement's window (s)"),
         dirty_pattern: str = Query("linear", alias="dirtyPattern", pattern="^(linear|random)$",
                                    description="how the guest writes, if known: linear (new pages, the "
                                    "worst case) or random (uniformly random pages of its memory)")) -> dict:
    """What VM.migrate would be sent now: params, libvirt flags, and why values differ from
    what the admin set; with `forecast=true` also whether it will converge, abort or switch to
    post-copy, when, and with what downtime (docs/forecast.md). Reads only; nothing is migrated."""
    if forecast:
        return forecast_for_vm(store, orchestrator.agent, vm, to=body.to, policy=body.policy,
                               seconds=dirty_seconds, pattern=dirty_pattern)
    return plan_for_vm(store, vm, to=body.to, policy=body.policy).to_dict()


@router.post("/vms/{vm}/recommend", tags=["plans"], response_model=RecommendationOut)
def recommend(vm: str, store: StoreDep, orchestrator: OrchestratorDep,
              body: PlanRequest = Body(default_factory=PlanRequest),
              dirty_seconds: int = Query(DEFAULT_DIRTY_SECONDS, alias="dirtySeconds", ge=1, le=60,
                                         description="the dirty-rate measurement's window (s)"),
              dirty_pattern: str = Query("linear", alias="dirtyPattern", pattern="^(linear|random)$",
                                         description="how the guest writes, if known")) -> dict:
    """Which policy to migrate the VM with: the source agent measures it once, every policy
    (built-in and custom) is forecast for it, ranked by outcome, total time and downtime
    (`policy` in the body is ignored). Reads only; nothing is migrated."""
    return recommend_for_vm(store, orchestrator.agent, vm, to=body.to, seconds=dirty_seconds, pattern=dirty_pattern)


@router.get("/migrations", tags=["migrations"], response_model=list[MigrationOut])
def list_migrations(store: ReadStoreDep, vm: str | None = None, active: bool | None = None,
                    limit: int = Query(100, ge=1, le=1000)) -> list[dict]:
    return [with_eta(m.to_dict()) for m in store.migrations.list(vm=vm, active=active, limit=limit)]


@router.get("/migrations/{migration_id}", tags=["migrations"], response_model=MigrationOut)
def show_migration(migration_id: str, store: ReadStoreDep) -> dict:
    """The migration's record; while it runs, `eta` ({seconds, outcome}) is the pre-copy model
    run again from its last status sample (docs/forecast.md)."""
    return with_eta(store.migrations.get(migration_id).to_dict())


@router.get("/events", tags=["events"], response_model=list[EventOut])
def list_events(store: ReadStoreDep, vm: str | None = None, host: str | None = None, migration: str | None = None,
                after: int | None = Query(None, ge=0), limit: int = Query(100, ge=1, le=1000)) -> list[dict]:
    return [e.to_dict() for e in events.list_events(store, vm=vm, host=host, migration_id=migration,
                                                    after_id=after, limit=limit)]

"""REST routes for plans (the dry run of a migration) and the migration/event history."""
from __future__ import annotations

from fastapi import APIRouter, Body, Query

from ferry.engine.api.deps import StoreDep
from ferry.engine.api.responses import EventOut, MigrationOut, PlanOut
from ferry.engine.api.schemas import PlanRequest
from ferry.engine.services.planning import plan_for_vm

router = APIRouter(prefix="/api")


@router.post("/vms/{vm}/plan", tags=["plans"], response_model=PlanOut)
def plan(vm: str, store: StoreDep, body: PlanRequest = Body(default_factory=PlanRequest)) -> dict:
    """What VM.migrate would be sent now: params, libvirt flags, and why values differ from
    what the admin set. Reads only; nothing is migrated."""
    return plan_for_vm(store, vm, to=body.to, policy=body.policy).to_dict()


@router.get("/migrations", tags=["migrations"], response_model=list[MigrationOut])
def list_migrations(store: StoreDep, vm: str | None = None, active: bool | None = None,
                    limit: int = Query(100, ge=1, le=1000)) -> list[dict]:
    return [m.to_dict() for m in store.migrations.list(vm=vm, active=active, limit=limit)]


@router.get("/migrations/{migration_id}", tags=["migrations"], response_model=MigrationOut)
def show_migration(migration_id: str, store: StoreDep) -> dict:
    return store.migrations.get(migration_id).to_dict()


@router.get("/events", tags=["events"], response_model=list[EventOut])
def list_events(store: StoreDep, vm: str | None = None, host: str | None = None, migration: str | None = None,
                after: int | None = Query(None, ge=0), limit: int = Query(100, ge=1, le=1000)) -> list[dict]:
    return [e.to_dict() for e in store.events.list(vm=vm, host=host, migration_id=migration,
                                                   after_id=after, limit=limit)]

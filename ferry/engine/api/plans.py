"""REST routes for plans (the dry run of a migration) and the migration/event history."""
from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Query

from ferry.engine.api.deps import get_store
from ferry.engine.api.schemas import PlanRequest
from ferry.engine.db import Store
from ferry.engine.db.plan_inputs import plan_for_vm

router = APIRouter(prefix="/api")


@router.post("/vms/{vm}/plan", tags=["plans"])
def plan(vm: str, body: PlanRequest = Body(default_factory=PlanRequest),
         store: Store = Depends(get_store)) -> dict:
    """What VM.migrate would be sent now: params, libvirt flags, and why values differ from
    what the admin set. Reads only; nothing is migrated."""
    return plan_for_vm(store, vm, to=body.to, policy=body.policy).to_dict()


@router.get("/migrations", tags=["migrations"])
def list_migrations(vm: str | None = None, active: bool | None = None,
                    limit: int = Query(100, ge=1, le=1000), store: Store = Depends(get_store)) -> list[dict]:
    return [m.to_dict() for m in store.list_migrations(vm=vm, active=active, limit=limit)]


@router.get("/migrations/{migration_id}", tags=["migrations"])
def show_migration(migration_id: str, store: Store = Depends(get_store)) -> dict:
    return store.get_migration(migration_id).to_dict()


@router.get("/events", tags=["events"])
def list_events(vm: str | None = None, host: str | None = None, migration: str | None = None,
                after: int | None = Query(None, ge=0), limit: int = Query(100, ge=1, le=1000),
                store: Store = Depends(get_store)) -> list[dict]:
    return [e.to_dict() for e in store.list_events(vm=vm, host=host, migration_id=migration,
                                                   after_id=after, limit=limit)]

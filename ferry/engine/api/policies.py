"""REST routes for migration policies: the read-only built-ins and the custom ones."""
from __future__ import annotations

from fastapi import APIRouter, Response

from ferry.engine.api.deps import StoreDep
from ferry.engine.api.responses import PolicyOut
from ferry.engine.api.schemas import PolicyBody
from ferry.engine.policies import policy_to_dict
from ferry.engine.services import policies

router = APIRouter(prefix="/api", tags=["policies"])


@router.get("/policies", response_model=list[PolicyOut])
def list_policies(store: StoreDep) -> list[dict]:
    return [policy_to_dict(p) for p in store.policies.list()]


@router.post("/policies", status_code=201, response_model=PolicyOut)
def create_policy(body: PolicyBody, store: StoreDep) -> dict:
    return policy_to_dict(policies.create_policy(store, body.data()))


@router.get("/policies/{ref}", response_model=PolicyOut)
def show_policy(ref: str, store: StoreDep) -> dict:
    return policy_to_dict(store.policies.find(ref))


@router.put("/policies/{ref}", response_model=PolicyOut)
def replace_policy(ref: str, body: PolicyBody, store: StoreDep) -> dict:
    return policy_to_dict(policies.replace_policy(store, ref, body.data()))


@router.delete("/policies/{ref}", status_code=204, response_class=Response)
def delete_policy(ref: str, store: StoreDep) -> Response:
    store.policies.delete(ref)
    return Response(status_code=204)

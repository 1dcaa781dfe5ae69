"""REST routes for migration policies: the read-only built-ins and the custom ones."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from ferry.engine.api.deps import get_store
from ferry.engine.api.schemas import PolicyBody
from ferry.engine.db import Store
from ferry.engine.policies import policy_to_dict

router = APIRouter(prefix="/api", tags=["policies"])


@router.get("/policies")
def list_policies(store: Store = Depends(get_store)) -> list[dict]:
    return [policy_to_dict(p) for p in store.list_policies()]


@router.post("/policies", status_code=201)
def create_policy(body: PolicyBody, store: Store = Depends(get_store)) -> dict:
    p = store.create_policy(body.data())
    store.commit()
    return policy_to_dict(p)


@router.get("/policies/{ref}")
def show_policy(ref: str, store: Store = Depends(get_store)) -> dict:
    return policy_to_dict(store.find_policy(ref))


@router.put("/policies/{ref}")
def replace_policy(ref: str, body: PolicyBody, store: Store = Depends(get_store)) -> dict:
    p = store.replace_policy(ref, body.data())
    store.commit()
    return policy_to_dict(p)


@router.delete("/policies/{ref}", status_code=204)
def delete_policy(ref: str, store: Store = Depends(get_store)) -> Response:
    store.delete_policy(ref)
    store.commit()
    return Response(status_code=204)

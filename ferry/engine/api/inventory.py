"""REST routes for the inventory: clusters, hosts and VMs (with their migration overrides)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from ferry.engine.api.deps import get_store
from ferry.engine.api.schemas import ClusterCreate, ClusterUpdate, HostCreate, HostUpdate, VmCreate, VmUpdate
from ferry.engine.db import Store
from ferry.engine.db.records import ClusterRecord, VmRecord

router = APIRouter(prefix="/api")


def _cluster_out(store: Store, c: ClusterRecord) -> dict:
    return c.to_dict(policy_name=store.policy_name(c.options.policy_id))


def _vm_out(store: Store, v: VmRecord) -> dict:
    return v.to_dict(policy_name=store.policy_name(v.overrides.policy_id))


# ---------------------------------------------------------------- clusters

@router.get("/clusters", tags=["clusters"])
def list_clusters(store: Store = Depends(get_store)) -> list[dict]:
    return [_cluster_out(store, c) for c in store.list_clusters()]


@router.post("/clusters", status_code=201, tags=["clusters"])
def create_cluster(body: ClusterCreate, store: Store = Depends(get_store)) -> dict:
    c = store.create_cluster(body.name, **body.changes())
    store.commit()
    return _cluster_out(store, c)


@router.get("/clusters/{name}", tags=["clusters"])
def show_cluster(name: str, store: Store = Depends(get_store)) -> dict:
    return _cluster_out(store, store.get_cluster(name))


@router.patch("/clusters/{name}", tags=["clusters"])
def update_cluster(name: str, body: ClusterUpdate, store: Store = Depends(get_store)) -> dict:
    c = store.update_cluster(name, **body.changes())
    store.commit()
    return _cluster_out(store, c)


@router.delete("/clusters/{name}", status_code=204, tags=["clusters"])
def delete_cluster(name: str, store: Store = Depends(get_store)) -> Response:
    store.delete_cluster(name)
    store.commit()
    return Response(status_code=204)


# ---------------------------------------------------------------- hosts

@router.get("/hosts", tags=["hosts"])
def list_hosts(cluster: str | None = None, store: Store = Depends(get_store)) -> list[dict]:
    return [h.to_dict() for h in store.list_hosts(cluster=cluster)]


@router.post("/hosts", status_code=201, tags=["hosts"])
def add_host(body: HostCreate, store: Store = Depends(get_store)) -> dict:
    h = store.add_host(body.name, cluster=body.cluster, address=body.address, **body.changes())
    store.commit()
    return h.to_dict()


@router.get("/hosts/{name}", tags=["hosts"])
def show_host(name: str, store: Store = Depends(get_store)) -> dict:
    return store.get_host(name).to_dict()


@router.patch("/hosts/{name}", tags=["hosts"])
def update_host(name: str, body: HostUpdate, store: Store = Depends(get_store)) -> dict:
    h = store.update_host(name, **body.changes())
    store.commit()
    return h.to_dict()


@router.delete("/hosts/{name}", status_code=204, tags=["hosts"])
def delete_host(name: str, store: Store = Depends(get_store)) -> Response:
    store.delete_host(name)
    store.commit()
    return Response(status_code=204)


# ---------------------------------------------------------------- VMs

@router.get("/vms", tags=["vms"])
def list_vms(cluster: str | None = None, host: str | None = None, store: Store = Depends(get_store)) -> list[dict]:
    return [_vm_out(store, v) for v in store.list_vms(cluster=cluster, host=host)]


@router.post("/vms", status_code=201, tags=["vms"])
def add_vm(body: VmCreate, store: Store = Depends(get_store)) -> dict:
    v = store.add_vm(body.spec(), cluster=body.cluster, host=body.host, status=body.status,
                     overrides=body.overrides.changes() if body.overrides else None, workload=body.workload)
    store.commit()
    return _vm_out(store, v)


@router.get("/vms/{vm}", tags=["vms"])
def show_vm(vm: str, store: Store = Depends(get_store)) -> dict:
    return _vm_out(store, store.get_vm(vm))


@router.patch("/vms/{vm}", tags=["vms"])
def update_vm(vm: str, body: VmUpdate, store: Store = Depends(get_store)) -> dict:
    changes, overrides = body.split()
    v = store.update_vm(vm, overrides=overrides, **changes)
    store.commit()
    return _vm_out(store, v)


@router.delete("/vms/{vm}", status_code=204, tags=["vms"])
def delete_vm(vm: str, store: Store = Depends(get_store)) -> Response:
    store.delete_vm(vm)
    store.commit()
    return Response(status_code=204)

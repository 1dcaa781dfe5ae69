"""REST routes for the inventory: clusters, hosts and VMs (with their migration overrides)."""
from __future__ import annotations

from fastapi import APIRouter, Response

from ferry.engine.api.deps import ReadStoreDep, StoreDep
from ferry.engine.api.responses import ClusterOut, HostOut, VmOut
from ferry.engine.api.schemas import ClusterCreate, ClusterUpdate, HostCreate, HostUpdate, VmCreate, VmUpdate
from ferry.engine.services import inventory
from ferry.engine.services.inventory import cluster_view, vm_view

router = APIRouter(prefix="/api")


# ---------------------------------------------------------------- clusters

@router.get("/clusters", tags=["clusters"], response_model=list[ClusterOut])
def list_clusters(store: ReadStoreDep) -> list[dict]:
    return [cluster_view(store, c) for c in store.clusters.list()]


@router.post("/clusters", status_code=201, tags=["clusters"], response_model=ClusterOut)
def create_cluster(body: ClusterCreate, store: StoreDep) -> dict:
    return cluster_view(store, inventory.create_cluster(store, body.name, body.changes()))


@router.get("/clusters/{name}", tags=["clusters"], response_model=ClusterOut)
def show_cluster(name: str, store: ReadStoreDep) -> dict:
    return cluster_view(store, store.clusters.get(name))


@router.patch("/clusters/{name}", tags=["clusters"], response_model=ClusterOut)
def update_cluster(name: str, body: ClusterUpdate, store: StoreDep) -> dict:
    return cluster_view(store, inventory.update_cluster(store, name, body.changes()))


@router.delete("/clusters/{name}", status_code=204, tags=["clusters"], response_class=Response)
def delete_cluster(name: str, store: StoreDep) -> Response:
    store.clusters.delete(name)
    return Response(status_code=204)


# ---------------------------------------------------------------- hosts

@router.get("/hosts", tags=["hosts"], response_model=list[HostOut])
def list_hosts(store: ReadStoreDep, cluster: str | None = None) -> list[dict]:
    return [h.to_dict() for h in store.hosts.list(cluster=cluster)]


@router.post("/hosts", status_code=201, tags=["hosts"], response_model=HostOut)
def add_host(body: HostCreate, store: StoreDep) -> dict:
    return inventory.add_host(store, body.name, cluster=body.cluster, address=body.address,
                              changes=body.changes()).to_dict()


@router.get("/hosts/{name}", tags=["hosts"], response_model=HostOut)
def show_host(name: str, store: ReadStoreDep) -> dict:
    return store.hosts.get(name).to_dict()


@router.patch("/hosts/{name}", tags=["hosts"], response_model=HostOut)
def update_host(name: str, body: HostUpdate, store: StoreDep) -> dict:
    return inventory.update_host(store, name, body.changes()).to_dict()


@router.delete("/hosts/{name}", status_code=204, tags=["hosts"], response_class=Response)
def delete_host(name: str, store: StoreDep) -> Response:
    store.hosts.delete(name)
    return Response(status_code=204)


# ---------------------------------------------------------------- VMs

@router.get("/vms", tags=["vms"], response_model=list[VmOut])
def list_vms(store: ReadStoreDep, cluster: str | None = None, host: str | None = None) -> list[dict]:
    return [vm_view(store, v) for v in store.vms.list(cluster=cluster, host=host)]


@router.post("/vms", status_code=201, tags=["vms"], response_model=VmOut)
def add_vm(body: VmCreate, store: StoreDep) -> dict:
    v = inventory.add_vm(store, body.spec(), cluster=body.cluster, host=body.host, status=body.status,
                         overrides=body.overrides.changes() if body.overrides else None,
                         workload=body.workload_figures())
    return vm_view(store, v)


@router.get("/vms/{vm}", tags=["vms"], response_model=VmOut)
def show_vm(vm: str, store: ReadStoreDep) -> dict:
    return vm_view(store, store.vms.get(vm))


@router.patch("/vms/{vm}", tags=["vms"], response_model=VmOut)
def update_vm(vm: str, body: VmUpdate, store: StoreDep) -> dict:
    changes, overrides = body.split()
    return vm_view(store, inventory.update_vm(store, vm, changes, overrides))


@router.delete("/vms/{vm}", status_code=204, tags=["vms"], response_class=Response)
def delete_vm(vm: str, store: StoreDep) -> Response:
    store.vms.delete(vm)
    return Response(status_code=204)

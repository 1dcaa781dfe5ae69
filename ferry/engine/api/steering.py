"""REST routes that steer a migration while it runs, and tell a caller who it is.

- POST /api/migrations/{id}/speed {"mibs": N}: change a running migration's bandwidth cap to N
  MiB/s. The engine reaches the source agent the way a cancel does (the orchestrator's agent
  client, the source host's agent URL, the VM's UUID) and sends Vdsm's VM.migrateChangeParams
  {vmID, params: {maxBandwidth: N}}. Admin only (POST: readonly tokens get 403 from the auth
  layer). 404 unknown migration, 409 not RUNNING (pending, cancelling, ended) or the agent no
  longer migrating it, 422 a bad `mibs`, 502 the agent refused or could not be reached.
- GET /api/whoami: the caller's token name and role, so the dashboard can leave out the
  buttons a readonly token may not press.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, StrictInt

from ferry.common.errors import Conflict, OperationFailed
from ferry.common.jsonrpc import TRANSPORT_ERROR, JsonRpcError
from ferry.engine import tokens
from ferry.engine.api.auth import require_token
from ferry.engine.api.deps import DatabaseDep, OrchestratorDep
from ferry.engine.api.schemas import Body
from ferry.engine.db.records import MigrationState
from ferry.engine.services.tokens import TokenRecord

router = APIRouter(prefix="/api")

MAX_MIBS = 1_000_000   # 1 TB/s: past any link; larger numbers are typing mistakes


class SpeedRequest(Body):
    mibs: StrictInt = Field(ge=1, le=MAX_MIBS, description="the new bandwidth cap in MiB/s (1..1000000)")


class SpeedOut(BaseModel):
    migration: str
    vm: str
    source: str | None
    max_bandwidth_mibs: int
    message: str


class WhoAmIOut(BaseModel):
    name: str
    role: str
    may_change: bool


@router.post("/migrations/{migration_id}/speed", tags=["migrations"], response_model=SpeedOut)
def set_speed(migration_id: str, body: SpeedRequest, db: DatabaseDep, orchestrator: OrchestratorDep) -> dict:
    """Change the bandwidth cap of a running migration (VM.migrateChangeParams on the source)."""
    with db.unit_of_work() as store:   # read, then talk to the agent outside the transaction
        record = store.migrations.get(migration_id)
        if record.state != MigrationState.RUNNING:
            raise Conflict(f"migration {migration_id} is {record.state.value}: only a RUNNING migration's speed "
                           "can be changed")
        agent_url = store.hosts.get(record.source).agent_url
        vm_uuid = store.vms.get(record.vm).uuid
    params = {"vmID": vm_uuid, "params": {"maxBandwidth": body.mibs}}
    try:
        answer = orchestrator.agent(agent_url).call("VM.migrateChangeParams", params)
    except JsonRpcError as exc:
        if exc.code != TRANSPORT_ERROR and exc.name == "migCancelErr":
            raise Conflict(f"migration {migration_id}: the source agent is no longer migrating VM "
                           f"{record.vm!r} ({exc.message})") from None
        raise OperationFailed(f"VM.migrateChangeParams on {record.source}: {exc.message}") from None
    message = ((answer or {}).get("status") or {}).get("message") if isinstance(answer, dict) else None
    return {"migration": migration_id, "vm": record.vm, "source": record.source, "max_bandwidth_mibs": body.mibs,
            "message": message or f"maxBandwidth set to {body.mibs} MiB/s"}


@router.get("/whoami", tags=["engine"], response_model=WhoAmIOut)
def whoami(token: TokenRecord = Depends(require_token)) -> dict:
    """The token the request came with: its name and role, and whether it may change things."""
    return {"name": token.name, "role": token.role, "may_change": tokens.may(token.role, "POST")}

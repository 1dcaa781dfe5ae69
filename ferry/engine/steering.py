"""Steering a running migration from the engine: force-complete (after Nova's).

The source agent decides how (ferry.agent.force_complete): post-copy when the migration allows
it, else a raised downtime limit; the engine asks it, records FERRY_MIGRATION_FORCE_COMPLETE
with what happened, and hands the answer back. (Changing the bandwidth is set-speed, elsewhere.)
"""
from __future__ import annotations

from typing import Any

from ferry.common.errors import Conflict, OperationFailed
from ferry.common.jsonrpc import JsonRpcError
from ferry.engine import audit
from ferry.engine.db import Database
from ferry.engine.db.records import MigrationState
from ferry.engine.monitor import AgentFactory

VERB = "VM.migrateForceComplete"


def force_complete(db: Database, agent: AgentFactory, migration_id: str, *, user: str | None = None) -> dict[str, Any]:
    with db.unit_of_work() as store:
        m = store.migrations.get(migration_id)
        if m.state is not MigrationState.RUNNING:
            raise Conflict(f"migration {migration_id} is {m.state.value}; only a RUNNING migration can be "
                           "forced to complete")
        vm = store.vms.get(m.vm)
        url = store.hosts.get(m.source).agent_url
    try:
        answer = agent(url).call(VERB, {"vmID": vm.uuid})
    except JsonRpcError as exc:
        if exc.name in ("migCancelErr", "noVM"):
            raise Conflict(f"migration {migration_id} is no longer running on {m.source}: {exc.message}") from None
        raise OperationFailed(f"force-complete on {m.source} failed: {exc.message}") from None
    out = {"migration_id": migration_id, "vm": m.vm, "source": m.source, "destination": m.destination,
           "mode": answer.get("mode"), "downtime_ms": answer.get("downtimeMs"), "reason": answer.get("reason")}
    with db.unit_of_work() as store:
        store.events.record_audit(audit.FERRY_MIGRATION_FORCE_COMPLETE, vm=m.vm, host=m.source,
                                  migration_id=migration_id, user=user or "admin", how=out["reason"])
    return out

"""/openapi.json describes every answer: each route's success response has a JSON schema that
names its model, so clients (and schemathesis) can check what the engine sends."""
from __future__ import annotations

from ferry.engine.api import create_app
from ferry.engine.db.records import MIGRATION_ACTIVE_STATES, MIGRATION_FINAL_STATES, MigrationState


def test_every_route_describes_its_success_response(tmp_path):
    spec = create_app(f"sqlite:///{tmp_path / 'engine.db'}", upgrade=False).openapi()
    described, undescribed = [], []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            for code, response in op["responses"].items():
                if not code.startswith("2") or code == "204":
                    continue
                content = response.get("content", {})
                if "application/json" not in content and any(c.get("schema") for c in content.values()):
                    described.append(f"{method.upper()} {path}")   # a documented non-JSON body (/metrics)
                    continue
                schema = content.get("application/json", {}).get("schema") or {}
                target = schema.get("items", schema)
                (described if "$ref" in target else undescribed).append(f"{method.upper()} {path}")
    assert undescribed == []
    assert "GET /api/migrations/{migration_id}" in described and "POST /api/vms/{vm}/plan" in described
    assert len(described) >= 25


def test_migration_states_have_one_final_set_and_the_rest_are_active():
    assert MIGRATION_FINAL_STATES == {MigrationState.SUCCEEDED, MigrationState.FAILED,
                                      MigrationState.CANCELLED, MigrationState.ABORTED}
    assert set(MIGRATION_ACTIVE_STATES) == {"PENDING", "RUNNING", "CANCELLING"}
    assert [s.final for s in MigrationState] == [s in MIGRATION_FINAL_STATES for s in MigrationState]

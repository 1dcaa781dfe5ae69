"""schemathesis against the engine's own OpenAPI: random requests to every operation, with an
admin token, never get a 5xx; without a token every one gets 401 (never 5xx either).

The engine runs in-process (ASGI) on a SQLite file that holds a little inventory, so that
generated names sometimes hit real objects; its host's agent address (127.0.9.250) is no lab
address, so nothing generated ever reaches a real agent. Examples per operation are bounded to keep the
whole run well under two minutes on 2 cores.
"""
from __future__ import annotations

import warnings

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from ferry.engine.api import create_app
from ferry.engine.db import upgrade_database
from ferry.engine.db.tokens import issue_token

EXAMPLES = 25


@pytest.fixture(scope="module")
def engine_app(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'engine.db'}"
    upgrade_database(url)
    token = issue_token(url, "admin", "fuzz")[0]
    app = create_app(url, upgrade=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        client.post("/api/clusters", json={"name": "c1"})
        client.post("/api/hosts", json={"name": "h1", "cluster": "c1", "address": "127.0.9.250"})
        client.post("/api/vms", json={"name": "vm1", "cluster": "c1", "memory_mib": 1024, "vcpus": 1,
                                      "kernel": "/boot/vmlinuz"})
        yield app, token


def operations(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def fuzz(operation, mode, examples, check) -> None:
    """Run `check(case)` on `examples` generated cases of one operation (hypothesis shrinks)."""
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        check(case)

    run()


def test_no_server_errors_with_an_admin_token(engine_app):
    app, token = engine_app
    failures = []
    ops = operations(app)
    assert len(ops) >= 15

    statuses: dict[int, int] = {}

    def check(case):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        response = case.call()
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                            f"{response.text[:300]}")

    for op in ops:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(op, mode, EXAMPLES, check)
            except AssertionError as exc:
                failures.append(f"{mode.value} {op.method.upper()} {op.path}: {exc}")
            except Exception as exc:  # noqa: BLE001 - e.g. schemathesis cannot generate for a schema
                if "Unsatisfiable" not in type(exc).__name__:
                    failures.append(f"{mode.value} {op.method.upper()} {op.path}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)
    print("statuses:", dict(sorted(statuses.items())))
    assert sum(statuses.values()) >= 20 * len(ops)  # the fuzzing really sent requests
    assert any(200 <= s < 300 for s in statuses) and 422 in statuses  # valid ones and rejected ones
    assert 401 not in statuses and 403 not in statuses  # the admin token opened every operation


def test_every_operation_refuses_a_request_without_a_token(engine_app):
    app, _ = engine_app
    for op in operations(app):
        def check(case, op=op):
            case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
            response = case.call()
            expected = 200 if op.path == "/api/health" else 401
            assert response.status_code == expected, (case.method, case.formatted_path, response.text)
        fuzz(op, GenerationMode.POSITIVE, 3, check)

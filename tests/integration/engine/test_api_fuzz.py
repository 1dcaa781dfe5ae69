"""Fuzzing the engine's REST API with an admin token (issue 12 item 3): it never answers 5xx,
every 4xx has the API's error shape ({"detail": {"field", "reason", "message"}}, a 422 naming
the field), and nothing invalid is ever stored.

- schemathesis against the engine's own live OpenAPI: random requests to every operation,
  valid (positive) and schema-breaking (negative) ones; without a token every one gets 401;
- hypothesis with hostile values for each body property, query parameter and path parameter
  of every operation, one at a time on top of a valid request (so the hostile value gets past
  the others): integers from 2^63 up (and below -2^63), lone surrogates, NUL, 10k-character
  strings, JSON nested thousands deep, paths such as /etc/shadow, bad addresses and URLs,
  link-local (metadata) agent URLs;
- after each run, every list endpoint answers 200 and every stored value passes the engine's
  validation.

The engine runs in-process (ASGI) on a SQLite file that holds a little inventory, so that
generated names sometimes hit real objects; its host's agent address (127.0.9.250) is no lab
address, so nothing generated ever reaches a real agent (the engine's agent client is the real
one with a 1 s timeout, so a generated agent URL costs at most that). Examples are bounded to
keep the file well under five minutes on 2 cores; set FERRY_FUZZ_EXAMPLES to run more.
"""
from __future__ import annotations

import json
import os
import time
import warnings
from collections import Counter
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from ferry.engine.api import create_app
from ferry.engine.db import upgrade_database
from ferry.engine.monitor import agent_client
from ferry.engine.services.tokens import issue_token
from ferry.engine.validation import (
    MAX_BANDWIDTH_MBPS,
    MAX_LINK_SPEED_MBPS,
    check_address,
    check_json,
    check_name,
    check_policy_name,
    check_text,
    check_url,
)
from ferry.engine.vm_validation import (
    MAX_MEMORY_MIB,
    MAX_VCPUS,
    MIN_MEMORY_MIB,
    VmPathRules,
    check_spec_fields,
    check_workload,
)

EXAMPLES = int(os.environ.get("FERRY_FUZZ_EXAMPLES", "25"))
HOSTILE_EXAMPLES = int(os.environ.get("FERRY_FUZZ_HOSTILE_EXAMPLES", "40"))
KERNEL = "/var/lib/ferry/images/vmlinuz"
LISTS = ("/api/clusters", "/api/hosts", "/api/vms", "/api/policies", "/api/migrations?limit=1000",
         "/api/events?limit=1000")


@pytest.fixture(scope="module")
def engine_app(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'engine.db'}"
    upgrade_database(url)
    token = issue_token(url, "admin", "fuzz")[0]
    app = create_app(url, upgrade=False)
    quick = lambda agent_url: agent_client(agent_url, timeout=1.0)  # noqa: E731 - the real client
    for part in (app.state.orchestrator, app.state.monitor, app.state.vm_lifecycle):
        part.agent = quick
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        _seed(client)
        yield app, token, client


def _seed(client) -> None:
    """The little inventory generated names may hit (recreated when a fuzz run removed it)."""
    client.post("/api/clusters", json={"name": "c1"})
    client.post("/api/hosts", json={"name": "h1", "cluster": "c1", "address": "127.0.9.250"})
    client.post("/api/vms", json={"name": "vm1", "cluster": "c1", "memory_mib": 1024, "vcpus": 1, "kernel": KERNEL})
    client.post("/api/policies", json={"name": "fuzz-policy", "max_migrations": 1})


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


def error_shape_problem(status: int, text: str) -> str | None:
    """Why a 4xx body is not the API's error shape, or None."""
    try:
        body = json.loads(text)
    except ValueError:
        return f"not JSON: {text[:200]!r}"
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, dict) or not {"field", "reason", "message"} <= set(detail):
        return f"not {{'detail': {{field, reason, message}}}}: {text[:300]}"
    if status == 422 and not (isinstance(detail["field"], str) and detail["field"]):
        return f"a 422 that names no field: {text[:300]}"
    return None


def judge(where: str, status: int, text: str, statuses: Counter, failures: list[str]) -> None:
    statuses[status] += 1
    if status >= 500:
        failures.append(f"{where} -> {status}: {text[:300]}")
    elif status >= 400:
        problem = error_shape_problem(status, text)
        if problem:
            failures.append(f"{where} -> {status}: {problem}")


def stored_values_problems(client) -> list[str]:
    """Every list endpoint answers 200 and every stored value passes the engine's checks."""
    problems: list[str] = []
    found: dict[str, list[dict]] = {}
    for path in LISTS:
        r = client.get(path)
        if r.status_code != 200:
            problems.append(f"GET {path} -> {r.status_code}: {r.text[:300]}")
            continue
        found[path.split("?")[0].rsplit("/", 1)[-1]] = r.json()
    rules = VmPathRules.from_env()

    def check(what: str, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - each problem is reported, not the first only
            problems.append(f"stored {what}: {exc}")

    for c in found.get("clusters", []):
        check(f"cluster {c['name']!r}", check_name, "name", c["name"])
        check(f"cluster {c['name']!r}", check_text, "description", c["description"])
        mbps = c["bandwidth"]["custom_mbps"]
        if mbps is not None and not 1 <= mbps <= MAX_BANDWIDTH_MBPS:
            problems.append(f"stored cluster {c['name']!r}: bandwidth {mbps}")
    for h in found.get("hosts", []):
        check(f"host {h['name']!r}", check_name, "name", h["name"])
        check(f"host {h['name']!r}", check_address, "address", h["address"])
        check(f"host {h['name']!r}", check_url, "agent_url", h["agent_url"])
        if h["migration_address"] is not None:
            check(f"host {h['name']!r}", check_address, "migration_address", h["migration_address"])
        if h["link_speed_mbps"] is not None and not 1 <= h["link_speed_mbps"] <= MAX_LINK_SPEED_MBPS:
            problems.append(f"stored host {h['name']!r}: link speed {h['link_speed_mbps']}")
        check(f"host {h['name']!r}", check_json, "capabilities", h["capabilities"])
    for v in found.get("vms", []):
        spec = {k: x for k, x in v["spec"].items() if x is not None}
        check(f"VM {v['name']!r}", check_name, "name", v["name"])
        try:
            if check_spec_fields(spec, rules) != spec:
                problems.append(f"stored VM {v['name']!r}: spec not in its checked form: {spec}")
        except Exception as exc:  # noqa: BLE001
            problems.append(f"stored VM {v['name']!r}: {exc}")
        if not (MIN_MEMORY_MIB <= v["memory_mib"] <= MAX_MEMORY_MIB and 1 <= v["vcpus"] <= MAX_VCPUS):
            problems.append(f"stored VM {v['name']!r}: memory {v['memory_mib']} vcpus {v['vcpus']}")
        check(f"VM {v['name']!r}", check_workload, "workload", v["workload"], v["memory_mib"])
    for p in found.get("policies", []):
        if not p["builtin"]:
            check(f"policy {p['name']!r}", check_policy_name, "name", p["name"])
            check(f"policy {p['name']!r}", check_json, "policy", p)
    for e in found.get("events", []):
        check(f"event {e['id']}", check_text, "message", e["message"], 65536)
    for m in found.get("migrations", []):
        check(f"migration {m['id']}", check_json, "migration", m)
    return problems


# ---------------------------------------------------------------- schemathesis

def test_no_server_errors_with_an_admin_token(engine_app):
    app, token, client = engine_app
    failures: list[str] = []
    ops = operations(app)
    assert len(ops) >= 15
    statuses: Counter = Counter()
    t0 = time.monotonic()

    def check(case):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        response = case.call()
        judge(f"{case.method} {case.formatted_path}", response.status_code, response.text, statuses, failures)

    for op in ops:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(op, mode, EXAMPLES, check)
            except Exception as exc:  # noqa: BLE001 - e.g. schemathesis cannot generate for a schema
                if "Unsatisfiable" not in type(exc).__name__:
                    failures.append(f"{mode.value} {op.method.upper()} {op.path}: {type(exc).__name__}: {exc}")
        _seed(client)
    print(f"schemathesis: {sum(statuses.values())} cases over {len(ops)} operations in "
          f"{time.monotonic() - t0:.0f} s; statuses {dict(sorted(statuses.items()))}")
    assert not failures, f"{len(failures)} bad answers:\n" + "\n".join(failures[:40])
    assert sum(statuses.values()) >= 20 * len(ops)  # the fuzzing really sent requests
    assert any(200 <= s < 300 for s in statuses) and 422 in statuses  # valid ones and rejected ones
    assert 401 not in statuses and 403 not in statuses  # the admin token opened every operation
    assert not (problems := stored_values_problems(client)), "\n".join(problems)


def test_every_operation_refuses_a_request_without_a_token(engine_app):
    app, _, _ = engine_app
    for op in operations(app):
        def check(case, op=op):
            case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
            response = case.call()
            expected = 200 if op.path == "/api/health" else 401
            assert response.status_code == expected, (case.method, case.formatted_path, response.text)
            if expected == 401:
                assert error_shape_problem(401, response.text) is None, response.text
        fuzz(op, GenerationMode.POSITIVE, 3, check)


# ---------------------------------------------------------------- hostile values

class Deep:
    """JSON nested `depth` levels deep, written as text (no encoder could recurse that far)."""

    def __init__(self, depth: int, kind: str):
        self.depth, self.kind = depth, kind

    def text(self) -> str:
        return ('{"a":' * self.depth + "1" + "}" * self.depth) if self.kind == "{" else \
            ("[" * self.depth + "]" * self.depth)


_SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
HOSTILE_NUMBERS = st.one_of(
    st.integers(min_value=2 ** 63, max_value=2 ** 200),
    st.integers(min_value=-(2 ** 200), max_value=-(2 ** 63) - 1),
    st.sampled_from([2 ** 63 - 1, 2 ** 31, 10 ** 30, -32, -1, 0]),
    st.sampled_from([float("nan"), float("inf"), 1e308, 0.5]),
)
HOSTILE_TEXT = st.one_of(
    st.builds(lambda a, s, b: a + s + b, st.text(max_size=3), _SURROGATES, st.text(max_size=3)),
    st.builds(lambda a, b: a + "\x00" + b, st.text(max_size=3), st.text(max_size=3)),
    st.just("x" * 10_000), st.just("é" * 10_000),
    st.sampled_from(["../../../etc/passwd", "a/b", "/etc/shadow", "/etc/passwd", "/tmp/evil.sh", "", " ",
                     "999.999.1.1", "http://[::1", "http://169.254.169.254/latest/meta-data/",
                     "https://[fe80::1]:54321/", "http://metadata.google.internal/", "https://h:0/",
                     "https://h:99999/", "file:///etc/passwd", "a\nb", "..", "vm1", "c1", "h1", "CUSTOM:300"]),
)
HOSTILE_STRUCTURE = st.one_of(
    st.builds(Deep, st.integers(min_value=33, max_value=5000), st.sampled_from("[{")),
    st.sampled_from([None, True, [], {}, [1, "a"], {"\ud800": 1}, {"a\x00": 1}, {"k" * 300: 1}]),
)
HOSTILE = st.one_of(HOSTILE_NUMBERS, HOSTILE_TEXT, HOSTILE_STRUCTURE)
# What a URL can carry (no lone surrogate: URLs are UTF-8 bytes, and Starlette decodes invalid
# UTF-8 with replacement characters).
HOSTILE_IN_URL = st.one_of(
    st.integers(min_value=2 ** 63, max_value=2 ** 200).map(str),
    st.sampled_from(["-1", "99999999999999999999999999", "nan", "inf", "x" * 10_000, "a\x00b", "\x00",
                     "../../../etc/passwd", "%2e%2e", "true", "", "vm1", "h1", "c1", "é" * 50]),
)

# A valid body per operation (a name the fuzz may also create), so that the one hostile
# value gets past the other fields.
BASE_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/clusters"): {"name": "cf", "description": "d", "policy": "Minimal downtime",
                                "parallel": {"mode": "CUSTOM", "connections": 4},
                                "bandwidth": {"mode": "CUSTOM", "custom_mbps": 1000}, "resilience": "MIGRATE"},
    ("PATCH", "/api/clusters/{name}"): {"description": "d", "bandwidth": {"mode": "CUSTOM", "custom_mbps": 100},
                                        "parallel": {"mode": "CUSTOM", "connections": 2}},
    ("POST", "/api/hosts"): {"name": "hf", "cluster": "c1", "address": "127.0.9.251",
                             "agent_url": "https://127.0.9.251:54321/", "migration_address": "127.0.9.252",
                             "link_speed_mbps": 1000, "status": "UP", "capabilities": {"a": 1}},
    ("PATCH", "/api/hosts/{name}"): {"address": "127.0.9.250", "agent_url": "https://127.0.9.250:54321/",
                                     "migration_address": "127.0.9.253", "link_speed_mbps": 100,
                                     "capabilities": {"a": [1]}},
    ("POST", "/api/vms"): {"name": "vf", "cluster": "c1", "memory_mib": 256, "vcpus": 2, "kernel": "vmlinuz",
                           "initrd": "initrd.img", "cmdline": "console=ttyS0", "memtune_hard_limit_kib": 524288,
                           "console_log": "vf.log", "emulator": VmPathRules.from_env().emulators[0],
                           "machine": "pc", "accel": "tcg", "workload": {"fill_mib": 64, "dirty_mib_s": 8},
                           "overrides": {"policy": "Minimal downtime", "downtime_ms": 500}},
    ("PATCH", "/api/vms/{vm}"): {"memory_mib": 512, "vcpus": 1, "cmdline": "quiet", "kernel": KERNEL,
                                 "workload": {"fill_mib": 32}, "overrides": {"downtime_ms": 300}},
    ("POST", "/api/policies"): {"name": "pf", "max_migrations": 2, "description": "d",
                                "stalling": [{"limit": 1, "action": {"name": "setDowntime", "params": [150]}}]},
    ("PUT", "/api/policies/{ref}"): {"name": "fuzz-policy", "max_migrations": 1,
                                     "init": [{"name": "setDowntime", "params": [100]}]},
    ("POST", "/api/vms/{vm}/plan"): {"to": "h1", "policy": "Minimal downtime"},
    ("POST", "/api/vms/{vm}/migrate"): {"to": "h1", "user": "fuzz"},
    ("POST", "/api/migrations/{migration_id}/cancel"): {"user": "fuzz"},
    ("POST", "/api/vms/{vm}/start"): {"host": "h1"},
}
PATH_VALUES = {"name": ["c1", "h1"], "vm": ["vm1"], "ref": ["fuzz-policy"], "migration_id": ["nope"]}


def _leaves(body: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a base body a hostile value can go: each key, nested objects' keys, and
    the first item of lists."""
    places = []
    if isinstance(body, dict):
        for k, v in body.items():
            places.append((*prefix, k))
            places.extend(_leaves(v, (*prefix, k)))
    elif isinstance(body, list) and body:
        places.append((*prefix, 0))
        places.extend(_leaves(body[0], (*prefix, 0)))
    return places


def _put(body: Any, place: tuple, value: Any) -> Any:
    body = json.loads(json.dumps(body))
    target = body
    for key in place[:-1]:
        target = target[key]
    target[place[-1]] = value
    return body


def _encode(body: Any) -> bytes:
    deep: list[Deep] = []

    def default(o):
        if isinstance(o, Deep):
            deep.append(o)
            return f"__deep{len(deep) - 1}__"
        raise TypeError(o)

    text = json.dumps(body, default=default)  # ensure_ascii: surrogates and NUL go as \\u escapes
    for i, d in enumerate(deep):
        text = text.replace(f'"__deep{i}__"', d.text())
    return text.encode()


def _request_strategy(method: str, path: str, params: list[tuple[str, str]]):
    """(path params, query, body) with exactly one hostile value in one place."""
    base = BASE_BODIES.get((method, path))
    choices = [("path", n) for n, where in params if where == "path"]
    choices += [("query", n) for n, where in params if where == "query"]
    if base is not None:
        choices += [("body", place) for place in _leaves(base)] + [("whole", ())]
    if not choices:
        return None

    @st.composite
    def build(draw):
        where, name = draw(st.sampled_from(choices))
        path_values = {n: draw(st.sampled_from(PATH_VALUES.get(n, ["x"]))) for n, w in params if w == "path"}
        query: dict[str, str] = {}
        body = base
        if where == "path":
            path_values[name] = draw(HOSTILE_IN_URL)
        elif where == "query":
            query[name] = draw(HOSTILE_IN_URL)
        elif where == "whole":
            body = draw(HOSTILE)
        else:
            body = _put(base, name, draw(HOSTILE))
        return path_values, query, body

    return build()


def _hostile_run(client, method: str, path: str, strategy, statuses: Counter, failures: list[str]) -> None:
    @settings(max_examples=HOSTILE_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(request=strategy)
    def run(request):
        path_values, query, body = request
        url = path
        for n, value in path_values.items():
            url = url.replace("{" + n + "}", quote(value, safe=""))
        kw: dict[str, Any] = {"params": query}
        if body is not None and method in ("POST", "PUT", "PATCH"):
            kw["content"] = _encode(body)
            kw["headers"] = {"Content-Type": "application/json"}
        r = client.request(method, url, **kw)
        judge(f"{method} {url[:120]} {repr(body)[:160]} {query!r:.120}", r.status_code, r.text, statuses, failures)

    run()


def test_hostile_values_in_every_parameter_never_get_a_5xx_nor_get_stored(engine_app):
    app, _token, client = engine_app
    statuses: Counter = Counter()
    failures: list[str] = []
    t0 = time.monotonic()
    operations_run = 0
    for path, ops in app.openapi()["paths"].items():
        for method, op in ops.items():
            method = method.upper()
            params = [(p["name"], p["in"]) for p in op.get("parameters", [])]
            strategy = _request_strategy(method, path, params)
            if strategy is None:
                continue
            operations_run += 1

            _hostile_run(client, method, path, strategy, statuses, failures)
            _seed(client)
    print(f"hostile values: {sum(statuses.values())} requests over {operations_run} operations in "
          f"{time.monotonic() - t0:.0f} s; statuses {dict(sorted(statuses.items()))}")
    assert operations_run >= 25
    assert not failures, f"{len(failures)} bad answers:\n" + "\n".join(failures[:40])
    assert 422 in statuses and sum(statuses.values()) >= 10 * operations_run
    assert not (problems := stored_values_problems(client)), "\n".join(problems)

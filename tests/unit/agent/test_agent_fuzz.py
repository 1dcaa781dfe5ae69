"""Fuzzing the agent's JSON-RPC over HTTP (hypothesis): a real agent server over the recording
fake libvirt connection gets random bodies, random envelopes and random parameters for every
verb. It must always answer (no 5xx, no dropped connection), answer JSON-RPC, and answer bad
input with a clear error (invalid params naming the field, not an internal error)."""
from __future__ import annotations

import http.client
import json
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferry.agent.server import make_server
from ferry.common.jsonrpc import ERROR_CODES, INTERNAL_ERROR, TRANSPORT_ERROR, JsonRpcError
from tests.unit.agent.fake_libvirt import FakeConnection, domain_xml
from tests.unit.agent.test_agent_api import VM, make_agent

# Agents as a destination refuse every migration at once: the fuzzer exercises parsing and
# checks, not libvirt (the fake would otherwise run scripted migrations).


class Unreachable:
    def call(self, method, params):
        raise JsonRpcError(TRANSPORT_ERROR, "destination unreachable (fuzz)")


@pytest.fixture(scope="module")
def agent_server():
    agent, conn = make_agent(FakeConnection(), destination=lambda address: Unreachable())
    conn.add_domain(domain_xml())
    server = make_server("127.0.0.1", 0, agent.methods())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield agent, server.server_address[1]
    server.shutdown()
    server.server_close()


def post(port: int, body: bytes, path: str = "/jsonrpc") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12)

KNOWN_KEYS = ["vmID", "params", "dst", "dstqemu", "method", "parallel", "maxBandwidth", "convergenceSchedule",
              "outgoingLimit", "incomingLimit", "consoleAddress", "downtime", "zerocopy", "encrypted",
              "tunneled", "abortOnError", "compressed", "autoConverge", "enableGuestEvents", "xml", "spec",
              "vmName", "name", "memory_mib", "vcpus", "kernel", "uuid", "init", "stalling", "limit", "action",
              "params.maxBandwidth", "elapsedTime"]
keys = st.sampled_from(KNOWN_KEYS) | st.text(max_size=10)
values = st.sampled_from([VM, "127.0.0.9:54321", "127.0.0.9", "", "x" * 300]) | json_values
params_strategy = st.recursive(
    st.dictionaries(keys, values, max_size=6),
    lambda inner: st.dictionaries(keys, inner | values, max_size=5), max_leaves=10)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.function_scoped_fixture])


def check_answer(status: int, raw: bytes) -> dict | None:
    assert status < 500, (status, raw[:300])
    if status == 204:
        return None
    answer = json.loads(raw)
    assert isinstance(answer, dict)
    return answer


@FUZZ
@given(body=st.binary(max_size=300))
def test_random_bytes_get_a_parse_or_request_error(agent_server, body):
    _, port = agent_server
    answer = check_answer(*post(port, body))
    if answer is not None and "error" in answer:
        assert answer["error"]["code"] in (-32700, -32600, -32601, -32602) or isinstance(answer["error"], str)


@FUZZ
@given(value=json_values)
def test_random_json_documents_are_answered(agent_server, value):
    _, port = agent_server
    status, raw = post(port, json.dumps(value).encode())
    answer = check_answer(status, raw)
    assert answer is None or answer.get("jsonrpc") == "2.0"


@FUZZ
@given(data=st.data())
def test_every_verb_answers_random_params_with_a_clear_error(agent_server, data):
    agent, port = agent_server
    method = data.draw(st.sampled_from(sorted(agent.methods())))
    params = data.draw(params_strategy)
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).encode()
    answer = check_answer(*post(port, body))
    assert answer["id"] == 7
    if "error" in answer:
        error = answer["error"]
        assert error["code"] not in (INTERNAL_ERROR, ERROR_CODES["unexpected"]), (method, params, error)
        assert error["message"]
        if error["code"] == -32602:
            assert error["data"]["field"], error


@FUZZ
@given(data=st.data())
def test_verbs_on_an_existing_vm_answer_random_params_with_a_clear_error(agent_server, data):
    """vmID names the running VM, so the checks past the lookup (migration params, limits,
    schedules, create specs) see the random values."""
    agent, port = agent_server
    method = data.draw(st.sampled_from(sorted(m for m in agent.methods() if m.startswith("VM."))))
    inner = data.draw(params_strategy | st.builds(
        lambda extra: {"dst": "127.0.0.9:54321", "dstqemu": "127.0.0.9", **extra},  # a valid core, odd extras
        st.dictionaries(st.sampled_from(KNOWN_KEYS[2:]), values, max_size=3)))
    params = {"vmID": VM, "params": inner, **data.draw(st.dictionaries(st.sampled_from(KNOWN_KEYS[2:]), values,
                                                                       max_size=4))}
    body = json.dumps({"jsonrpc": "2.0", "id": 8, "method": method, "params": params}).encode()
    answer = check_answer(*post(port, body))
    if "error" in answer:
        error = answer["error"]
        assert error["code"] not in (INTERNAL_ERROR, ERROR_CODES["unexpected"]), (method, params, error)
    elif method == "VM.migrate":  # accepted: it fails against the unreachable destination
        assert agent.jobs[VM].wait(10)
        assert agent.conn.lookupByUUIDString(VM).isActive()  # and the VM keeps running where it was
    if VM not in agent.conn.domains:  # VM.destroy succeeded: the next example needs the VM again
        agent.conn.add_domain(domain_xml())


def test_deeply_nested_and_oversized_bodies(agent_server):
    _, port = agent_server
    status, raw = post(port, b"[" * 100_000 + b"]" * 100_000)
    assert status == 200 and json.loads(raw)["error"]["code"] == -32700
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("POST", "/jsonrpc")
    conn.putheader("Content-Length", "nope")
    conn.endheaders()
    assert conn.getresponse().status == 400
    conn.close()
    assert post(port, b"{}", path="/other")[0] == 404

"""The agent's connection limits over real mutual TLS on loopback: a request that stalls is cut
off at the read timeout (headers and body alike, even when it trickles), one address cannot
hold more than its share of connections, and the agent keeps serving everyone else."""
from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest

from ferry.agent.conn_limits import ClientSlots, Deadlines
from ferry.agent.server import make_server
from ferry.common.jsonrpc import JsonRpcClient
from ferry.pki.ca import init_ca
from ferry.pki.enroll import enroll_host
from ferry.pki.layout import EnginePki
from ferry.pki.tls import agent_tls_files, engine_client_tls, server_context
from tests.unit.agent.fake_libvirt import domain_xml
from tests.unit.agent.test_agent_api import VM, make_agent

READ_TIMEOUT = 1.0


@pytest.fixture
def agent(tmp_path, request):
    limits = getattr(request, "param", {})
    pki = EnginePki(tmp_path / "pki")
    init_ca(pki)
    enroll_host(pki, "h1", "127.0.0.1", tmp_path / "h1")
    a, conn = make_agent()
    conn.add_domain(domain_xml())
    server = make_server("127.0.0.1", 0, a.methods(),
                         tls=server_context(agent_tls_files(tmp_path / "h1/etc/pki/ferry")),
                         read_timeout=limits.get("read_timeout", READ_TIMEOUT),
                         max_per_client=limits.get("max_per_client", 64))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server, server.server_address[1], engine_client_tls(pki.root)
    server.shutdown()
    server.server_close()


def tls_connection(port, tls, source="127.0.0.1"):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    return tls.context().wrap_socket(raw, server_hostname="127.0.0.1")


def closed_after(sock, trickle: bytes | None = None) -> float:
    """Seconds until the agent closes `sock` (sending `trickle` every 0.2 s meanwhile)."""
    t0 = time.monotonic()
    stop = threading.Event()

    def drip():
        while not stop.wait(0.2):
            try:
                sock.sendall(trickle)
            except OSError:
                return
    if trickle:
        threading.Thread(target=drip, daemon=True).start()
    try:
        while True:
            try:
                if not sock.recv(4096):
                    break
            except OSError:   # an SSL EOF or a reset: closed either way
                break
    finally:
        stop.set()
    return time.monotonic() - t0


def served(port, tls) -> bool:
    return JsonRpcClient(f"https://127.0.0.1:{port}", timeout=5, tls=tls).call(
        "Host.getVMList", {})["vms"][0]["vmID"] == VM


@pytest.mark.parametrize("start, trickle", [
    (b"POST /jsonrpc HTTP/1.1\r\nHost: a\r\n", b"X-Slow: 1\r\n"),            # headers that never end
    (b"POST /jsonrpc HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n{", b" "),  # a body that never ends
    (b"", None),                                                                # authenticated, then silent
])
def test_a_stalled_authenticated_request_is_closed_at_the_read_timeout(agent, start, trickle):
    server, port, tls = agent
    sock = tls_connection(port, tls)
    sock.sendall(start)
    result = {}
    waiter = threading.Thread(target=lambda: result.update(t=closed_after(sock, trickle)), daemon=True)
    waiter.start()
    assert served(port, tls)                       # others are served while it stalls
    waiter.join(10)
    assert READ_TIMEOUT * 0.8 <= result["t"] < READ_TIMEOUT + 2.0, result
    assert served(port, tls)
    sock.close()


def test_a_slow_but_steady_long_poll_is_not_cut_off(agent):
    """The deadline covers reading the request, not the verb: a long poll may outlast it."""
    _, port, tls = agent
    t0 = time.monotonic()
    status = JsonRpcClient(f"https://127.0.0.1:{port}", timeout=10, tls=tls).call(
        "VM.getMigrationStatus", {"vmID": VM})
    assert status["state"] == "idle" and time.monotonic() - t0 < 5


def test_a_kept_alive_connection_serves_requests_then_idles_out(agent):
    _, port, tls = agent
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=tls.context(), timeout=10)
    for i in range(3):
        body = json.dumps({"jsonrpc": "2.0", "id": i, "method": "Host.getVMList", "params": {}})
        conn.request("POST", "/jsonrpc", body, {"Content-Type": "application/json"})
        assert json.loads(conn.getresponse().read())["result"]["vms"][0]["vmID"] == VM
    assert closed_after(conn.sock) < READ_TIMEOUT + 2.0
    conn.close()


@pytest.mark.parametrize("agent", [{"max_per_client": 3, "read_timeout": 8.0}], indirect=True)
def test_one_address_gets_at_most_its_share_of_connections(agent):
    server, port, tls = agent
    hogs = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(3)]
    deadline = time.monotonic() + 5
    while server.slots.open("127.0.0.1") < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    extra = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert closed_after(extra) < 2.0               # closed at once, not after any timeout
    ctx = tls.context()                            # another address is served meanwhile
    other = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5, source_address=("127.0.0.2", 0))
    other.request("POST", "/jsonrpc", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "Host.getStats"}),
                  {"Content-Type": "application/json"})
    assert "vmCount" in json.loads(other.getresponse().read())["result"]
    other.close()
    for s in hogs:
        s.close()
    deadline = time.monotonic() + 5
    while server.slots.open("127.0.0.1") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert served(port, tls)                       # slots come back when connections end


# ---- the pure parts ---------------------------------------------------------------------------

def test_client_slots_count_per_address():
    slots = ClientSlots(2)
    assert slots.try_acquire("a") and slots.try_acquire("a") and not slots.try_acquire("a")
    assert slots.try_acquire("b")
    slots.release("a")
    assert slots.open("a") == 1 and slots.try_acquire("a")
    with pytest.raises(ValueError):
        ClientSlots(0)


def test_deadlines_shut_only_late_sockets():
    d = Deadlines(0.3)
    late_a, late_b = socket.socketpair()
    kept_a, kept_b = socket.socketpair()
    d.arm(late_a)
    d.arm(kept_a)
    d.disarm(kept_a)
    late_b.settimeout(3)
    t0 = time.monotonic()
    assert late_b.recv(10) == b"" and time.monotonic() - t0 < 2.5
    kept_b.sendall(b"x")
    assert kept_a.recv(1) == b"x"
    assert d.expired == 1
    d.stop()
    for s in (late_a, late_b, kept_a, kept_b):
        s.close()
    with pytest.raises(ValueError):
        Deadlines(0)

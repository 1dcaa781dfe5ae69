"""The monitor's kept-alive agent client: same answers and errors as JsonRpcClient, one connection."""
import threading

import pytest

from ferry.agent.server import make_server
from ferry.common.jsonrpc import TRANSPORT_ERROR, JsonRpcError, agent_error
from ferry.engine.agent_pool import AgentPool
from ferry.engine.process import free_port


@pytest.fixture
def agent():
    accepted = []

    def boom(params):
        raise agent_error("noVM", "Virtual machine does not exist: vmID x", vmID="x")

    server = make_server("127.0.0.1", free_port(), {"Host.getStats": lambda p: {"vmCount": 3}, "VM.getStats": boom})
    original = server.process_request

    def counting(request, client_address):
        accepted.append(client_address)
        original(request, client_address)

    server.process_request = counting
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", accepted
    server.shutdown()
    server.server_close()


def test_answers_and_agent_errors_come_back_as_from_jsonrpcclient(agent):
    url, _ = agent
    pool = AgentPool(tls=None)
    try:
        assert pool(url).call("Host.getStats", {}) == {"vmCount": 3}
        with pytest.raises(JsonRpcError) as err:
            pool(url).call("VM.getStats", {"vmID": "x"})
        assert err.value.name == "noVM"
    finally:
        pool.close()


def test_refreshes_reuse_one_connection(agent):
    url, accepted = agent
    pool = AgentPool(tls=None)
    try:
        for _ in range(5):
            pool(url).call("Host.getStats", {})
    finally:
        pool.close()
    assert len(accepted) == 1


def test_unreachable_agent_is_a_transport_error():
    pool = AgentPool(tls=None, timeout=2)
    try:
        with pytest.raises(JsonRpcError) as err:
            pool(f"http://127.0.0.1:{free_port()}/").call("Host.getStats", {})
        assert err.value.code == TRANSPORT_ERROR
    finally:
        pool.close()


def test_missing_engine_certificate_fails_https_calls_with_the_reason(tmp_path):
    from ferry.pki.tls import engine_client_tls

    pool = AgentPool(tls=engine_client_tls(tmp_path / "no-pki"))
    try:
        with pytest.raises(JsonRpcError) as err:
            pool("https://127.0.0.1:1/").call("Host.getStats", {})
        assert err.value.code == TRANSPORT_ERROR and "does not exist" in err.value.message
    finally:
        pool.close()


def test_a_connection_the_agent_closed_while_idle_is_reopened_once(agent):
    url, accepted = agent
    pool = AgentPool(tls=None)
    try:
        conn = pool(url)
        assert conn.call("Host.getStats", {}) == {"vmCount": 3}
        conn._conn.sock.shutdown(2)          # as if the agent had dropped the idle connection
        assert conn.call("Host.getStats", {}) == {"vmCount": 3}
    finally:
        pool.close()
    assert len(accepted) == 2


def test_the_same_agent_url_shares_one_connection_object(agent):
    url, _ = agent
    pool = AgentPool(tls=None)
    try:
        assert pool(url) is pool(url.rstrip("/") + "/jsonrpc")
    finally:
        pool.close()


def test_an_agent_restarted_between_refreshes_is_asked_on_a_new_connection():
    """The lab's `restart_agent` (and a real agent restart) leaves the engine's kept connection
    to a process that is gone: the next refresh must reach the new agent, not fail once (which
    marked the host unreachable and kept its old capabilities)."""
    port = free_port()
    conns = []

    def serve(answer):
        server = make_server("127.0.0.1", port, {"Host.getStats": lambda p: answer})
        original = server.process_request
        server.process_request = lambda request, addr: (conns.append(request), original(request, addr))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    first = serve({"vmCount": 3})
    pool = AgentPool(tls=None)
    try:
        conn = pool(f"http://127.0.0.1:{port}/")
        assert conn.call("Host.getStats", {}) == {"vmCount": 3}
        first.shutdown()
        first.server_close()
        for sock in conns:                     # the old agent's process is gone: its sockets close
            sock.shutdown(2)
        second = serve({"vmCount": 7})
        try:
            assert conn.call("Host.getStats", {}) == {"vmCount": 7}
        finally:
            second.shutdown()
            second.server_close()
    finally:
        pool.close()


def test_a_kept_connection_reads_as_closed_only_once_the_agent_closed_it(agent):
    """Checked before each reuse: over TLS a vanished agent would otherwise show up as an EOF
    in the middle of the next call (seen on the lab: the host was marked unreachable)."""
    from ferry.engine.agent_pool import _closed_by_peer

    url, accepted = agent
    pool = AgentPool(tls=None)
    try:
        conn = pool(url)
        assert conn.call("Host.getStats", {}) == {"vmCount": 3}
        assert not _closed_by_peer(conn._conn)          # idle and open: nothing to read
        conn._conn.sock.shutdown(2)
        assert _closed_by_peer(conn._conn)
    finally:
        pool.close()

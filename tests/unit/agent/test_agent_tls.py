"""The agent's mutual TLS: only clients with a certificate from the engine CA get an answer.

A real agent server (the JSON-RPC layer over the recording fake libvirt connection) on
127.0.0.1 with certificates from a CA made in the test; clients with no certificate, one from
another CA, or an expired one are refused, and each refusal says why.
"""
from __future__ import annotations

import logging
import ssl
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from ferry.agent.config import AgentConfig
from ferry.agent.server import check_dev_address, make_server
from ferry.cli.main import cli
from ferry.common.errors import InvalidInput
from ferry.common.jsonrpc import TRANSPORT_ERROR, JsonRpcClient, JsonRpcError
from ferry.pki.ca import CertificateAuthority, init_ca, write_file
from ferry.pki.enroll import enroll_host
from ferry.pki.layout import PURPOSES, EnginePki
from ferry.pki.tls import ReadyContext, TlsFiles, agent_tls_files, engine_client_tls, server_context
from tests.unit.agent.fake_libvirt import domain_xml
from tests.unit.agent.test_agent_api import VM, make_agent


@pytest.fixture
def pki(tmp_path):
    pki = EnginePki(tmp_path / "pki")
    init_ca(pki)
    return pki


@pytest.fixture
def agent_url(pki, tmp_path):
    """An agent enrolled as h1 / 127.0.0.1 serving TLS; yields its https URL."""
    enroll_host(pki, "h1", "127.0.0.1", tmp_path / "h1")
    agent, conn = make_agent()
    conn.add_domain(domain_xml())
    server = make_server("127.0.0.1", 0, agent.methods(), tls=server_context(agent_tls_files(tmp_path / "h1/etc/pki/ferry")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def client_files(tmp_path, ca: CertificateAuthority, trust: CertificateAuthority, name: str, **issue) -> TlsFiles:
    issued = ca.issue({"CN": name}, purposes=PURPOSES["engine"], **issue)
    files = TlsFiles(tmp_path / f"{name}-ca.pem", tmp_path / f"{name}.pem", tmp_path / f"{name}.key")
    write_file(files.ca, trust.cert_pem, 0o644)
    write_file(files.cert, issued.cert_pem, 0o644)
    write_file(files.key, issued.key_pem, 0o600)
    return files


def logged(caplog, text: str, timeout: float = 3.0) -> bool:
    """Whether the agent logged `text` (its handshake thread may log just after the client failed)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in r.getMessage() for r in caplog.records):
            return True
        time.sleep(0.02)
    return False


def refused(url, tls) -> JsonRpcError:
    with pytest.raises(JsonRpcError) as err:
        JsonRpcClient(url, timeout=5, tls=tls).call("VM.getStats", {"vmID": VM})
    assert err.value.code == TRANSPORT_ERROR
    return err.value


def test_engine_certificate_is_accepted(pki, agent_url):
    assert JsonRpcClient(agent_url, timeout=5, tls=engine_client_tls(pki.root)).call(
        "VM.getStats", {"vmID": VM})["status"] == "Up"


def test_https_without_tls_settings_from_the_caller_is_a_clear_error(pki, agent_url, monkeypatch):
    monkeypatch.setenv("FERRY_PKI_DIR", str(pki.root))  # no silent default from the environment
    err = refused(agent_url, None)
    assert "needs the caller's TLS settings" in err.message


def test_no_client_certificate_is_refused(pki, agent_url, caplog):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(pki.ca_cert))
    with caplog.at_level(logging.WARNING, logger="ferry.agent.server"):
        err = refused(agent_url, ReadyContext(ctx))
    assert "requires a client certificate" in err.message
    assert logged(caplog, "peer did not return a certificate")


def test_certificate_from_another_ca_is_refused(pki, agent_url, tmp_path, caplog):
    other = CertificateAuthority.create("Some other CA")
    files = client_files(tmp_path, other, CertificateAuthority.load(pki), "intruder")
    with caplog.at_level(logging.WARNING, logger="ferry.agent.server"):
        err = refused(agent_url, files)
    assert "unknown ca" in err.message.lower() and "another CA" in err.message
    assert logged(caplog, "certificate verify failed")


def test_expired_certificate_is_refused(pki, agent_url, tmp_path, caplog):
    ca = CertificateAuthority.load(pki)
    files = client_files(tmp_path, ca, ca, "stale", now=datetime.now(UTC) - timedelta(days=60), days=30)
    with caplog.at_level(logging.WARNING, logger="ferry.agent.server"):
        err = refused(agent_url, files)
    assert "expired" in err.message
    assert logged(caplog, "certificate has expired")


def test_client_refuses_an_agent_from_another_ca(agent_url, tmp_path):
    other = EnginePki(tmp_path / "other")
    init_ca(other)
    err = refused(agent_url, engine_client_tls(other.root))
    assert "not issued by the engine CA" in err.message


def test_client_refuses_an_agent_certificate_for_another_name(pki, agent_url):
    err = refused(agent_url.replace("127.0.0.1", "localhost"), engine_client_tls(pki.root))
    assert "for another host" in err.message


def test_plain_http_client_gets_a_clear_error(agent_url):
    err = refused(agent_url.replace("https://", "http://"), None)
    assert "--dev" in err.message


def test_missing_client_files_name_the_file(tmp_path, agent_url):
    err = refused(agent_url, engine_client_tls(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere" / "ca.pem") in err.message and "ferry pki init" in err.message


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.3.2", "::1", "[::1]", "localhost"])
def test_dev_mode_allows_loopback(address):
    assert check_dev_address(address) == address


@pytest.mark.parametrize("address", ["0.0.0.0", "10.0.0.5", "192.168.1.1", "::", "example.com"])
def test_dev_mode_refuses_other_addresses(address):
    with pytest.raises(InvalidInput) as err:
        check_dev_address(address)
    assert err.value.field == "--address" and "loopback" in err.value.reason


def test_agent_run_dev_on_a_public_address_exits_with_a_clear_error():
    result = CliRunner().invoke(cli, ["agent", "run", "--dev", "--address", "10.1.2.3"])
    assert result.exit_code == 2
    assert "error: --address: --dev serves plain HTTP without authentication" in result.output


def test_agent_run_without_enrollment_names_the_missing_file(tmp_path):
    result = CliRunner().invoke(cli, ["agent", "run", "--address", "127.0.0.1", "--pki-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert f"CA certificate {tmp_path}/cacert.pem does not exist" in result.output


def test_agent_calls_other_agents_over_tls_with_its_own_certificate(tmp_path):
    agent, _ = make_agent(pki_dir=str(tmp_path / "etc/pki/ferry"))
    client = agent._default_destination("127.0.0.9:54321")
    assert client.url == "https://127.0.0.9:54321/jsonrpc"
    assert client.tls == agent_tls_files(tmp_path / "etc/pki/ferry")
    dev_agent, _ = make_agent(dev=True)
    assert dev_agent._default_destination("127.0.0.9").url == "http://127.0.0.9:54321/jsonrpc"
    assert AgentConfig().libvirt_transport == "tls" and AgentConfig(dev=True).libvirt_transport == "tcp"


def test_garbage_and_stalled_handshakes_do_not_stop_the_agent(pki, agent_url):
    import socket

    port = int(agent_url.rsplit(":", 1)[1])
    stalled = socket.create_connection(("127.0.0.1", port))  # connects, never says anything
    for junk in (b"\x16\x03\x01\x00\x05hello", b"\x00" * 1000, b"GET / HTTP/1.0\r\n\r\n", b""):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            while s.recv(4096):
                pass
    assert JsonRpcClient(agent_url, timeout=5, tls=engine_client_tls(pki.root)).call(
        "Host.getVMList", {})["vms"][0]["vmID"] == VM
    stalled.close()


def test_ferry_agent_call_speaks_mutual_tls_with_the_engine_certificate(pki, agent_url, monkeypatch):
    monkeypatch.setenv("FERRY_PKI_DIR", str(pki.root))
    result = CliRunner().invoke(cli, ["agent", "call", agent_url.removeprefix("https://"), "VM.getStats",
                                      f'{{"vmID": "{VM}"}}'])
    assert result.exit_code == 0, result.output
    assert '"status": "Up"' in result.output
    result = CliRunner().invoke(cli, ["agent", "call", "--dev", agent_url.removeprefix("https://"), "Host.getStats"])
    assert result.exit_code == 1 and "HTTPS only" in result.output

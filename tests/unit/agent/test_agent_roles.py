"""Each agent verb x each certificate role, over a real mutual-TLS agent on loopback.

Certificates come from a CA made in the test, issued the way `ferry pki init` and
`ferry host enroll` issue them. The agent is h1 (127.0.0.1) over the recording fake libvirt
connection, with one running VM; h2 and h3 are peers; "libvirt" is h2's libvirt certificate
(from the same CA, but with no role); "bare" is a client certificate from the CA with no role.
"""
from __future__ import annotations

import threading

import libvirt
import pytest

from ferry.agent.authz import Caller, Grants, caller_from_peercert, decide, libvirt_running_here
from ferry.agent.dispatch import AccessControl
from ferry.agent.server import make_server
from ferry.common.jsonrpc import ERROR_CODES, JsonRpcClient, JsonRpcError
from ferry.pki.ca import CertificateAuthority, init_ca, write_file
from ferry.pki.enroll import enroll_host
from ferry.pki.layout import AGENT_CERT, AGENT_KEY, LIBVIRT_CLIENT_CERT, LIBVIRT_CLIENT_KEY, PURPOSES, EnginePki, Role
from ferry.pki.tls import TlsFiles, agent_tls_files, engine_client_tls, server_context
from tests.unit.agent.fake_libvirt import domain_xml
from tests.unit.agent.test_agent_api import VM, make_agent

FORBIDDEN = ERROR_CODES["forbidden"]
NEW_VM = "22222222-2222-3333-4444-555555555555"   # not on h1: a peer may be migrating it here
ALL_VERBS = ("Host.getCapabilities", "Host.getStats", "Host.getVMList", "VM.create", "VM.destroy", "VM.getStats",
             "VM.migrate", "VM.migrationCreate", "VM.migrateCancel", "VM.migrateChangeParams",
             "VM.getMigrationStatus")
PARAMS = {
    "Host.getCapabilities": {}, "Host.getStats": {}, "Host.getVMList": {},
    "VM.create": {"xml": domain_xml("g9", "99999999-2222-3333-4444-555555555555")},
    "VM.destroy": {"vmID": VM}, "VM.getStats": {"vmID": VM},
    "VM.migrate": {"vmID": VM, "params": {"dst": "127.0.0.9"}},
    "VM.migrationCreate": {"vmID": NEW_VM, "name": "incoming"},
    "VM.migrateCancel": {"vmID": VM}, "VM.migrateChangeParams": {"vmID": VM, "params": {"maxBandwidth": 10}},
    "VM.getMigrationStatus": {"vmID": VM},
}
# Who may call each verb (with PARAMS): the engine everything; a host only VM.migrationCreate of a
# VM that is not running here (VM.destroy is checked below, with and without incomingOnly).
ALLOWED = {"engine": set(ALL_VERBS), "h2": {"VM.migrationCreate"}, "libvirt": set(), "bare": set()}


@pytest.fixture
def world(tmp_path):
    pki = EnginePki(tmp_path / "pki")
    init_ca(pki)
    ca = CertificateAuthority.load(pki)
    for name, addr in (("h1", "127.0.0.1"), ("h2", "127.0.0.2"), ("h3", "127.0.0.3")):
        enroll_host(pki, name, addr, tmp_path / name, ca=ca)
    h2 = tmp_path / "h2"
    bare = ca.issue({"CN": "bare"}, purposes=PURPOSES["engine"])
    write_file(tmp_path / "bare.pem", bare.cert_pem, 0o644)
    write_file(tmp_path / "bare.key", bare.key_pem, 0o600)
    creds = {
        "engine": engine_client_tls(pki.root),
        "h2": TlsFiles(pki.ca_cert, h2 / AGENT_CERT.lstrip("/"), h2 / AGENT_KEY.lstrip("/")),
        "h3": TlsFiles(pki.ca_cert, tmp_path / "h3" / AGENT_CERT.lstrip("/"), tmp_path / "h3" / AGENT_KEY.lstrip("/")),
        "libvirt": TlsFiles(pki.ca_cert, h2 / LIBVIRT_CLIENT_CERT.lstrip("/"), h2 / LIBVIRT_CLIENT_KEY.lstrip("/")),
        "bare": TlsFiles(pki.ca_cert, tmp_path / "bare.pem", tmp_path / "bare.key"),
    }
    agent, conn = make_agent()
    conn.add_domain(domain_xml())
    access = AccessControl(running_here=libvirt_running_here(conn, libvirt))
    server = make_server("127.0.0.1", 0, agent.methods(),
                         tls=server_context(agent_tls_files(tmp_path / "h1/etc/pki/ferry")), access=access)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}"
    yield {name: JsonRpcClient(url, timeout=5, tls=files) for name, files in creds.items()}, conn
    server.shutdown()
    server.server_close()


def outcome(client, verb, params):
    """'forbidden' (with the error), or 'ran' (the verb's own answer, success or its own error)."""
    try:
        client.call(verb, params)
    except JsonRpcError as exc:
        if exc.code == FORBIDDEN:
            return "forbidden", exc
        return "ran", exc
    return "ran", None


@pytest.mark.parametrize("role", sorted(ALLOWED))
@pytest.mark.parametrize("verb", ALL_VERBS)
def test_each_verb_for_each_role(world, role, verb):
    clients, _ = world
    got, err = outcome(clients[role], verb, dict(PARAMS[verb]))
    assert got == ("ran" if verb in ALLOWED[role] else "forbidden"), err
    if got == "forbidden":
        subject = {"h2": "host h2"}.get(role, None)
        assert err.message.startswith(f"forbidden for {subject or ''}"), err.message
        assert verb in err.message and err.name == "forbidden"


def test_forbidden_names_the_subject(world):
    clients, _ = world
    _, err = outcome(clients["h2"], "Host.getVMList", {})
    assert err.message.startswith("forbidden for host h2: Host.getVMList")
    _, err = outcome(clients["bare"], "Host.getVMList", {})
    assert err.message.startswith("forbidden for CN=bare: ") and "no Ferry role" in err.message
    _, err = outcome(clients["libvirt"], "Host.getVMList", {})
    assert err.message.startswith("forbidden for CN=h2,O=Ferry,OU=libvirt on h2: ")


def test_a_host_cannot_expect_a_vm_that_runs_here(world):
    clients, _ = world
    got, err = outcome(clients["h2"], "VM.migrationCreate", {"vmID": VM, "name": "vm1"})
    assert got == "forbidden" and "running on this host" in err.message


def test_a_host_may_drop_only_the_incoming_migration_it_created(world):
    clients, _ = world
    assert clients["h2"].call("VM.migrationCreate", {"vmID": NEW_VM, "name": "incoming"})["vmID"] == NEW_VM
    # h3 did not create it, and nobody but the engine may destroy without incomingOnly:
    got, err = outcome(clients["h3"], "VM.destroy", {"vmID": NEW_VM, "incomingOnly": True})
    assert got == "forbidden" and "not created by host h3" in err.message
    assert outcome(clients["h2"], "VM.destroy", {"vmID": NEW_VM})[0] == "forbidden"
    assert outcome(clients["h2"], "VM.destroy", {"vmID": NEW_VM, "incomingOnly": "yes"})[0] == "forbidden"
    assert clients["h2"].call("VM.destroy", {"vmID": NEW_VM, "incomingOnly": True})["status"] == "Down"
    # the running VM was never h2's to touch, incomingOnly or not:
    assert outcome(clients["h2"], "VM.destroy", {"vmID": VM, "incomingOnly": True})[0] == "forbidden"


def test_a_refused_migration_create_grants_nothing(world):
    clients, _ = world
    clients["h2"].call("VM.migrationCreate", {"vmID": NEW_VM, "name": "incoming"})
    got, err = outcome(clients["h3"], "VM.migrationCreate", {"vmID": NEW_VM, "name": "incoming"})
    assert got == "ran" and err.name == "exist"   # already expected from h2: the verb refuses it
    assert outcome(clients["h3"], "VM.destroy", {"vmID": NEW_VM, "incomingOnly": True})[0] == "forbidden"


def test_the_engine_may_destroy_anything(world):
    clients, conn = world
    assert clients["engine"].call("VM.destroy", {"vmID": VM})["status"] == "Down"
    assert VM not in conn.domains
    assert clients["engine"].call("Host.getVMList", {})["vms"] == []


# ---- the pure parts ---------------------------------------------------------------------------

def test_caller_from_peercert():
    engine = {"subject": ((("commonName", "ferry-engine"),),), "subjectAltName": (("URI", "ferry:role/engine"),)}
    assert caller_from_peercert(engine) == Caller(Role("engine"), "engine")
    host = {"subjectAltName": (("IP Address", "127.0.0.2"), ("URI", "ferry:role/host/h2"))}
    assert caller_from_peercert(host) == Caller(Role("host", "h2"), "host h2")
    two = {"subject": ((("commonName", "x"),),),
           "subjectAltName": (("URI", "ferry:role/engine"), ("URI", "ferry:role/host/h2"))}
    assert caller_from_peercert(two) == Caller(None, "CN=x")   # ambiguous: no role at all
    for uri in ("ferry:role/admin", "ferry:role/host/", "ferry:role/host/a/b", "ferry:role/host/../x",
                "https://ferry/role/engine"):
        assert caller_from_peercert({"subjectAltName": (("URI", uri),)}).role is None, uri
    assert caller_from_peercert(None) == Caller(None, "an unnamed certificate")


@pytest.mark.parametrize("method", ALL_VERBS)
def test_decide_engine_always_none_never(method):
    assert decide(Caller(Role("engine"), "engine"), method, {}, running_here=True, source=None).allowed
    assert not decide(Caller(None, "x"), method, {}, running_here=False, source=None).allowed


def test_decide_host_rules():
    h2 = Caller(Role("host", "h2"), "host h2")
    create = decide(h2, "VM.migrationCreate", {"vmID": NEW_VM}, running_here=False, source=None)
    assert create.allowed and create.remember_source
    assert not decide(h2, "VM.migrationCreate", {"vmID": VM}, running_here=True, source=None).allowed
    drop = {"vmID": NEW_VM, "incomingOnly": True}
    assert decide(h2, "VM.destroy", drop, running_here=False, source="h2").allowed
    assert not decide(h2, "VM.destroy", drop, running_here=False, source="h3").allowed
    assert not decide(h2, "VM.destroy", drop, running_here=False, source=None).allowed
    assert not decide(h2, "VM.destroy", {"vmID": NEW_VM}, running_here=False, source="h2").allowed
    assert not decide(h2, "VM.destroy", [], running_here=False, source="h2").allowed
    assert not decide(Caller(Role("admin"), "admin"), "Host.getStats", {}, running_here=False, source=None).allowed


def test_grants_remember_the_latest_source_and_forget_the_oldest():
    grants = Grants(limit=2)
    grants.remember("a", "h2")
    grants.remember("a", "h3")
    assert grants.source("a") == "h3"
    grants.remember("b", "h2")
    grants.remember("c", "h2")
    assert grants.source("a") is None and grants.source("c") == "h2"
    assert grants.source(["not", "a", "str"]) is None

"""The engine CA and host enrollment: what goes in each certificate and where each file goes."""
from __future__ import annotations

import ipaddress
import os
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ferry.common.errors import Conflict, InvalidInput, OperationFailed
from ferry.pki.ca import CertificateAuthority, certificate_role, describe, ensure_ca, init_ca
from ferry.pki.enroll import enroll_host
from ferry.pki.layout import (
    CLOCK_SKEW,
    HOST_FILES,
    EnginePki,
    Role,
    bundle_path,
    check_address,
    host_role_uri,
    host_subject,
    pki_dir,
    role_of,
    subject_alt_names,
    validity,
)
from ferry.pki.tls import agent_tls_files, engine_client_tls, tls_hint

NOW = datetime(2026, 1, 1, tzinfo=UTC)


# ---- pure layout -------------------------------------------------------------------------------

def test_pki_dir_from_env():
    assert pki_dir({}) == Path("/var/lib/ferry/pki")
    assert pki_dir({"FERRY_STATE_DIR": "/srv/ferry"}) == Path("/srv/ferry/pki")
    assert pki_dir({"FERRY_STATE_DIR": "/srv/ferry", "FERRY_PKI_DIR": "/etc/ferry/pki"}) == Path("/etc/ferry/pki")


@pytest.mark.parametrize("name, address, sans", [
    ("h1", "127.0.3.2", [("ip", "127.0.3.2"), ("dns", "h1")]),
    ("h1", "h1", [("dns", "h1")]),
    ("kvm-07", "kvm-07.example.org", [("dns", "kvm-07.example.org"), ("dns", "kvm-07")]),
    ("h_1", "10.0.0.7", [("ip", "10.0.0.7")]),          # h_1 is no DNS name: not put in the SAN
    ("h6", "fd00::7", [("ip", "fd00::7"), ("dns", "h6")]),
])
def test_subject_alt_names(name, address, sans):
    assert subject_alt_names(name, address) == sans


@pytest.mark.parametrize("address", ["", "bad host", "-x", "a" * 300, "10.0.0.300"])
def test_bad_addresses_are_refused_naming_the_field(address):
    with pytest.raises(InvalidInput) as err:
        check_address(address)
    assert err.value.field == "address"


def test_subject_names_the_host_and_role():
    assert host_subject("h1", "agent") == {"CN": "h1", "O": "Ferry", "OU": "agent on h1"}
    with pytest.raises(InvalidInput):
        host_subject("h1", "engine")
    with pytest.raises(InvalidInput) as err:
        host_subject("../etc", "agent")
    assert err.value.field == "host"


def test_validity_is_back_dated_for_clock_skew():
    assert validity(NOW, 10) == (NOW - CLOCK_SKEW, NOW + timedelta(days=10))
    with pytest.raises(InvalidInput):
        validity(NOW, 0)


def test_host_files_are_where_libvirt_and_qemu_look():
    paths = {f.path: f for f in HOST_FILES}
    for path in ("/etc/pki/CA/cacert.pem", "/etc/pki/libvirt/servercert.pem", "/etc/pki/libvirt/clientcert.pem",
                 "/etc/pki/libvirt/private/serverkey.pem", "/etc/pki/libvirt/private/clientkey.pem",
                 "/etc/pki/qemu/ca-cert.pem", "/etc/pki/qemu/server-cert.pem", "/etc/pki/qemu/server-key.pem",
                 "/etc/pki/qemu/client-cert.pem", "/etc/pki/qemu/client-key.pem",
                 "/etc/pki/ferry/cacert.pem", "/etc/pki/ferry/certs/agentcert.pem",
                 "/etc/pki/ferry/keys/agentkey.pem"):
        assert path in paths
    for f in HOST_FILES:  # every private key is root-only, nothing else is
        assert (f.mode == 0o600) == f.content.endswith("-key")
    assert agent_tls_files().cert == Path("/etc/pki/ferry/certs/agentcert.pem")
    assert agent_tls_files("/x").key == Path("/x/keys/agentkey.pem")
    assert bundle_path(Path("/b"), "/etc/pki/CA/cacert.pem") == Path("/b/etc/pki/CA/cacert.pem")


@pytest.mark.parametrize("text, hint", [
    ("[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED]", "requires a client certificate"),
    ("TLSV1_ALERT_UNKNOWN_CA", "another CA"),
    ("SSLV3_ALERT_CERTIFICATE_EXPIRED", "expired"),
    ("certificate verify failed: IP address mismatch", "another host"),
    ("[SSL: WRONG_VERSION_NUMBER] wrong version number", "--dev"),
    ("Connection refused", None),
])
def test_tls_hints(text, hint):
    got = tls_hint(text)
    assert (got is None) if hint is None else (hint in got)


# ---- CA and enrollment (real cryptography, temporary directories) --------------------------------

def _eku(cert):
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_init_creates_ca_and_engine_certificate_with_private_keys_0600(tmp_path):
    pki = EnginePki(tmp_path / "pki")
    ca = init_ca(pki)
    assert stat.S_IMODE(os.stat(pki.ca_key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(pki.engine_key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(pki.ca_key.parent).st_mode) == 0o700
    bc = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    engine = x509.load_pem_x509_certificate(pki.engine_cert.read_bytes())
    engine.verify_directly_issued_by(ca.cert)
    assert _eku(engine) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    assert engine_client_tls(pki.root).cert == pki.engine_cert


def test_init_keeps_an_existing_ca_unless_forced(tmp_path):
    pki = EnginePki(tmp_path)
    first = init_ca(pki).cert
    with pytest.raises(Conflict) as err:
        init_ca(pki)
    assert "--force" in str(err.value)
    assert ensure_ca(pki).cert == first
    assert init_ca(pki, force=True).cert != first


def test_load_without_ca_says_what_to_run(tmp_path):
    with pytest.raises(OperationFailed) as err:
        CertificateAuthority.load(EnginePki(tmp_path))
    assert "ferry pki init" in str(err.value)


def test_enroll_writes_every_host_file_signed_by_the_ca(tmp_path):
    pki = EnginePki(tmp_path / "pki")
    ca = init_ca(pki)
    enrollment = enroll_host(pki, "h1", "127.0.3.2")
    root = pki.host_bundle("h1")
    assert enrollment.root == root and (root / "INSTALL.txt").exists()
    for f in HOST_FILES:
        path = bundle_path(root, f.path)
        assert stat.S_IMODE(os.stat(path).st_mode) == f.mode, f.path
    server = x509.load_pem_x509_certificate(bundle_path(root, "/etc/pki/libvirt/servercert.pem").read_bytes())
    agent = x509.load_pem_x509_certificate(bundle_path(root, "/etc/pki/ferry/certs/agentcert.pem").read_bytes())
    for cert in (server, agent):
        cert.verify_directly_issued_by(ca.cert)
        assert _eku(cert) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.3.2")]
        assert san.get_values_for_type(x509.DNSName) == ["h1"]
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "h1"
    assert server.public_key() != agent.public_key()  # libvirt and the agent do not share a key
    assert bundle_path(root, "/etc/pki/CA/cacert.pem").read_bytes() == ca.cert_pem


def test_expired_certificates_can_be_issued_for_tests(tmp_path):
    ca = CertificateAuthority.create(now=NOW)
    cert = ca.issue({"CN": "old"}, purposes=("client",), now=NOW - timedelta(days=100), days=30).cert
    assert cert.not_valid_after_utc < NOW
    with pytest.raises(InvalidInput):
        ca.issue({"CN": "x"}, purposes=("signing",))


# ---- roles (SAN URIs) ----------------------------------------------------------------------------

def _uris(cert):
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier)


def test_the_engine_certificate_carries_the_engine_role(tmp_path):
    pki = EnginePki(tmp_path)
    init_ca(pki)
    engine = x509.load_pem_x509_certificate(pki.engine_cert.read_bytes())
    assert _uris(engine) == ["ferry:role/engine"]
    assert certificate_role(engine) == Role("engine")
    assert describe(engine)["role"] == "engine"


def test_only_the_agent_certificate_carries_the_host_role(tmp_path):
    pki = EnginePki(tmp_path / "pki")
    init_ca(pki)
    enrollment = enroll_host(pki, "kvm-07", "10.0.0.7")
    assert _uris(enrollment.agent.cert) == ["ferry:role/host/kvm-07"]
    assert certificate_role(enrollment.agent.cert) == Role("host", "kvm-07")
    assert certificate_role(enrollment.libvirt.cert) is None   # QEMU's user may read this key
    assert describe(enrollment.libvirt.cert)["role"] == "none"


def test_ensure_ca_reissues_an_engine_certificate_from_before_roles(tmp_path):
    pki = EnginePki(tmp_path)
    ca = init_ca(pki)
    old = ca.issue({"CN": "ferry-engine", "O": "Ferry"}, purposes=("client",))   # as issued before roles
    pki.engine_cert.write_bytes(old.cert_pem)
    ensure_ca(pki)
    renewed = x509.load_pem_x509_certificate(pki.engine_cert.read_bytes())
    assert certificate_role(renewed) == Role("engine") and renewed.serial_number != old.cert.serial_number
    assert ensure_ca(pki).cert == ca.cert                                         # the CA itself is kept
    assert x509.load_pem_x509_certificate(pki.engine_cert.read_bytes()).serial_number == renewed.serial_number


@pytest.mark.parametrize("uris, role", [
    (["ferry:role/engine"], Role("engine")),
    (["ferry:role/host/h1"], Role("host", "h1")),
    (["https://example.org", "ferry:role/host/h_1.x"], Role("host", "h_1.x")),
    ([], None), (["ferry:role/engine", "ferry:role/engine"], None), (["ferry:role/root"], None),
    (["ferry:role/host/"], None), (["ferry:role/host/a/b"], None), (["ferry:role/host/" + "a" * 65], None),
])
def test_role_of_san_uris(uris, role):
    assert role_of(uris) == role


def test_role_uris_refuse_bad_host_names():
    assert host_role_uri("h1") == "ferry:role/host/h1"
    with pytest.raises(InvalidInput):
        host_role_uri("../h1")
    assert Role("host", "h1").subject == "host h1" and Role("engine").subject == "engine"

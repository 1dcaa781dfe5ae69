"""Lab hosts that were enrolled before certificates carried roles get new ones at `lab up`."""
from __future__ import annotations

from cryptography import x509

from ferry.lab import tls as lab_tls
from ferry.lab.config import libvirtd_conf, qemu_conf
from ferry.lab.plan import LabPlan
from ferry.pki.ca import CertificateAuthority, certificate_role, write_file
from ferry.pki.layout import PURPOSES, EnginePki, Role, host_subject, subject_alt_names


def agent_cert(h):
    return x509.load_pem_x509_certificate((lab_tls.host_tls_dir(h) / "ferry/certs/agentcert.pem").read_bytes())


def test_a_roleless_enrollment_is_issued_again_and_a_good_one_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("FERRY_PKI_DIR", str(tmp_path / "pki"))
    h = LabPlan(3, tmp_path).host(2)
    (h.dir / "etc").mkdir(parents=True)
    (h.dir / "etc" / "libvirtd.conf").write_text(libvirtd_conf(h))
    (h.dir / "etc" / "qemu.conf").write_text(qemu_conf(h))
    lab_tls.prepare_host(h)
    assert certificate_role(agent_cert(h)) == Role("host", h.name)
    serial = agent_cert(h).serial_number
    assert lab_tls.enroll_again_if_roleless(h) is False and agent_cert(h).serial_number == serial

    ca = CertificateAuthority.load(EnginePki(tmp_path / "pki"))    # what an enrollment before roles wrote
    old = ca.issue(host_subject(h.name, "agent"), purposes=PURPOSES["agent"], sans=subject_alt_names(h.name, h.address))
    write_file(lab_tls.host_tls_dir(h) / "ferry/certs/agentcert.pem", old.cert_pem, 0o644)
    write_file(lab_tls.host_tls_dir(h) / "ferry/keys/agentkey.pem", old.key_pem, 0o600)
    assert lab_tls.enroll_again_if_roleless(h) is True
    assert certificate_role(agent_cert(h)) == Role("host", h.name)
    assert certificate_role(x509.load_pem_x509_certificate((tmp_path / "pki/engine.pem").read_bytes())) == Role("engine")

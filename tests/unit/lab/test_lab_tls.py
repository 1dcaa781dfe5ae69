"""ferry.lab.tls: lab hosts enrolled with the engine CA into their own /etc/pki, libvirtd with
its TLS listener, QEMU's TLS directory, and the agents' TLS switch."""
from __future__ import annotations

from cryptography import x509

from ferry.lab import tls as lab_tls
from ferry.lab.config import libvirtd_conf, qemu_conf
from ferry.lab.lab import Lab
from ferry.lab.plan import HOST_MOUNTS, LabPlan
from tests.unit.lab.test_plan_config import parse_conf


def test_libvirtd_gets_a_tls_listener_beside_tcp(tmp_path):
    h = LabPlan(3, tmp_path).host(1)
    conf = lab_tls.libvirtd_tls_conf(libvirtd_conf(h))
    assert conf.count("listen_tls") == 1
    parsed = parse_conf(conf)
    assert parsed["listen_tls"] == "1" and parsed["listen_tcp"] == "1"
    assert parsed["auth_tls"] == '"none"' and parsed["tls_port"] == '"16514"'
    assert lab_tls.libvirtd_tls_conf(conf) == conf  # applying it twice changes nothing


def test_qemu_uses_the_hosts_x509_dir_and_verifies_peers(tmp_path):
    conf = parse_conf(lab_tls.qemu_tls_conf(qemu_conf(LabPlan(3, tmp_path).host(2))))
    assert conf["migrate_tls_x509_cert_dir"] == conf["default_tls_x509_cert_dir"] == '"/etc/pki/qemu"'
    assert conf["migrate_tls_x509_verify"] == conf["default_tls_x509_verify"] == "1"
    assert conf["migration_address"] == '"198.18.3.3"'


def test_prepare_host_enrolls_into_the_hosts_own_etc_pki(tmp_path, monkeypatch):
    monkeypatch.setenv("FERRY_PKI_DIR", str(tmp_path / "pki"))
    h = LabPlan(3, tmp_path).host(2)
    (h.dir / "etc").mkdir(parents=True)
    (h.dir / "etc" / "libvirtd.conf").write_text(libvirtd_conf(h))
    (h.dir / "etc" / "qemu.conf").write_text(qemu_conf(h))
    lab_tls.prepare_host(h)
    assert ("tls/etc/pki", "/etc/pki") in HOST_MOUNTS
    etc_pki = lab_tls.host_tls_dir(h)
    assert etc_pki == h.outside("/etc/pki")
    cert = x509.load_pem_x509_certificate((etc_pki / "libvirt" / "servercert.pem").read_bytes())
    assert "198.18.3.3" in str(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    assert (etc_pki / "qemu" / "server-key.pem").exists() and (etc_pki / "ferry" / "cacert.pem").exists()
    assert parse_conf((h.dir / "etc" / "libvirtd.conf").read_text())["listen_tls"] == "1"
    assert (tmp_path / "pki" / "ca.pem").exists()  # the engine CA was created for the lab


def test_agents_serve_tls_by_default_and_switch_to_dev(tmp_path):
    lab = Lab(3, root=tmp_path)
    h = lab.host(1)
    assert "--dev" not in lab.agent_command(h, 1, ["--old-agent"])
    assert h.agent_url == lab_tls.agent_url(h, True) == "https://198.18.3.2:54321/"
    lab_tls.set_agents_tls(lab.plan, False)
    assert lab.agent_command(h, 1, [])[-1] == "--dev"
    assert h.agent_url == lab_tls.agent_url(h, False) == "http://198.18.3.2:54321/"
    lab_tls.set_agents_tls(lab.plan, True)
    assert "--dev" not in lab.agent_command(h, 1, [])
    assert h.agent_url == "https://198.18.3.2:54321/"

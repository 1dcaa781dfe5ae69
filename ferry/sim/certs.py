"""Host certificates for simulated agents, from the engine CA (scale tests only: see ferry.sim).

Each simulated host gets an agent certificate like an enrolled host's (ferry.pki.enroll): its
address and name as SANs, the host role URI ferry:role/host/<name>, ECDSA P-256 keys (fast to
make: 2,000 hosts take seconds). Files go under <sim dir>/hosts/<name>/ in the agent's own
layout (cacert.pem, certs/agentcert.pem, keys/agentkey.pem), so AgentConfig(pki_dir=...) finds
them; they are kept between runs while the CA is the same.
"""
from __future__ import annotations

from pathlib import Path

from ferry.pki.ca import CertificateAuthority, ensure_ca, write_file
from ferry.pki.layout import PURPOSES, EnginePki, host_role_uri, host_subject, subject_alt_names
from ferry.pki.tls import agent_tls_files


def host_pki_dir(sim_dir: Path, name: str) -> Path:
    return Path(sim_dir) / "hosts" / name


def ensure_host_certs(pki: EnginePki, sim_dir: Path, hosts: list[tuple[str, str]],
                      ca: CertificateAuthority | None = None) -> int:
    """Issue what is missing for (name, address) pairs; returns how many were issued."""
    ca = ca or ensure_ca(pki)
    issued = 0
    for name, address in hosts:
        files = agent_tls_files(host_pki_dir(sim_dir, name))
        if files.ca.is_file() and files.ca.read_bytes() == ca.cert_pem and files.cert.is_file() \
                and files.key.is_file():
            continue
        cert = ca.issue(host_subject(name, "agent"), purposes=PURPOSES["agent"],
                        sans=[*subject_alt_names(name, address), ("uri", host_role_uri(name))])
        write_file(files.key, cert.key_pem, 0o600)
        write_file(files.cert, cert.cert_pem, 0o644)
        write_file(files.ca, ca.cert_pem, 0o644)
        issued += 1
    return issued

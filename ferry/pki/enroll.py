"""Enrolling a host: issue its agent and libvirt certificates and lay them out as libvirt expects.

`enroll_host(pki, name, address, root)` writes every file of `ferry.pki.layout.HOST_FILES`
under `root`: "/" on the host itself, a bundle directory the admin copies to the host
(`tar -C BUNDLE -cf - etc | ssh root@HOST tar -C / -xf -`), or a lab host's own /etc/pki.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ferry.pki.ca import CertificateAuthority, Issued, write_file
from ferry.pki.layout import (
    HOST_FILES,
    PURPOSES,
    EnginePki,
    bundle_path,
    check_address,
    check_host_name,
    host_role_uri,
    host_subject,
    subject_alt_names,
)

INSTALL_NOTE = """\
Ferry enrollment bundle for host {name} ({address}), issued by the engine CA in {pki}.

Copy the files under etc/ to the same paths on the host, as root, keeping their modes:

    tar -C {bundle} -cf - etc | ssh root@{address} 'tar -C / -xpf -'

Then on the host:
  - libvirtd.conf: listen_tls = 1 (libvirtd --listen), restart libvirtd;
  - run the agent without --dev (it reads /etc/pki/ferry/...).
The private keys (*key.pem) are readable by root only; remove this bundle once it is copied.
"""


@dataclass(frozen=True)
class Enrollment:
    name: str
    address: str
    root: Path
    files: tuple[Path, ...]
    agent: Issued
    libvirt: Issued


def issue_host_certs(ca: CertificateAuthority, name: str, address: str) -> tuple[Issued, Issued]:
    """The agent's and libvirt's certificates of one host (same names, separate keys).

    Only the agent's carries the host role (a SAN URI): libvirtd's and QEMU's key, which QEMU's
    user may read, can migrate guests but not call agents."""
    sans = subject_alt_names(name, address)
    agent = ca.issue(host_subject(name, "agent"), purposes=PURPOSES["agent"],
                     sans=[*sans, ("uri", host_role_uri(name))])
    libvirt = ca.issue(host_subject(name, "libvirt"), purposes=PURPOSES["libvirt"], sans=sans)
    return agent, libvirt


def enroll_host(pki: EnginePki, name: str, address: str, root: Path | None = None,
                ca: CertificateAuthority | None = None) -> Enrollment:
    """Issue the host's certificates and write them under `root` (default: its bundle dir)."""
    check_host_name(name)
    check_address(address)
    ca = ca or CertificateAuthority.load(pki)
    bundle = root is None
    root = pki.host_bundle(name) if root is None else Path(root)
    agent, libvirt = issue_host_certs(ca, name, address)
    content = {"ca": ca.cert_pem, "agent-cert": agent.cert_pem, "agent-key": agent.key_pem,
               "libvirt-cert": libvirt.cert_pem, "libvirt-key": libvirt.key_pem}
    written = []
    for f in HOST_FILES:
        path = bundle_path(root, f.path)
        write_file(path, content[f.content], f.mode)
        written.append(path)
    if bundle:
        note = root / "INSTALL.txt"
        note.write_text(INSTALL_NOTE.format(name=name, address=address, pki=pki.root, bundle=root))
        written.append(note)
    return Enrollment(name, address, root, tuple(written), agent, libvirt)

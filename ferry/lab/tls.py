"""TLS for lab hosts: each host enrolled with the engine CA, libvirtd listening for TLS, agents
serving mutual TLS.

At every `Lab.up` each host gets its own /etc/pki (a bind mount of <host dir>/tls/etc/pki,
see ferry.lab.plan.HOST_MOUNTS) holding the files `ferry host enroll` writes (agent, libvirt
and QEMU certificates from the engine CA in FERRY_PKI_DIR, created if missing), and its
libvirtd listens for qemu+tls:// on port 16514 beside qemu+tcp://. So a migration with
VIR_MIGRATE_TLS works between lab hosts, whatever mode the agents run in.

Agents serve https:// with mutual TLS (only the engine CA's certificates get in) and use
qemu+tls:// between libvirt daemons, as on a real host. For debugging, the lab's agents can be
switched to --dev mode (plain HTTP on the lab's loopback addresses) with
`set_agents_tls(plan, False)` and a restart. The switch is a marker file in the lab's
directory, so every process acting on the lab sees the same mode.
"""
from __future__ import annotations

from pathlib import Path

from cryptography import x509

from ferry.lab.plan import AGENT_PORT, AGENTS_DEV_MARKER, HostPlan, LabPlan
from ferry.pki.ca import certificate_role, ensure_ca
from ferry.pki.enroll import enroll_host
from ferry.pki.layout import HOST_ROLE, QEMU_TLS_DIR, EnginePki, Role, pki_dir

TLS_SUBDIR = "tls"        # <host dir>/tls is the host's enrollment root: tls/etc/pki -> /etc/pki
LIBVIRT_TLS_PORT = 16514


def libvirtd_tls_conf(conf: str) -> str:
    """libvirtd.conf with the TLS listener on (certificates at libvirt's default paths)."""
    lines = [ln for ln in conf.splitlines() if not ln.startswith(("listen_tls", "auth_tls", "tls_port"))]
    lines += ["listen_tls = 1", 'auth_tls = "none"', f'tls_port = "{LIBVIRT_TLS_PORT}"', ""]
    return "\n".join(lines)


def qemu_tls_conf(conf: str) -> str:
    """qemu.conf naming the x509 directory QEMU's TLS migration stream uses, verifying peers."""
    lines = [ln for ln in conf.splitlines()
             if not ln.startswith(("default_tls_x509_cert_dir", "default_tls_x509_verify",
                                   "migrate_tls_x509_cert_dir", "migrate_tls_x509_verify"))]
    lines += [f'default_tls_x509_cert_dir = "{QEMU_TLS_DIR}"', "default_tls_x509_verify = 1",
              f'migrate_tls_x509_cert_dir = "{QEMU_TLS_DIR}"', "migrate_tls_x509_verify = 1", ""]
    return "\n".join(lines)


def engine_pki() -> EnginePki:
    return EnginePki(pki_dir())


def prepare_host(host: HostPlan) -> None:
    """Enroll the host (fresh certificates every time) and turn libvirt's TLS on in its configs.

    Called while the host's directories are prepared, before its libvirtd starts."""
    pki = engine_pki()
    ca = ensure_ca(pki)
    enroll_host(pki, host.name, host.address, host.dir / TLS_SUBDIR, ca=ca)
    for name, edit in (("libvirtd.conf", libvirtd_tls_conf), ("qemu.conf", qemu_tls_conf)):
        path = host.dir / "etc" / name
        path.write_text(edit(path.read_text()))


def enroll_again_if_roleless(host: HostPlan) -> bool:
    """For a host that is already up: re-issue its certificates if its agent's carries no role
    (issued before roles existed), and the engine's likewise (ensure_ca). True if re-issued."""
    pki = engine_pki()
    ca = ensure_ca(pki)
    try:
        cert = x509.load_pem_x509_certificate((host_tls_dir(host) / "ferry/certs/agentcert.pem").read_bytes())
        if certificate_role(cert) == Role(HOST_ROLE, host.name):
            return False
    except (OSError, ValueError):
        pass
    enroll_host(pki, host.name, host.address, host.dir / TLS_SUBDIR, ca=ca)
    return True


def agents_tls(plan: LabPlan) -> bool:
    return not (plan.dir / AGENTS_DEV_MARKER).exists()


def set_agents_tls(plan: LabPlan, on: bool) -> None:
    """Choose the mode agents start in from now on (restart them to apply it)."""
    marker = plan.dir / AGENTS_DEV_MARKER
    if on:
        marker.unlink(missing_ok=True)
    else:
        plan.dir.mkdir(parents=True, exist_ok=True)
        marker.write_text("agents serve plain http:// in --dev mode (ferry.lab.tls)\n")


def agent_mode_args(plan: LabPlan) -> list[str]:
    """The agent's mode options: [] (TLS, the default files under the host's own /etc/pki) or --dev."""
    return [] if agents_tls(plan) else ["--dev"]


def agent_url(host: HostPlan, tls: bool) -> str:
    return f"{'https' if tls else 'http'}://{host.address}:{AGENT_PORT}/"


def host_tls_dir(host: HostPlan) -> Path:
    """The host's /etc/pki, seen from outside the host."""
    return host.dir / TLS_SUBDIR / "etc" / "pki"

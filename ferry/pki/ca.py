"""The engine's certificate authority: create it, load it, issue certificates (cryptography).

Keys are ECDSA P-256 (fast to generate, accepted by OpenSSL, GnuTLS/libvirt and QEMU).
Private keys are written 0600 in a 0700 directory, atomically (write + rename), so a crash
never leaves half a key behind.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ferry.common.errors import Conflict, InvalidInput, OperationFailed
from ferry.pki.layout import (
    CA_COMMON_NAME,
    CA_DAYS,
    CLIENT,
    ENGINE_COMMON_NAME,
    ENGINE_ROLE,
    ENGINE_ROLE_URI,
    LEAF_DAYS,
    ORGANIZATION,
    PURPOSES,
    SERVER,
    EnginePki,
    Role,
    role_of,
    validity,
)

_NAME_OIDS = {"CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME}
_EKU = {SERVER: ExtendedKeyUsageOID.SERVER_AUTH, CLIENT: ExtendedKeyUsageOID.CLIENT_AUTH}


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)


def _name(parts: dict[str, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(_NAME_OIDS[k], v) for k, v in parts.items()])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _now() -> datetime:
    return datetime.now(UTC)


class CertificateAuthority:
    """A CA certificate and its key; `issue` signs leaf certificates."""

    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey):
        self.cert = cert
        self.key = key

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def create(cls, common_name: str = CA_COMMON_NAME, *, now: datetime | None = None,
               days: int = CA_DAYS) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name({"CN": common_name, "O": ORGANIZATION})
        not_before, not_after = validity(now or _now(), days)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (x509.CertificateBuilder()
                .subject_name(subject).issuer_name(subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(not_before).not_valid_after(not_after)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, key_cert_sign=True, crl_sign=True,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(ski, critical=False)
                .sign(key, hashes.SHA256()))
        return cls(cert, key)

    @classmethod
    def load(cls, pki: EnginePki) -> CertificateAuthority:
        if not pki.ca_cert.exists() or not pki.ca_key.exists():
            raise OperationFailed(f"no engine CA in {pki.root}: run `ferry pki init` first")
        try:
            cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
            key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
        except (ValueError, OSError) as exc:
            raise OperationFailed(f"cannot read the engine CA in {pki.root}: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise OperationFailed(f"{pki.ca_key}: not an ECDSA key written by `ferry pki init`")
        return cls(cert, key)

    def issue(self, subject: dict[str, str], *, purposes: tuple[str, ...],
              sans: list[tuple[str, str]] = (), now: datetime | None = None,
              days: int = LEAF_DAYS) -> Issued:
        """A new key and a certificate for it, signed by this CA.

        `purposes`: ("server", "client") -> extended key usage; `sans`: ("dns"|"ip"|"uri", value)
        (a "uri" carries the Ferry role, see ferry.pki.layout.ROLE_URI_PREFIX).
        `now` and `days` exist so tests can issue certificates that are already expired.
        """
        if not purposes or any(p not in _EKU for p in purposes):
            raise InvalidInput("purposes", f"must be some of {sorted(_EKU)}, got {purposes!r}")
        key = ec.generate_private_key(ec.SECP256R1())
        not_before, not_after = validity(now or _now(), days)
        builder = (x509.CertificateBuilder()
                   .subject_name(_name(subject)).issuer_name(self.cert.subject)
                   .public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(not_before).not_valid_after(not_after)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                key_encipherment=True, data_encipherment=False,
                                                key_agreement=False, key_cert_sign=False, crl_sign=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([_EKU[p] for p in purposes]), critical=False)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                                  critical=False))
        if sans:
            names: list[x509.GeneralName] = []
            for kind, value in sans:
                if kind == "ip":
                    names.append(x509.IPAddress(ipaddress.ip_address(value)))
                elif kind == "dns":
                    names.append(x509.DNSName(value))
                elif kind == "uri":
                    names.append(x509.UniformResourceIdentifier(value))
                else:
                    raise InvalidInput("sans", f"unknown kind {kind!r} (dns, ip or uri)")
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


# ---- files -------------------------------------------------------------------------------------

def write_file(path: Path, data: bytes, mode: int) -> None:
    """Write atomically with `mode` (the temporary file has the mode before any byte is in it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode & 0o077 == 0 and path.parent.name in ("private", "keys"):
        os.chmod(path.parent, 0o700)  # key directories; /etc/pki/qemu stays readable for QEMU's user
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def init_ca(pki: EnginePki, *, force: bool = False, common_name: str = CA_COMMON_NAME) -> CertificateAuthority:
    """Create the engine CA and the engine's client certificate in `pki.root`.

    An existing CA is kept (every enrolled host trusts it) unless `force`; then every host
    must be enrolled again.
    """
    if pki.ca_cert.exists() and not force:
        raise Conflict(f"an engine CA already exists in {pki.root} (every enrolled host trusts it); "
                       "use --force to replace it and enroll every host again")
    pki.root.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority.create(common_name)
    write_file(pki.ca_key, _key_pem(ca.key), 0o600)
    write_file(pki.ca_cert, ca.cert_pem, 0o644)
    issue_engine_cert(pki, ca)
    return ca


def ensure_ca(pki: EnginePki) -> CertificateAuthority:
    """The engine CA of `pki`, created if there is none yet (the lab uses this).

    Locked, so two labs starting at once for the first time do not each make a CA."""
    import fcntl

    pki.root.mkdir(parents=True, exist_ok=True)
    with open(pki.root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if pki.ca_cert.exists() and pki.ca_key.exists():
            ca = CertificateAuthority.load(pki)
            if not pki.engine_cert.exists() or not pki.engine_key.exists() or not _has_engine_role(pki):
                issue_engine_cert(pki, ca)  # also an engine certificate from before roles existed
            return ca
        return init_ca(pki, force=True)


def _has_engine_role(pki: EnginePki) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(pki.engine_cert.read_bytes())
    except (ValueError, OSError):
        return False
    return certificate_role(cert) == Role(ENGINE_ROLE)


def certificate_role(cert: x509.Certificate) -> Role | None:
    """The Ferry role a certificate carries in its SAN URIs (None: no role, or an ambiguous one)."""
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    return role_of(sans.get_values_for_type(x509.UniformResourceIdentifier))


def issue_engine_cert(pki: EnginePki, ca: CertificateAuthority) -> Issued:
    """The certificate the engine and CLI present to agents (client purpose only, engine role)."""
    issued = ca.issue({"CN": ENGINE_COMMON_NAME, "O": ORGANIZATION}, purposes=PURPOSES["engine"],
                      sans=[("uri", ENGINE_ROLE_URI)])
    write_file(pki.engine_key, issued.key_pem, 0o600)
    write_file(pki.engine_cert, issued.cert_pem, 0o644)
    return issued


def issue_engine_server_cert(pki: EnginePki, ca: CertificateAuthority, address: str) -> Issued:
    """The engine's HTTPS certificate, for `address` (what CLI users put in the engine URL)."""
    from ferry.pki.layout import check_address, is_ip

    check_address(address)
    sans = [("ip" if is_ip(address) else "dns", address)]
    issued = ca.issue({"CN": address, "O": ORGANIZATION, "OU": "engine API"}, purposes=(SERVER,), sans=sans)
    write_file(pki.engine_server_key, issued.key_pem, 0o600)
    write_file(pki.engine_server_cert, issued.cert_pem, 0o644)
    return issued


def describe(cert: x509.Certificate) -> dict:
    """The facts of a certificate an admin checks (JSON-able)."""
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        san_list = [str(v.value) for v in sans]
    except x509.ExtensionNotFound:
        san_list = []
    return {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "serial": format(cert.serial_number, "x"),
            "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(), "sans": san_list,
            "role": (certificate_role(cert) or Role("none")).subject,
            "sha256": cert.fingerprint(hashes.SHA256()).hex(":")}

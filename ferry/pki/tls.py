"""TLS settings for Ferry's own connections (agent server, engine/CLI/agent clients).

`TlsFiles(ca, cert, key)` names the three files; `server_context` requires a client certificate
from the CA (the agent), `client_context` presents ours and checks the server's name against
the URL's host (the engine, the CLI, an agent calling another agent). `engine_client_tls()`
is what the engine's orchestrator and the CLI use towards agents: the engine's client
certificate in the PKI directory (see ferry.pki.layout.pki_dir).
"""
from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from ferry.common.errors import OperationFailed
from ferry.pki.layout import AGENT_CA, AGENT_CERT, AGENT_KEY, EnginePki, pki_dir


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path

    def check(self, who: str) -> TlsFiles:
        """Clear error naming the missing file (instead of ssl's bare 'No such file')."""
        for label, path in (("CA certificate", self.ca), ("certificate", self.cert), ("private key", self.key)):
            if not Path(path).is_file():
                raise OperationFailed(f"{who}: {label} {path} does not exist "
                                      "(run `ferry pki init` on the engine and enroll this host: "
                                      "`ferry host enroll`; or use --dev on loopback)")
        return self

    # What ferry.common.jsonrpc.JsonRpcClient asks of its `tls` settings:
    def context(self) -> ssl.SSLContext:
        """The client context presenting these files (built once per version of the files)."""
        return cached_client_context(self)

    def explain(self, error_text: str) -> str | None:
        return tls_hint(error_text)


@dataclass(frozen=True)
class ReadyContext:
    """A context someone built (e.g. a test presenting no certificate), with Ferry's explanations
    of TLS failures, for JsonRpcClient(tls=...)."""

    ctx: ssl.SSLContext

    def context(self) -> ssl.SSLContext:
        return self.ctx

    def explain(self, error_text: str) -> str | None:
        return tls_hint(error_text)


def agent_tls_files(pki_dir: str | Path | None = None) -> TlsFiles:
    """The agent's files on an enrolled host (under /etc/pki/ferry, or another `pki_dir`)."""
    default = Path(AGENT_CA).parent
    base = Path(pki_dir) if pki_dir else default
    return TlsFiles(*(base / Path(p).relative_to(default) for p in (AGENT_CA, AGENT_CERT, AGENT_KEY)))


def engine_client_tls(root: Path | None = None) -> TlsFiles:
    """The engine's client certificate (presented by the engine and the CLI to agents)."""
    pki = EnginePki(Path(root) if root else pki_dir())
    return TlsFiles(pki.ca_cert, pki.engine_cert, pki.engine_key)


# What OpenSSL's alert/verify texts mean for a Ferry admin (matched case-insensitively).
_HINTS = (
    ("certificate required", "the agent requires a client certificate from the engine CA"),
    ("peer did not return a certificate", "the client presented no certificate"),
    ("unknown ca", "the other side does not trust our certificate (issued by another CA?)"),
    ("certificate has expired", "a certificate has expired (enroll the host again)"),
    ("certificate expired", "a certificate has expired (enroll the host again)"),
    ("unable to get local issuer", "the certificate was not issued by the engine CA"),
    ("self-signed certificate", "the certificate was not issued by the engine CA"),
    ("hostname mismatch", "the agent's certificate is for another host (check the agent URL)"),
    ("ip address mismatch", "the agent's certificate is for another host (check the agent URL)"),
    ("wrong version number", "the other side does not speak TLS (an agent in --dev mode?)"),
    ("http request", "a plain HTTP client talked to the TLS port (use https://)"),
)


def tls_hint(error_text: str) -> str | None:
    """A sentence explaining a TLS failure, or None when the text is not a known TLS failure."""
    low = error_text.lower().replace("_", " ")
    for needle, hint in _HINTS:
        if needle in low:
            return hint
    return None


def _load(ctx: ssl.SSLContext, files: TlsFiles, who: str) -> ssl.SSLContext:
    files.check(who)
    try:
        ctx.load_verify_locations(cafile=str(files.ca))
        ctx.load_cert_chain(certfile=str(files.cert), keyfile=str(files.key))
    except (ssl.SSLError, OSError) as exc:
        raise OperationFailed(f"{who}: cannot load TLS files ({files.cert}, {files.key}, CA {files.ca}): "
                              f"{exc}") from None
    return ctx


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """TLS 1.2+ server context that refuses clients without a certificate from the CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    return _load(ctx, files, "agent TLS")


def client_context(files: TlsFiles) -> ssl.SSLContext:
    """TLS 1.2+ client context presenting `files.cert`, trusting only `files.ca`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return _load(ctx, files, "TLS client")


_contexts: dict[tuple, ssl.SSLContext] = {}


def cached_client_context(files: TlsFiles) -> ssl.SSLContext:
    """client_context(files), reused while the files are unchanged (clients are made per call)."""
    key = (files,) + tuple(_mtime(p) for p in (files.ca, files.cert, files.key))
    ctx = _contexts.get(key)
    if ctx is None:
        ctx = client_context(files)
        if len(_contexts) > 32:  # files replaced many times over: drop the stale contexts
            _contexts.clear()
        _contexts[key] = ctx
    return ctx


def _mtime(path: Path) -> float | None:
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return None


def engine_server_tls(root: Path | None = None) -> dict:
    """uvicorn's TLS options for `ferry engine run --tls` (the engine's HTTPS certificate)."""
    pki = EnginePki(Path(root) if root else pki_dir())
    for label, path in (("certificate", pki.engine_server_cert), ("private key", pki.engine_server_key)):
        if not path.is_file():
            raise OperationFailed(f"engine TLS: {label} {path} does not exist (run `ferry pki engine-cert "
                                  "--address ADDRESS` first)")
    return {"ssl_certfile": str(pki.engine_server_cert), "ssl_keyfile": str(pki.engine_server_key)}

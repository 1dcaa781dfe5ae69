"""Ferry's PKI: the engine CA, host enrollment, TLS settings (see docs/security.md)."""
from ferry.pki.layout import EnginePki, pki_dir
from ferry.pki.tls import TlsFiles, client_context, engine_client_tls, server_context

__all__ = ["EnginePki", "TlsFiles", "client_context", "engine_client_tls", "pki_dir", "server_context"]

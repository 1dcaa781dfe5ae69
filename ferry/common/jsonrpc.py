"""JSON-RPC 2.0 over HTTP POST: the client every part uses to talk to agents, and server helpers.

    JsonRpcClient("http://127.0.0.2:54321/jsonrpc", timeout=10).call("VM.migrate", {...})

A JSON-RPC error comes back as `JsonRpcError(code, message, data)`; a transport failure (host
down, refused, timeout, not JSON) as `JsonRpcError(TRANSPORT_ERROR, ...)` so callers handle one
exception type. Codes 1..99 follow Vdsm's error codes, -32xxx are JSON-RPC's own.

An https:// URL is mutual TLS with the settings the caller passes as `tls`: a ready
`ssl.SSLContext`, or an object with `context() -> ssl.SSLContext` (built when first needed, so
a missing file is a transport error naming it) and optionally `explain(error_text) -> str | None`
(a sentence for a TLS failure). `ferry.pki.TlsFiles` is such an object; the engine and the CLI
pass `ferry.pki.engine_client_tls()`, an agent its own files. This module knows nothing of
Ferry's PKI: which certificate to present is the caller's decision.
"""
from __future__ import annotations

import http.client
import itertools
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
TRANSPORT_ERROR = -32000   # the agent could not be reached or answered garbage

# Vdsm-style error names and codes the agent answers with (name -> code).
ERROR_CODES = {
    "noVM": 1,                 # Vdsm: Virtual machine does not exist
    "exist": 4,                # Vdsm: Virtual machine already exists
    "migrateErr": 12,          # Vdsm: Fatal error during migration
    "unexpected": 16,          # Vdsm: Unexpected exception
    "migrateLimit": 48,        # Vdsm: Incoming migration limit exceeded
    "migCancelErr": 82,        # Vdsm: Migration not in progress
    "migrationInProgress": 101,  # Ferry: the VM is already migrating
    "vmNotRunning": 102,       # Ferry: the VM exists but is not running
    "forbidden": 103,          # Ferry: the caller's certificate role may not do this
    "libvirtUnavailable": 104,  # Ferry: no libvirt connection right now (the agent reconnects)
    "invalidParams": INVALID_PARAMS,
}

_ids = itertools.count(1)


class JsonRpcError(Exception):
    """An error answer (or a failure to get any answer) from a JSON-RPC server."""

    def __init__(self, code: int, message: str, data: Any = None):
        self.code = code
        self.message = message
        self.data = data
        super().__init__(f"{message} (code {code})")

    @property
    def name(self) -> str | None:
        """The Vdsm-style error name the agent put in data, e.g. 'migrateLimit'."""
        return self.data.get("name") if isinstance(self.data, dict) else None

    def to_dict(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def agent_error(name: str, message: str, **data: Any) -> JsonRpcError:
    """A Vdsm-style error: code from ERROR_CODES, data carries the name and details."""
    return JsonRpcError(ERROR_CODES[name], message, {"name": name, **data})


class JsonRpcClient:
    """A small blocking JSON-RPC 2.0 client (one HTTP POST per call)."""

    def __init__(self, url: str, timeout: float = 30.0, tls: Any = None):
        self.url = url if url.rstrip("/").endswith("/jsonrpc") else url.rstrip("/") + "/jsonrpc"
        self.timeout = timeout
        self.tls = tls  # ssl.SSLContext | object with .context() (and .explain()) | None

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.url.startswith("https://"):
            return None
        if isinstance(self.tls, ssl.SSLContext):
            return self.tls
        if self.tls is None:
            raise JsonRpcError(TRANSPORT_ERROR, f"{self.url}: https:// needs the caller's TLS settings "
                                                "(tls=ferry.pki.engine_client_tls() or an ssl.SSLContext)")
        from ferry.common.errors import FerryError

        try:
            return self.tls.context()
        except FerryError as exc:
            raise JsonRpcError(TRANSPORT_ERROR, f"{self.url}: {exc}") from None

    def _explain(self, text: str) -> str | None:
        explain = getattr(self.tls, "explain", None)
        return explain(text) if callable(explain) else None

    def call(self, method: str, params: dict | list | None = None) -> Any:
        request_id = next(_ids)
        body = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                           "params": params if params is not None else {}}).encode()
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        context = self._ssl_context()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=context) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            if not raw:
                raise JsonRpcError(TRANSPORT_ERROR, f"{self.url}: HTTP {exc.code}") from None
        except (TimeoutError, urllib.error.URLError, ConnectionError, OSError, http.client.HTTPException) as exc:
            reason = exc if isinstance(exc, ssl.SSLError) else getattr(exc, "reason", exc)
            hint = self._explain(str(reason))
            if hint:
                reason = f"{reason} ({hint})"
            if isinstance(exc, http.client.HTTPException) and self.url.startswith("http://"):
                reason = f"{exc!r} (is the agent serving https://? plain http:// is only its --dev mode)"
            raise JsonRpcError(TRANSPORT_ERROR, f"{self.url}: {reason}") from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise JsonRpcError(TRANSPORT_ERROR, f"{self.url}: answer is not JSON: {raw[:200]!r}") from None
        if not isinstance(answer, dict):
            raise JsonRpcError(TRANSPORT_ERROR, f"{self.url}: answer is not a JSON-RPC object")
        if "error" in answer and answer["error"] is not None:
            err = answer["error"]
            if not isinstance(err, dict):  # an HTTP-level refusal from the agent, not a JSON-RPC answer
                raise JsonRpcError(TRANSPORT_ERROR, f"{self.url}: {err}")
            raise JsonRpcError(int(err.get("code", INTERNAL_ERROR)), str(err.get("message", "")), err.get("data"))
        return answer.get("result")


def handle_request(body: bytes, methods: dict[str, Callable[[dict], Any]],
                   on_internal_error: Callable[[str, BaseException], None] | None = None) -> dict | None:
    """One JSON-RPC request body -> the response object (None for a notification).

    `methods` maps a method name to a function taking the params dict; it raises JsonRpcError
    for answers that are errors. Anything else it raises becomes an internal error whose
    message is the exception's text (never a traceback).
    """
    try:
        request = json.loads(body)
    except RecursionError:
        return {"jsonrpc": "2.0", "id": None, "error": {"code": PARSE_ERROR, "message": "parse error: nested too deeply"}}
    except ValueError as exc:
        return {"jsonrpc": "2.0", "id": None, "error": {"code": PARSE_ERROR, "message": f"parse error: {exc}"}}
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
        return {"jsonrpc": "2.0", "id": None,
                "error": {"code": INVALID_REQUEST, "message": "not a JSON-RPC 2.0 request object"}}
    request_id = request.get("id")
    method = request["method"]
    params = request.get("params", {})
    if params is None:
        params = {}
    try:
        if method not in methods:
            raise JsonRpcError(METHOD_NOT_FOUND, f"method {method!r} not found")
        if not isinstance(params, dict):
            raise JsonRpcError(INVALID_PARAMS, "params: must be an object with named parameters",
                               {"name": "invalidParams", "field": "params"})
        result = methods[method](params)
        response = {"jsonrpc": "2.0", "id": request_id, "result": result}
    except JsonRpcError as exc:
        response = {"jsonrpc": "2.0", "id": request_id, "error": exc.to_dict()}
    except Exception as exc:  # noqa: BLE001 - every failure must become an answer
        if on_internal_error:
            on_internal_error(method, exc)
        response = {"jsonrpc": "2.0", "id": request_id,
                    "error": {"code": ERROR_CODES["unexpected"], "message": f"{method}: {exc}",
                              "data": {"name": "unexpected"}}}
    return None if "id" not in request else response

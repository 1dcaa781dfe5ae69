"""Kept-alive connections from the engine to its agents, for the host monitor (issue 18).

Why: `ferry.common.jsonrpc.JsonRpcClient` opens one connection per call, so a refresh (three
calls) costs three TLS handshakes; at 2,000 hosts every 5 s that is 1,200 handshakes a second,
more CPU than the engine has. One shared httpx client keeps a connection per agent open (the
agent's server speaks HTTP/1.1 keep-alive) and reuses it for every refresh. It presents the
engine's certificate (engine role) like `agent_client`, and fails the same way: JsonRpcError,
TRANSPORT_ERROR for an agent that cannot be reached, with Ferry's TLS hints.
"""
from __future__ import annotations

import itertools
import json
import threading
from typing import Any

import httpx

from ferry.common.jsonrpc import INTERNAL_ERROR, TRANSPORT_ERROR, JsonRpcError

KEEPALIVE_S = 25.0     # under the agent's 30 s read deadline for an idle connection
_ids = itertools.count(1)


class AgentPool:
    """`pool(url)` -> an object with `.call(method, params)`, over one shared connection pool."""

    def __init__(self, timeout: float = 10.0, tls: Any = None, max_connections: int = 8192):
        self.timeout = timeout
        self._tls = tls
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._max = max_connections
        self.tls_error: str | None = None

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                tls = self._tls
                if tls is None:
                    from ferry.pki import engine_client_tls

                    tls = engine_client_tls()
                verify = True
                try:
                    verify = tls.context() if hasattr(tls, "context") else tls
                except Exception as exc:  # noqa: BLE001 - missing PKI files: said on every https call
                    self.tls_error = f"the engine's TLS settings: {exc}"
                self._client = httpx.Client(
                    verify=verify, timeout=self.timeout, trust_env=False,
                    limits=httpx.Limits(max_connections=self._max, max_keepalive_connections=self._max,
                                        keepalive_expiry=KEEPALIVE_S))
            return self._client

    def __call__(self, url: str) -> _PooledClient:
        return _PooledClient(self, url if url.rstrip("/").endswith("/jsonrpc") else url.rstrip("/") + "/jsonrpc")

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


class _PooledClient:
    def __init__(self, pool: AgentPool, url: str):
        self.pool = pool
        self.url = url

    def call(self, method: str, params: dict | list | None = None) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": next(_ids), "method": method,
                           "params": params if params is not None else {}})
        client = self.pool._http()
        if self.pool.tls_error and self.url.startswith("https://"):
            raise JsonRpcError(TRANSPORT_ERROR, f"{self.url}: {self.pool.tls_error}")
        try:
            response = client.post(self.url, content=body, headers={"Content-Type": "application/json"})
            raw = response.content
        except httpx.HTTPError as exc:
            from ferry.pki.tls import tls_hint

            reason = str(exc) or type(exc).__name__
            hint = tls_hint(reason)
            raise JsonRpcError(TRANSPORT_ERROR, f"{self.url}: {reason}{f' ({hint})' if hint else ''}") from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise JsonRpcError(TRANSPORT_ERROR, f"{self.url}: HTTP {response.status_code}, answer is not JSON: "
                                                f"{raw[:200]!r}") from None
        if not isinstance(answer, dict):
            raise JsonRpcError(TRANSPORT_ERROR, f"{self.url}: answer is not a JSON-RPC object")
        err = answer.get("error")
        if err is not None:
            if not isinstance(err, dict):
                raise JsonRpcError(TRANSPORT_ERROR, f"{self.url}: {err}")
            raise JsonRpcError(int(err.get("code", INTERNAL_ERROR)), str(err.get("message", "")), err.get("data"))
        return answer.get("result")

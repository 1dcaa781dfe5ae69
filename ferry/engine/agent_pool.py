"""Kept-alive connections from the engine to its agents, for the host monitor (issue 18).

Why: `ferry.common.jsonrpc.JsonRpcClient` opens one connection per call, so a refresh (three
calls) costs three TLS handshakes; at 2,000 hosts every 5 s that is 1,200 handshakes a second,
more CPU than the engine has. So each agent gets one connection of its own, kept open (the
agent's server speaks HTTP/1.1 keep-alive) and reused for every refresh.

Why one connection per agent and not one shared httpx/httpcore pool (what this was first): that
pool takes one lock and scans every pooled connection (a readability poll of each idle socket)
on each request, so at 2,000 agents every call paid for 2,000 sockets under one lock; profiled
at 500 hosts, that lock and scan were most of a refresh's time (docs/benchmarks.md, scale).
Here finding an agent's connection is one dict lookup, and calls to different agents share no
lock. A connection idle longer than KEEPALIVE_S (the agent closes idle ones at 30 s) is
reopened; a call whose reused connection turns out closed by the agent before it answered is
sent once more on a fresh one (the monitor's verbs only read).

It presents the engine's certificate (engine role) like `agent_client`, and fails the same way:
JsonRpcError, TRANSPORT_ERROR for an agent that cannot be reached, with Ferry's TLS hints.
"""
from __future__ import annotations

import http.client
import itertools
import json
import select
import ssl
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from ferry.common.jsonrpc import INTERNAL_ERROR, TRANSPORT_ERROR, JsonRpcError

KEEPALIVE_S = 25.0     # under the agent's 30 s read deadline for an idle connection
_ids = itertools.count(1)
# The agent closed a kept-alive connection before reading the request: safe to send again.
# Over TLS a peer that went away without a close_notify (an agent killed or restarted) shows as
# an EOF in the TLS layer.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError,
          http.client.CannotSendRequest, ssl.SSLEOFError, ssl.SSLZeroReturnError)


def _closed_by_peer(conn: http.client.HTTPConnection) -> bool:
    """An idle kept-alive connection has nothing to read, unless the agent closed it (EOF) or a
    restarted agent's kernel reset it: then it is reopened before the request is sent."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class AgentPool:
    """`pool(url)` -> an object with `.call(method, params)`, over that agent's own connection."""

    def __init__(self, timeout: float = 10.0, tls: Any = None):
        self.timeout = timeout
        self._tls = tls
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None
        self._context_ready = False
        self._agents: dict[str, _AgentConnection] = {}
        self.tls_error: str | None = None

    def _ssl(self) -> ssl.SSLContext | None:
        with self._lock:
            if not self._context_ready:
                tls = self._tls
                if tls is None:
                    from ferry.pki import engine_client_tls

                    tls = engine_client_tls()
                try:
                    self._context = tls.context() if hasattr(tls, "context") else tls
                except Exception as exc:  # noqa: BLE001 - missing PKI files: said on every https call
                    self.tls_error = f"the engine's TLS settings: {exc}"
                self._context_ready = True
            return self._context

    def __call__(self, url: str) -> _AgentConnection:
        url = url if url.rstrip("/").endswith("/jsonrpc") else url.rstrip("/") + "/jsonrpc"
        with self._lock:
            conn = self._agents.get(url)
            if conn is None:
                conn = self._agents[url] = _AgentConnection(self, url)
            return conn

    def close(self) -> None:
        with self._lock:
            agents, self._agents = list(self._agents.values()), {}
        for conn in agents:
            conn.close()


class _AgentConnection:
    def __init__(self, pool: AgentPool, url: str):
        self.pool = pool
        self.url = url
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host, self._port, self._path = parts.hostname or "", parts.port, parts.path or "/jsonrpc"
        self._lock = threading.Lock()          # one request at a time on this agent's connection
        self._conn: http.client.HTTPConnection | None = None
        self._used_at = 0.0

    def _open(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.pool.timeout,
                                               context=self.pool._ssl())
        return http.client.HTTPConnection(self._host, self._port, timeout=self.pool.timeout)

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _post(self, conn: http.client.HTTPConnection, body: bytes) -> tuple[http.client.HTTPResponse, bytes]:
        conn.request("POST", self._path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response, response.read()

    def _exchange(self, body: bytes) -> tuple[int, bytes]:
        conn = self._conn
        if conn is None or time.monotonic() - self._used_at > KEEPALIVE_S or _closed_by_peer(conn):
            self._drop()
            conn = self._conn = self._open()
            fresh = True
        else:
            fresh = False
        try:
            response, raw = self._post(conn, body)
        except _STALE:
            self._drop()
            if fresh:
                raise
            conn = self._conn = self._open()
            response, raw = self._post(conn, body)
        self._used_at = time.monotonic()
        if response.will_close:
            self._drop()
        return response.status, raw

    def call(self, method: str, params: dict | list | None = None) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": next(_ids), "method": method,
                           "params": params if params is not None else {}}).encode()
        if self._https:
            self.pool._ssl()
            if self.pool.tls_error:
                raise JsonRpcError(TRANSPORT_ERROR, f"{self.url}: {self.pool.tls_error}")
        with self._lock:
            try:
                status, raw = self._exchange(body)
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                from ferry.pki.tls import tls_hint

                reason = str(exc) or type(exc).__name__
                hint = tls_hint(reason)
                raise JsonRpcError(TRANSPORT_ERROR, f"{self.url}: {reason}{f' ({hint})' if hint else ''}") from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise JsonRpcError(TRANSPORT_ERROR, f"{self.url}: HTTP {status}, answer is not JSON: "
                                                f"{raw[:200]!r}") from None
        if not isinstance(answer, dict):
            raise JsonRpcError(TRANSPORT_ERROR, f"{self.url}: answer is not a JSON-RPC object")
        err = answer.get("error")
        if err is not None:
            if not isinstance(err, dict):
                raise JsonRpcError(TRANSPORT_ERROR, f"{self.url}: {err}")
            raise JsonRpcError(int(err.get("code", INTERNAL_ERROR)), str(err.get("message", "")), err.get("data"))
        return answer.get("result")

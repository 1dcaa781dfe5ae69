"""JSON-RPC 2.0 over HTTP POST /jsonrpc (stdlib ThreadingHTTPServer: one thread per request).

Normally the server speaks TLS only and requires a client certificate from the engine CA
(`tls`: a server context from ferry.pki.tls.server_context); the handshake runs in the
request's own thread, so a client that stalls or fails it never blocks others, and every
refusal is logged with its reason. Without `tls` it speaks plain HTTP: the agent's --dev mode,
which `check_dev_address` allows on loopback addresses only.

Every request then goes through `ferry.agent.dispatch.AccessControl`: the role in the client's
certificate decides which verbs it may call (ferry.agent.authz), and the values that would reach
libvirt are checked (ferry.agent.vm_checks). Connections are bounded per client address and each
request must arrive within a read timeout (ferry.agent.conn_limits).
"""
from __future__ import annotations

import ipaddress
import json
import logging
import socket
import ssl
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ferry.agent import authz
from ferry.agent.conn_limits import DEFAULT_MAX_PER_CLIENT, DEFAULT_READ_TIMEOUT, ClientSlots, Deadlines
from ferry.agent.dispatch import AccessControl
from ferry.common.errors import InvalidInput
from ferry.common.jsonrpc import ERROR_CODES, handle_request

log = logging.getLogger("ferry.agent.server")
MAX_BODY = 16 * 1024 * 1024
HANDSHAKE_TIMEOUT = 10.0
FORBIDDEN = ERROR_CODES["forbidden"]


def check_dev_address(address: str) -> str:
    """--dev serves plain HTTP with no authentication: loopback addresses only."""
    host = address.strip("[]")
    if host == "localhost":
        return address
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise InvalidInput("--address", f"--dev serves plain HTTP without authentication, so only on a "
                                        f"loopback address (127.0.0.0/8, ::1); got {address!r}. Enroll the "
                                        "host (`ferry host enroll`) and run without --dev")
    return address


class AgentHttpServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that does the TLS handshake (when `tls` is set) in the request thread,
    with at most `slots.limit` connections per client address."""

    daemon_threads = True
    tls: ssl.SSLContext | None = None
    slots: ClientSlots
    deadlines: Deadlines

    def process_request(self, request, client_address) -> None:  # noqa: ANN001 - in the accept thread
        if not self.slots.try_acquire(client_address[0]):
            log.warning("refused %s: already %d connections from it (the limit)", client_address[0],
                        self.slots.limit)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release(client_address[0])
            raise

    def process_request_thread(self, request, client_address) -> None:  # noqa: ANN001
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release(client_address[0])

    def server_close(self) -> None:
        self.deadlines.stop()
        super().server_close()

    def finish_request(self, request, client_address) -> None:  # noqa: ANN001
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(HANDSHAKE_TIMEOUT)
        raw = request.dup()  # outlives a failed handshake, so the client gets to read our refusal
        self.deadlines.arm(request)  # the whole handshake, not only each read of it
        try:
            try:
                wrapped = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                log.warning("refused %s: TLS handshake failed: %s", client_address[0], exc)
                _refuse(raw, exc)
                return
        finally:
            self.deadlines.disarm(request)
            raw.close()
        try:
            wrapped.settimeout(None)
            peer = wrapped.getpeercert() or {}
            log.debug("TLS client %s: %s", client_address[0], dict(x[0] for x in peer.get("subject", ())))
            super().finish_request(wrapped, client_address)
        finally:
            try:
                wrapped.close()
            except OSError:
                pass


def _refuse(raw, exc: BaseException) -> None:  # noqa: ANN001
    """After a failed handshake: answer a plain-HTTP client in plain HTTP, then close gently
    (shut our side, drain the client's bytes) so the TLS alert is read, not lost to a reset."""
    try:
        if getattr(exc, "reason", None) == "HTTP_REQUEST":
            body = json.dumps({"error": "this agent speaks HTTPS only (mutual TLS with a certificate "
                                        "from the engine CA); plain HTTP is its --dev mode"}).encode()
            raw.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                        b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        raw.shutdown(socket.SHUT_WR)
        raw.settimeout(1.0)
        while raw.recv(65536):
            pass
    except OSError:
        pass


def make_server(address: str, port: int, methods: dict[str, Callable[[dict], Any]],
                tls: ssl.SSLContext | None = None, *, access: AccessControl | None = None,
                read_timeout: float = DEFAULT_READ_TIMEOUT,
                max_per_client: int = DEFAULT_MAX_PER_CLIENT) -> ThreadingHTTPServer:
    """The agent's server. `access` guards every verb (default: roles enforced, no VM running
    here known; the agent's runner passes its own); without `tls` there is no caller to check."""
    access = access or AccessControl()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = read_timeout  # per recv; the whole request is bounded by the server's deadlines

        def handle_one_request(self) -> None:
            self.server.deadlines.arm(self.connection)  # request line, headers and body
            try:
                super().handle_one_request()
            finally:
                self.server.deadlines.disarm(self.connection)

        def _caller(self) -> authz.Caller | None:
            if not isinstance(self.connection, ssl.SSLSocket):
                return None  # --dev: no TLS, no authentication
            return authz.caller_from_peercert(self.connection.getpeercert())

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("%s %s", self.address_string(), fmt % args)

        def _send(self, status: int, payload: dict | None) -> None:
            body = json.dumps(payload).encode() if payload is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.rstrip("/") != "/jsonrpc":
                self._send(404, {"error": f"no such endpoint {self.path}; POST JSON-RPC to /jsonrpc"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self._send(400, {"error": "Content-Length: must be a non-negative integer"})
                return
            if length > MAX_BODY:
                self._send(413, {"error": "request too large"})
                return
            body = self.rfile.read(length)
            if len(body) < length:
                self.close_connection = True
                return  # the client went away, or its request was cut off by the read timeout
            self.server.deadlines.disarm(self.connection)  # the verb may take its time (long polls)
            caller = self._caller()
            response = handle_request(body, access.methods_for(methods, caller),
                                      on_internal_error=lambda m, e: log.exception("%s failed", m, exc_info=e))
            if isinstance(response, dict) and (response.get("error") or {}).get("code") == FORBIDDEN:
                log.warning("refused %s: %s", self.address_string(), response["error"]["message"])
            if response is None:
                self._send(204, None)
            else:
                self._send(200, response)

        def do_GET(self) -> None:  # noqa: N802
            self._send(405, {"error": "POST JSON-RPC 2.0 requests to /jsonrpc"})

    server = AgentHttpServer((address, port), Handler)
    server.tls = tls
    server.slots = ClientSlots(max_per_client)
    server.deadlines = Deadlines(read_timeout)
    return server

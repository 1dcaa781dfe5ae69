"""JSON-RPC 2.0 over HTTP POST /jsonrpc (stdlib ThreadingHTTPServer: one thread per request).

Dev mode only speaks plain HTTP on the address it is given (loopback in the lab); TLS arrives
with the security work.
"""
from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from ferry.common.jsonrpc import handle_request

log = logging.getLogger("ferry.agent.server")
MAX_BODY = 16 * 1024 * 1024


def make_server(address: str, port: int, methods: dict[str, Callable[[dict], Any]]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

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
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._send(413, {"error": "request too large"})
                return
            body = self.rfile.read(length)
            response = handle_request(body, methods, on_internal_error=lambda m, e: log.exception(
                "%s failed", m, exc_info=e))
            if response is None:
                self._send(204, None)
            else:
                self._send(200, response)

        def do_GET(self) -> None:  # noqa: N802
            self._send(405, {"error": "POST JSON-RPC 2.0 requests to /jsonrpc"})

    server = ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    return server

"""How a simulated migration reaches its destination host (scale tests only: see ferry.sim).

Real libvirt daemons talk to each other for a peer-to-peer migration (prepare on the
destination, then perform, then finish or cancel). Simulated hosts live in several processes,
so the same three steps go either to a SimConnection in this process or, over a unix socket in
the simulation's run directory, to the process that serves the destination's address. One JSON
line each way; an unknown address is a ConnectionError, as an unreachable libvirtd would be.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import socketserver
import threading
from typing import Any

from ferry.sim.precopy import SimVm

log = logging.getLogger("ferry.sim.wire")
TIMEOUT_S = 10.0


def socket_path(run_dir: str, process: int) -> str:
    return os.path.join(run_dir, f"proc-{process}.sock")


class Router:
    """Address -> a local SimConnection, or the unix socket of the process serving it."""

    def __init__(self, local: dict[str, Any] | None = None, remote: dict[str, str] | None = None):
        self.local = local if local is not None else {}
        self.remote = remote if remote is not None else {}

    def prepare(self, address: str, vm: SimVm, *, persist: bool) -> None:
        self._send(address, {"op": "prepare", "vm": vm.to_wire(), "persist": persist})

    def finish(self, address: str, uuid: str) -> None:
        self._send(address, {"op": "finish", "uuid": uuid})

    def abort(self, address: str, uuid: str) -> None:
        try:
            self._send(address, {"op": "abort", "uuid": uuid})
        except (ConnectionError, ValueError) as exc:
            log.warning("dropping the incoming %s on %s: %s", uuid, address, exc)

    def _send(self, address: str, message: dict) -> None:
        conn = self.local.get(address)
        if conn is not None:
            apply(conn, message)
            return
        path = self.remote.get(address)
        if path is None:
            raise ConnectionError(f"no simulated host at {address}")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(TIMEOUT_S)
                s.connect(path)
                s.sendall(json.dumps({**message, "address": address}).encode() + b"\n")
                answer = json.loads(s.makefile("rb").readline() or b"{}")
        except (OSError, ValueError) as exc:
            raise ConnectionError(f"{address}: {exc}") from None
        if answer.get("error"):
            raise ValueError(answer["error"])


def apply(conn: Any, message: dict) -> None:
    """One step on the destination's SimConnection."""
    op = message.get("op")
    if op == "prepare":
        conn.prepare_incoming(SimVm.from_wire(message["vm"]), persist=bool(message.get("persist")))
    elif op == "finish":
        conn.finish_incoming(str(message["uuid"]))
    elif op == "abort":
        conn.abort_incoming(str(message["uuid"]))
    else:
        raise ValueError(f"unknown simulation step {op!r}")


class WireServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """The unix socket where other processes reach this process's hosts."""

    daemon_threads = True

    def __init__(self, path: str, local: dict[str, Any]):
        if os.path.exists(path):
            os.unlink(path)
        self.local = local
        super().__init__(path, _Handler)
        os.chmod(path, 0o600)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="sim-wire", daemon=True)
        thread.start()
        return thread


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        try:
            message = json.loads(self.rfile.readline())
            conn = self.server.local.get(message.get("address"))
            if conn is None:
                raise ValueError(f"no simulated host at {message.get('address')} in this process")
            apply(conn, message)
            answer: dict = {"ok": True}
        except (ValueError, KeyError, TypeError) as exc:
            answer = {"error": str(exc)}
        self.wfile.write(json.dumps(answer).encode() + b"\n")

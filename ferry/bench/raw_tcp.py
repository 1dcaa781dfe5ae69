"""The raw-TCP baseline: iperf3 between two lab host addresses with N parallel streams.

The server binds the destination host's address and the client the source's, each inside its
lab host's network namespace, so the bytes take the same path between the same two addresses
a migration does. Debian 12's
iperf3 (3.12) drives all streams from one thread; that is stated in the report beside the
numbers. Command building and parsing are pure; `measure` runs the two processes.
"""
from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass

from ferry.common.errors import OperationFailed

MIB = 1024 * 1024
BASE_PORT = 5200


def port_for_lab(lab_id: int) -> int:
    """One iperf3 port per lab id, so benchmarks of different labs never meet."""
    return BASE_PORT + lab_id


def server_command(address: str, port: int) -> list[str]:
    return ["iperf3", "-s", "-1", "-B", address, "-p", str(port)]


def client_command(source: str, destination: str, port: int, streams: int, seconds: float) -> list[str]:
    if streams < 1:
        raise ValueError(f"streams must be >= 1, got {streams}")
    return ["iperf3", "-c", destination, "-B", source, "-p", str(port), "-P", str(streams),
            "-t", f"{seconds:g}", "--json"]


@dataclass(frozen=True)
class RawTcp:
    streams: int
    seconds: float
    received_mib_s: float
    sender_cpu_pct: float | None
    receiver_cpu_pct: float | None

    def to_dict(self) -> dict:
        return {"streams": self.streams, "seconds": self.seconds,
                "received_mib_s": round(self.received_mib_s, 1),
                "sender_cpu_pct": self.sender_cpu_pct, "receiver_cpu_pct": self.receiver_cpu_pct}


def parse_client_json(text: str, streams: int, seconds: float) -> RawTcp:
    """The client's --json report -> received throughput (MiB/s) and CPU use of both ends."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OperationFailed(f"iperf3 gave no JSON report: {exc}: {text[:200]!r}") from None
    if data.get("error"):
        raise OperationFailed(f"iperf3 failed: {data['error']}")
    try:
        bps = float(data["end"]["sum_received"]["bits_per_second"])
    except (KeyError, TypeError, ValueError):
        raise OperationFailed("iperf3's report has no end.sum_received.bits_per_second") from None
    cpu = data["end"].get("cpu_utilization_percent") or {}
    return RawTcp(streams, seconds, bps / 8 / MIB, cpu.get("host_total"), cpu.get("remote_total"))


def measure(source: str, destination: str, streams: int, *, seconds: float = 3.0,
            port: int = BASE_PORT, server_prefix: list[str] | None = None,
            client_prefix: list[str] | None = None) -> RawTcp:
    """One iperf3 run from `source` to `destination`. Each end runs behind its prefix, e.g.
    `nsenter --net=...` into the lab host that holds the address."""
    server = None
    try:
        deadline = time.monotonic() + 10
        while True:
            if server is None or server.poll() is not None:
                server = subprocess.Popen([*(server_prefix or []), *server_command(destination, port)],
                                          stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
                time.sleep(0.3)  # let it listen
            client = subprocess.run([*(client_prefix or []),
                                     *client_command(source, destination, port, streams, seconds)],
                                    capture_output=True, text=True, timeout=seconds + 30)
            refused = "unable to connect" in client.stdout or "unable to connect" in client.stderr
            if not refused or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        if client.returncode != 0 and not client.stdout.strip().startswith("{"):
            err = (client.stdout or client.stderr).strip()[-300:]
            raise OperationFailed(f"iperf3 {source} -> {destination} x{streams} failed: {err}")
        return parse_client_json(client.stdout, streams, seconds)
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            try:
                server.wait(5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

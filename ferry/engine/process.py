"""An engine process in the background on loopback, started and waited for.

The demo, the benchmark and the end-to-end tests each run their own engine (own database, own
log, own port) and must not go on until it answers; this is the one place that knows how.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ferry.common.errors import OperationFailed
from ferry.common.private_files import private_file

START_TIMEOUT_S = 60.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def healthy(url: str, timeout: float = 2.0) -> bool:
    """Whether the engine at `url` answers GET /api/health (the one route without a token)."""
    try:
        return httpx.get(f"{url}/api/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def engine_images_dirs(images_dir: Path, environ) -> str:
    """FERRY_ENGINE_IMAGES_DIRS for an engine that must also accept `images_dir`: what the
    environment already allows (or the engine's defaults), then that directory."""
    from ferry.engine.vm_validation import DEFAULT_IMAGES_DIRS

    current = [p for p in environ.get("FERRY_ENGINE_IMAGES_DIRS", "").split(":") if p] or list(DEFAULT_IMAGES_DIRS)
    return ":".join(current + ([str(images_dir)] if str(images_dir) not in current else []))


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-1500:]
    except OSError:
        return f"(no log at {log})"


def start_engine(database_url: str, log: Path, *, port: int, host: str = "127.0.0.1",
                 monitor_interval: float = 2.0, timeout: float = START_TIMEOUT_S,
                 engine_id: str | None = None, images_dir: Path | None = None) -> subprocess.Popen:
    """Start `ferry engine run` in its own session (it may outlive the caller) with output
    appended to `log`; return it once it answers. If it exits or stays silent for `timeout`
    seconds, it is stopped and OperationFailed says why, with the end of its log.

    `images_dir` is a lab's kernel directory, added to the engine's image allowlist: a lab under
    a FERRY_LAB_ROOT other than the default keeps its kernels where the default list can't see."""
    url = f"http://{host}:{port}"
    env = dict(os.environ)
    if images_dir is not None:
        env["FERRY_ENGINE_IMAGES_DIRS"] = engine_images_dirs(images_dir, os.environ)
    with open(private_file(log), "ab") as out:  # 0600: the engine's log is for its owner
        proc = subprocess.Popen(
            [sys.executable, "-m", "ferry", "engine", "run", "--host", host, "--port", str(port),
             "--database-url", database_url, "--monitor-interval", str(monitor_interval)]
            + (["--engine-id", engine_id] if engine_id else []),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise OperationFailed(f"the engine exited at start (status {proc.returncode}); "
                                  f"end of {log}:\n{_tail(log)}")
        if healthy(url, timeout=1):
            return proc
        if time.monotonic() > deadline:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise OperationFailed(f"the engine did not answer at {url} within {timeout:.0f} s; "
                                  f"end of {log}:\n{_tail(log)}")
        time.sleep(0.2)


def stop_engine(proc: subprocess.Popen, timeout: float = 20.0) -> int:
    """SIGTERM, as a service manager stops it (the engine takes no new action from then on and
    exits once open requests are done); SIGKILL if it is still there after `timeout`."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode

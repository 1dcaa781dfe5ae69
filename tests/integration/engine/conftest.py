"""A real engine for the API and CLI tests: the FastAPI app on a SQLite file, either behind
FastAPI's TestClient or served by uvicorn on a loopback port (for the CLI, which speaks HTTP).
Both carry an admin API token (the API refuses requests without one)."""
from __future__ import annotations

import socket
import threading
import time
import warnings

import pytest

from ferry.engine.api import create_app
from ferry.engine.services.tokens import issue_token

KERNEL = "/var/lib/ferry/images/vmlinuz"


@pytest.fixture
def api(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette: "use httpx2" deprecation notice
        from fastapi.testclient import TestClient
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    with TestClient(create_app(url), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {issue_token(url, 'admin', 'tests')[0]}"
        yield client


@pytest.fixture
def engine_url(tmp_path, monkeypatch):
    """An engine served by uvicorn on 127.0.0.1 (a free port), for the length of one test;
    FERRY_ENGINE_URL points at it."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(f"sqlite:///{tmp_path / 'engine.db'}")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the engine did not start")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("FERRY_ENGINE_URL", url)
    monkeypatch.setenv("FERRY_ENGINE_TOKEN", issue_token(f"sqlite:///{tmp_path / 'engine.db'}", "admin", "tests")[0])
    yield url
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()

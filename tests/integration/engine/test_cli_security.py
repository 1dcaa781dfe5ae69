"""`ferry token|pki|host enroll` and the CLI's engine settings (environment or config file),
against a real engine served over HTTP on loopback."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ferry.cli.main import cli
from ferry.client.config import parse_config, resolve_engine
from ferry.common.errors import InvalidInput


def run(*args: str, code: int = 0):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


@pytest.fixture
def db_url(tmp_path, monkeypatch):
    """The engine_url fixture's database, for the token commands (they work on the database)."""
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    monkeypatch.setenv("FERRY_DATABASE_URL", url)
    return url


def test_token_lifecycle_create_use_list_revoke(engine_url, db_url, monkeypatch):
    created = run("token", "create", "--role", "readonly", "--name", "viewer")
    token = created.stdout.strip()
    assert token.startswith("ferry_") and "shown only now" in created.stderr
    monkeypatch.setenv("FERRY_ENGINE_TOKEN", token)
    assert run("cluster", "list", "--json").stdout.strip() == "[]"
    refused = run("cluster", "add", "c1", code=1)
    assert "token 'viewer' is readonly: POST /api/clusters needs an admin token" in refused.output
    listed = json.loads(run("token", "list", "--json").stdout)
    viewer = next(t for t in listed if t["name"] == "viewer")
    assert viewer["role"] == "readonly" and token not in json.dumps(listed)
    assert "viewer" in run("token", "list").stdout
    run("token", "revoke", "viewer")
    refused = run("cluster", "list", code=1)
    assert "token 'viewer' was revoked" in refused.output and "check FERRY_ENGINE_TOKEN" in refused.output


def test_wrong_and_missing_token_are_refused_with_a_clear_error(engine_url, monkeypatch):
    monkeypatch.setenv("FERRY_ENGINE_TOKEN", "ferry_" + "x" * 43)
    assert "invalid token: not a token of this engine" in run("cluster", "list", code=1).output
    monkeypatch.delenv("FERRY_ENGINE_TOKEN")
    monkeypatch.setenv("FERRY_CONFIG", "/nonexistent/config.toml")
    out = run("cluster", "list", code=1).output
    assert "authentication required" in out and "config.toml" in out


def test_bad_role_and_duplicate_name(db_url):
    assert "'root' is not one of" in run("token", "create", "--role", "root", code=2).output
    run("token", "create", "--role", "admin", "--name", "ci")
    assert "a token named 'ci' already exists" in run("token", "create", "--role", "admin", "--name", "ci",
                                                      code=2).output
    assert "token 'ghost' not found" in run("token", "revoke", "ghost", code=2).output


def test_config_file_supplies_url_and_token(engine_url, tmp_path, monkeypatch):
    token = __import__("os").environ["FERRY_ENGINE_TOKEN"]
    config = tmp_path / "config.toml"
    config.write_text(f'[engine]\nurl = "{engine_url}"\ntoken = "{token}"\n')
    monkeypatch.delenv("FERRY_ENGINE_URL")
    monkeypatch.delenv("FERRY_ENGINE_TOKEN")
    monkeypatch.setenv("FERRY_CONFIG", str(config))
    run("cluster", "add", "c1")
    assert [c["name"] for c in json.loads(run("cluster", "list", "--json").stdout)] == ["c1"]
    config.write_text('[engine]\nurl = "x"\ntokn = "y"\n')
    assert f"error: {config}: engine.tokn: unknown key" in run("cluster", "list", code=2).output


def test_environment_wins_over_the_config_file(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[engine]\nurl = "http://file:1"\ntoken = "from-file"\n')
    env = {"FERRY_CONFIG": str(config), "FERRY_ENGINE_TOKEN": "from-env"}
    settings = resolve_engine(env=env)
    assert (settings.url, settings.token, settings.source) == ("http://file:1", "from-env", str(config))
    assert resolve_engine(env={"FERRY_CONFIG": str(tmp_path / "none.toml")}).url is None


@pytest.mark.parametrize("text, field", [
    ("engine = 1", "c: engine"),
    ("[engine]\nurl = 5", "c: engine.url"),
    ("[other]\nx = 1", "c: other"),
    ("[engine\n", "c"),
])
def test_bad_config_names_the_key(text, field):
    with pytest.raises(InvalidInput) as err:
        parse_config(text, "c")
    assert err.value.field == field


def test_pki_init_and_enroll_a_host_known_to_the_engine(engine_url, tmp_path, monkeypatch):
    monkeypatch.setenv("FERRY_PKI_DIR", str(tmp_path / "pki"))
    assert "engine CA created" in run("pki", "init").stdout
    assert "already exists" in run("pki", "init", code=2).output
    run("cluster", "add", "c1")
    run("host", "add", "h1", "--cluster", "c1", "--address", "127.0.0.2")
    out = run("host", "enroll", "h1").stdout
    assert "enrolled h1 (127.0.0.2): 14 files" in out
    assert (tmp_path / "pki/hosts/h1/etc/pki/libvirt/private/serverkey.pem").exists()
    shown = json.loads(run("pki", "show", "--json").stdout)
    assert shown["bundles"] == ["h1"] and shown["ca"]["subject"] == "O=Ferry,CN=Ferry engine CA"
    assert "host 'ghost' not found" in run("host", "enroll", "ghost", code=2).output
    assert "address: 'no such' is not an IP" in run("host", "enroll", "h9", "--address", "no such", code=2).output


def test_engine_over_https_with_a_certificate_from_the_engine_ca(tmp_path, monkeypatch):
    import socket
    import threading
    import time

    import uvicorn

    from ferry.engine.api import create_app
    from ferry.engine.db import upgrade_database
    from ferry.engine.services.tokens import issue_token
    from ferry.pki.tls import engine_server_tls

    monkeypatch.setenv("FERRY_PKI_DIR", str(tmp_path / "pki"))
    assert "run `ferry pki engine-cert" in run("engine", "run", "--tls", "--port", "1", code=1).output
    run("pki", "init")
    assert "engine HTTPS certificate for 127.0.0.1" in run("pki", "engine-cert", "--address", "127.0.0.1").stdout
    db = f"sqlite:///{tmp_path / 'engine.db'}"
    upgrade_database(db)
    token = issue_token(db, "readonly")[0]
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(db, upgrade=False), log_level="warning",
                                           timeout_graceful_shutdown=1, **engine_server_tls()))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        monkeypatch.setenv("FERRY_ENGINE_URL", f"https://127.0.0.1:{sock.getsockname()[1]}")
        monkeypatch.setenv("FERRY_ENGINE_TOKEN", token)
        monkeypatch.setenv("FERRY_CONFIG", str(tmp_path / "none.toml"))
        assert "certificate verify failed" in run("cluster", "list", code=1).output.lower()  # not the system's CA
        monkeypatch.setenv("FERRY_ENGINE_CA", str(tmp_path / "pki" / "ca.pem"))
        assert run("cluster", "list", "--json").stdout.strip() == "[]"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()

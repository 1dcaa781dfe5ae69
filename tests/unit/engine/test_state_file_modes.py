"""The engine's state files are its owner's only: database, admin token and log 0600, their
directories 0700 (issue 12 item 5)."""
from __future__ import annotations

import os
import stat

import pytest

from ferry.common.errors import OperationFailed
from ferry.common.private_files import private_dir, private_file


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def permissive_umask():
    old = os.umask(0o022)   # what a root shell usually has: files 0644 unless Ferry says otherwise
    yield
    os.umask(old)


def test_private_file_creates_0600_and_tightens_an_existing_file(tmp_path):
    new = private_file(tmp_path / "new")
    assert mode(new) == 0o600 and new.read_bytes() == b""
    old = tmp_path / "old"
    old.write_text("kept")
    os.chmod(old, 0o644)
    private_file(old)
    assert mode(old) == 0o600 and old.read_text() == "kept"


def test_private_dir_creates_0700_and_tightens_only_when_asked(tmp_path):
    assert mode(private_dir(tmp_path / "a" / "b")) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    private_dir(shared, tighten=False)
    assert mode(shared) == 0o755
    private_dir(shared)
    assert mode(shared) == 0o700


def test_the_sqlite_database_is_0600_in_a_0700_state_dir(tmp_path, monkeypatch):
    from ferry.engine.db.database import Database

    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    monkeypatch.setenv("FERRY_STATE_DIR", str(state))
    monkeypatch.delenv("FERRY_DATABASE_URL", raising=False)
    db = Database()
    db.upgrade()
    db.dispose()
    assert mode(state / "engine.db") == 0o600
    assert mode(state) == 0o700
    assert not [p for p in state.iterdir() if mode(p) & 0o077]   # journals too


def test_a_database_elsewhere_is_0600_without_touching_a_shared_directory(tmp_path):
    from ferry.engine.db.database import Database

    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)   # like /tmp
    db = Database(f"sqlite:///{shared / 'mine.db'}")
    db.upgrade()
    db.dispose()
    assert mode(shared / "mine.db") == 0o600 and mode(shared) == 0o1777
    nested = tmp_path / "new" / "dir"
    from ferry.engine.db.database import make_engine

    make_engine(f"sqlite:///{nested / 'x.db'}").dispose()
    assert mode(nested) == 0o700 and mode(nested / "x.db") == 0o600


def test_the_engine_log_is_0600(tmp_path, monkeypatch):
    import ferry.engine.process as process

    class Exited:
        pid, returncode = 1, 1

        def poll(self):
            return 1

    monkeypatch.setattr(process.subprocess, "Popen", lambda *a, **kw: Exited())
    log = tmp_path / "engine.log"
    log.write_text("old run\n")
    os.chmod(log, 0o644)
    with pytest.raises(OperationFailed):
        process.start_engine("sqlite:///x.db", log, port=1, timeout=1)
    assert mode(log) == 0o600 and log.read_text().startswith("old run")


def test_the_demo_token_is_0600_even_over_an_old_readable_file(tmp_path):
    from ferry.cli.demo import DemoPaths, _token
    from ferry.engine.db.database import Database

    paths = DemoPaths(tmp_path / "demo")
    private_dir(paths.dir)
    db = Database(paths.url)
    db.upgrade()
    db.dispose()
    paths.token.write_text("ferry_stale\n")
    os.chmod(paths.token, 0o644)
    token = _token(paths, "http://127.0.0.1:9")   # nothing listens: the stale token is replaced
    assert token.startswith("ferry_") and token != "ferry_stale"
    assert mode(paths.token) == 0o600 and mode(paths.dir) == 0o700

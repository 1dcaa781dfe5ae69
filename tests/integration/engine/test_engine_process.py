"""ferry.engine.process: a real engine process started, waited for, and a failing one reported."""
import pytest

from ferry.common.errors import OperationFailed
from ferry.engine.db import upgrade_database
from ferry.engine.process import free_port, healthy, start_engine


def test_started_engine_answers_and_stops(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'engine.db'}"
    upgrade_database(db_url)
    port = free_port()
    proc = start_engine(db_url, tmp_path / "engine.log", port=port)
    try:
        assert proc.poll() is None
        assert healthy(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert not healthy(f"http://127.0.0.1:{port}", timeout=0.5)


def test_engine_that_exits_at_start_is_reported_with_its_log(tmp_path):
    log = tmp_path / "engine.log"
    with pytest.raises(OperationFailed) as err:
        start_engine("nosuchdb://nowhere", log, port=free_port(), timeout=30)
    message = str(err.value)
    assert "exited at start" in message and str(log) in message
    assert "nosuchdb" in log.read_text()

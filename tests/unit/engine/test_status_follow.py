"""The orchestrator's pacing of VM.getMigrationStatus (pure): long poll with agents that report a
status version, plain polling with those that do not, never a spin."""
from ferry.engine.status_follow import (
    ANSWERED_AT_ONCE_S,
    LONG_POLL_S,
    pause_before_next,
    status_request,
)
from ferry.protocol.status import MigrationStatus


def status_version(raw: dict):
    return MigrationStatus.from_wire(raw).version


def test_request_names_the_version_seen_and_a_timeout_within_one_second():
    assert status_request("u", None) == {"vmID": "u", "waitForChange": {"version": 0, "timeout": LONG_POLL_S}}
    assert status_request("u", 7)["waitForChange"]["version"] == 7
    assert LONG_POLL_S <= 1.0          # progress at >= 1 Hz even when nothing changes


def test_version_of_a_status():
    assert status_version({"version": 4}) == 4
    assert status_version({"state": "running"}) is None
    assert status_version({"version": True}) is None
    assert status_version({"version": "4"}) is None


def test_agent_without_the_extension_is_polled_at_the_interval():
    assert pause_before_next(MigrationStatus.from_wire({"state": "running"}), 0, 0.001, 0.5) == 0.5
    assert pause_before_next(MigrationStatus.from_wire({"state": "running"}), 0, 0.9, 0.5) == 0.5


def test_a_change_is_followed_by_the_next_long_poll_at_once():
    assert pause_before_next(MigrationStatus.from_wire({"version": 5}), 4, 0.001, 0.5) == 0.0
    assert pause_before_next(MigrationStatus.from_wire({"version": 5}), 0, 0.3, 0.5) == 0.0


def test_an_unchanged_answer_after_waiting_asks_again_at_once():
    assert pause_before_next(MigrationStatus.from_wire({"version": 5}), 5, LONG_POLL_S, 0.5) == 0.0


def test_an_unchanged_answer_that_did_not_wait_does_not_spin():
    assert pause_before_next(MigrationStatus.from_wire({"version": 5}), 5, ANSWERED_AT_ONCE_S / 2, 0.5) == 0.5

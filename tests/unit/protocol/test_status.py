"""VM.getMigrationStatus's wire form: key for key what Ferry's agents have always sent (older
engines read it), read back leniently from any agent."""
import json

from ferry.protocol.status import FINAL_STATES, JobState, MigrationStatus

# An outgoing job's answer as agents before ferry.protocol built it by hand (same keys, same
# order, same values): the compatibility the typed status must keep.
OLD_OUTGOING = {
    "vmID": "u1", "version": 7, "state": "succeeded", "direction": "outgoing",
    "message": "Migration succeeded", "error": None, "progress": 100, "dst": "h2:54321",
    "startedAt": 100.0, "endedAt": 104.0, "migrationStartedAt": 100.5, "migrationReturnedAt": 103.9,
    "iteration": 4, "dataTotal": 4096, "dataProcessed": 4000, "dataRemaining": 0, "memoryTotal": 4096,
    "memoryProcessed": 3900, "memoryRemaining": 0, "bandwidth": 1000, "dirtyRate": 10,
    "timeElapsed": 3400, "maxDowntime": 300, "postcopy": False, "downtime": 40, "totalTime": 3400,
    "bytesTransferred": 4000, "flags": ["VIR_MIGRATE_LIVE", "VIR_MIGRATE_PARALLEL"],
    "typedParams": {"parallel.connections": 2}, "destinationUri": "qemu+tls://h2/system",
    "notes": [], "warnings": ["w"], "scheduleActions": [{"n": None, "action": "setDowntime(300)", "at": 100.6,
                                                         "ok": True}],
    "unrecognizedParams": ["zerocopy"],
}


def outgoing() -> MigrationStatus:
    return MigrationStatus(
        JobState.SUCCEEDED, vm_id="u1", version=7, direction="outgoing", message="Migration succeeded",
        progress=100, dst="h2:54321", started_at=100.0, ended_at=104.0, migration_started_at=100.5,
        migration_returned_at=103.9, iteration=4, data_total=4096, data_processed=4000, data_remaining=0,
        memory_total=4096, memory_processed=3900, memory_remaining=0, bandwidth_bps=1000, dirty_rate_bps=10,
        time_elapsed_ms=3400, max_downtime_ms=300, downtime_ms=40, total_time_ms=3400, bytes_transferred=4000,
        flags=("VIR_MIGRATE_LIVE", "VIR_MIGRATE_PARALLEL"), typed_params={"parallel.connections": 2},
        destination_uri="qemu+tls://h2/system", warnings=("w",),
        schedule_actions=({"n": None, "action": "setDowntime(300)", "at": 100.6, "ok": True},),
        unrecognized_params=("zerocopy",))


def test_outgoing_wire_is_byte_for_byte_the_old_agents_answer():
    assert json.dumps(outgoing().to_wire()) == json.dumps(OLD_OUTGOING)


def test_idle_and_incoming_keep_their_short_shapes():
    assert json.dumps(MigrationStatus.idle("u1").to_wire()) == json.dumps(
        {"vmID": "u1", "state": "idle", "direction": None, "progress": 0, "message": "no migration"})
    incoming = MigrationStatus(JobState.RUNNING, vm_id="u1", direction="incoming", started_at=5.0,
                               message="incoming migration running")
    assert json.dumps(incoming.to_wire()) == json.dumps(
        {"vmID": "u1", "state": "running", "direction": "incoming", "progress": 0, "startedAt": 5.0,
         "endedAt": None, "message": "incoming migration running"})


def test_the_wire_reads_back_as_the_same_status_and_says_what_was_reported():
    back = MigrationStatus.from_wire(json.loads(json.dumps(OLD_OUTGOING)))
    assert back == outgoing()
    optional = {"dirty_sync_missed_zero_copy", "postcopy_downtime_ms",
                    "auto_converge_throttle_max"}    # sent only once the agent knows it
    assert back.reported == frozenset(f for f in back.__dataclass_fields__ if f != "reported") - optional
    assert MigrationStatus.from_wire({"state": "running", "iteration": 2}).reported == {"state", "iteration"}


def test_an_answer_of_the_wrong_shape_reads_as_unknown_never_raises():
    odd = MigrationStatus.from_wire({"state": "teleporting", "version": 4.0, "progress": "half",
                                     "flags": "X", "typedParams": [1], "postcopy": "yes", "error": 3})
    assert odd.state is JobState.UNKNOWN and not odd.state.final and not odd.state.active
    assert (odd.version, odd.progress, odd.flags, odd.typed_params, odd.postcopy, odd.error) == (
        None, 0, (), {}, False, None)
    assert MigrationStatus.from_wire(None).state is JobState.UNKNOWN
    assert MigrationStatus.from_wire({"version": True}).version is None


def test_final_and_active_states():
    assert FINAL_STATES == {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.ABORTED}
    assert [s for s in JobState if s.active] == [JobState.PENDING, JobState.WAITING, JobState.RUNNING]
    assert not JobState.IDLE.final and not JobState.IDLE.active


def test_missed_zero_copy_syncs_are_sent_only_once_known_and_read_back():
    base = outgoing()
    assert "dirtySyncMissedZeroCopy" not in base.to_wire()
    known = MigrationStatus(**{**{k: getattr(base, k) for k in base.__dataclass_fields__ if k != "reported"},
                               "dirty_sync_missed_zero_copy": 0})
    wire = known.to_wire()
    assert wire["dirtySyncMissedZeroCopy"] == 0
    back = MigrationStatus.from_wire(wire)
    assert back.dirty_sync_missed_zero_copy == 0 and "dirty_sync_missed_zero_copy" in back.reported
    assert MigrationStatus.from_wire({**wire, "dirtySyncMissedZeroCopy": "7"}).dirty_sync_missed_zero_copy is None

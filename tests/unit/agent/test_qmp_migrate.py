"""Reading QEMU's dirty-sync-missed-zero-copy from a query-migrate answer (pure)."""
from ferry.agent.qmp_migrate import missed_zero_copy, reads_missed_zero_copy


def test_the_count_is_read_from_the_ram_stats():
    assert missed_zero_copy({"return": {"status": "active", "ram": {"dirty-sync-missed-zero-copy": 12}}}) == 12
    assert missed_zero_copy({"return": {"ram": {"dirty-sync-missed-zero-copy": 0}}}) == 0


def test_absent_or_malformed_answers_read_as_unknown():
    for answer in (None, [], {}, {"return": {}}, {"return": {"ram": {}}}, {"return": {"ram": None}},
                   {"return": {"ram": {"dirty-sync-missed-zero-copy": "3"}}},
                   {"return": {"ram": {"dirty-sync-missed-zero-copy": True}}},
                   {"return": {"ram": {"dirty-sync-missed-zero-copy": -1}}},
                   {"error": {"class": "GenericError", "desc": "no migration"}}):
        assert missed_zero_copy(answer) is None, answer


def test_only_zero_copy_migrations_with_a_monitor_ask():
    assert reads_missed_zero_copy(("VIR_MIGRATE_LIVE", "VIR_MIGRATE_ZEROCOPY"), True)
    assert not reads_missed_zero_copy(("VIR_MIGRATE_LIVE", "VIR_MIGRATE_ZEROCOPY"), False)
    assert not reads_missed_zero_copy(("VIR_MIGRATE_LIVE", "VIR_MIGRATE_PARALLEL"), True)


def test_postcopy_downtime_is_read_once_post_copy_is_active_or_done():
    from ferry.agent.qmp_migrate import postcopy_downtime

    assert postcopy_downtime({"return": {"status": "postcopy-active", "downtime": 4}}) == 4
    assert postcopy_downtime({"return": {"status": "completed", "downtime": 0}}) == 0


def test_precopys_expected_downtime_or_a_malformed_answer_is_no_postcopy_downtime():
    from ferry.agent.qmp_migrate import postcopy_downtime

    for answer in (None, {}, {"return": {"status": "active", "expected-downtime": 300}},
                   {"return": {"status": "active", "downtime": 300}},      # not switched over yet
                   {"return": {"status": "postcopy-active"}},
                   {"return": {"status": "postcopy-active", "downtime": "4"}},
                   {"return": {"status": "postcopy-active", "downtime": True}},
                   {"return": {"status": "postcopy-active", "downtime": -1}}):
        assert postcopy_downtime(answer) is None, answer

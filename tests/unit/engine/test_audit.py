from ferry.engine import audit


def test_ovirt_ids_kept():
    assert {t.name: t.code for t in audit.ALL if t.code < 9000} == {
        "VM_MIGRATION_START": 62,
        "VM_MIGRATION_DONE": 63,
        "VM_MIGRATION_ABORT": 64,
        "VM_MIGRATION_FAILED": 65,
        "VM_MIGRATION_TRYING_RERUN": 128,
        "VM_CANCEL_MIGRATION": 161,
        "VM_MIGRATION_NO_VDS_TO_MIGRATE_TO": 166,
        # host maintenance (issue 15): oVirt's AuditLogType ids
        "USER_VDS_MAINTENANCE": 600,
        "USER_VDS_MAINTENANCE_WITHOUT_REASON": 620,
        "VDS_MAINTENANCE": 15,
        "VDS_MAINTENANCE_FAILED": 17,
        "USER_VDS_MAINTENANCE_MIGRATION_FAILED": 602,
        "VM_MIGRATION_FAILED_DURING_MOVE_TO_MAINTENANCE": 140,
        "VM_MIGRATION_FAILED_DURING_MOVE_TO_MAINTENANCE_NO_DESTINATION_VDS": 1111,
        "VDS_ACTIVATE": 16,
    }
    assert len(audit.BY_CODE) == len(audit.ALL)


def test_done_message_has_duration_total_and_downtime():
    text = audit.format_message(
        audit.VM_MIGRATION_DONE, vm="big", source="h1", destination="h2",
        duration=audit.format_duration(12.4), total=audit.format_duration(13.0), downtime="87 ms",
    )
    assert text == ("Migration completed (VM: big, Source: h1, Destination: h2, "
                    "Duration: 12 s, Total: 13 s, Actual downtime: 87 ms).")


def test_reason_is_optional_and_missing_fields_show_question_mark():
    assert audit.format_message(audit.VM_MIGRATION_FAILED, vm="v", source="h1") == "Migration failed (VM: v, Source: h1)."
    assert (audit.format_message(audit.VM_MIGRATION_FAILED, vm="v", reason="boom")
            == "Migration failed due to: boom (VM: v, Source: ?).")


def test_format_duration():
    assert audit.format_duration(0.0871) == "87 ms"
    assert audit.format_duration(2.25) == "2.2 s"
    assert audit.format_duration(42) == "42 s"
    assert audit.format_duration(184) == "3 min 4 s"
    assert audit.format_duration(None) == "?"

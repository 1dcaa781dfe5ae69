"""verify: deciding "memory intact" from the workload's console logs on each host, and which copy to judge."""
import pytest

from ferry.common.errors import Conflict, NotFound
from ferry.lab.verify import Copy, HostLog, analyze, parse_events, running_copy, scan_seen

RUN = "0123456789abcdef"


def start(run=RUN, dirty=32, pages=217600):
    return f"FERRY START run={run} fill_mib=850 dirty_mib_s={dirty} pages={pages} spot=256\n" \
           f"FERRY READY run={run} fill_ms=2400\n"


def hb(seq, writes=None, bad=0, lost=0, run=RUN):
    writes = seq * 8192 if writes is None else writes
    return (f"FERRY HB run={run} seq={seq} ms={seq * 1000} writes={writes} spot_pages={seq * 256} "
            f"bad={bad} lost={lost} scans=0\n")


def scan(bad=0, lost=0, pages=217600, run=RUN):
    return f"FERRY SCAN run={run} scan=1 pages={pages} bad={bad} lost={lost} ms=600\n"


def migrated(src_seqs, dst_before, dst_after, extra_src="", extra_dst="", dst_scan=None):
    """Logs of a guest started on h1 and migrated to h2; returns (logs, offset on h2)."""
    src = "boot noise\n" + start() + "".join(hb(s) for s in src_seqs) + extra_src
    head = "".join(hb(s) for s in dst_before)
    tail = extra_dst + (scan() if dst_scan is None else dst_scan) + "".join(hb(s) for s in dst_after)
    return [HostLog("h1", src), HostLog("h2", head + tail)], len(head.encode())


def checks(report):
    return {c.name: c.ok for c in report.checks}


def test_clean_migration_is_intact():
    logs, off = migrated(range(1, 11), range(11, 15), range(15, 17))
    r = analyze("vm", logs, "h2", off)
    assert r.intact, r.reasons
    assert r.reasons == []
    assert r.last_seq == 16 and r.heartbeats_here == 2 and r.run == RUN
    assert r.scan == {"scan": 1, "pages": 217600, "bad": 0, "lost": 0, "ms": 600}


def test_one_lost_line_at_switchover_is_tolerated_but_a_long_gap_is_not():
    logs, off = migrated(range(1, 10), range(11, 15), range(15, 17))  # seq 10 missing
    assert analyze("vm", logs, "h2", off).intact
    logs, off = migrated(range(1, 6), range(11, 15), range(15, 17))
    r = analyze("vm", logs, "h2", off)
    assert not r.intact and not checks(r)["heartbeat_sequence"]
    assert "between seq 5 and 11" in " ".join(r.reasons)


def test_duplicate_heartbeat_means_the_guest_ran_twice():
    logs, off = migrated(range(1, 11), range(10, 15), range(15, 17))
    r = analyze("vm", logs, "h2", off)
    assert not checks(r)["heartbeat_sequence"]
    assert "seen 2 times" in " ".join(r.reasons)


def test_restarted_workload_is_not_intact():
    logs, off = migrated(range(1, 11), [], range(1, 3), extra_dst=start(run="ffffffffffffffff"))
    r = analyze("vm", logs, "h2", off)
    assert not r.intact and not checks(r)["single_run"]


def test_bad_page_line_or_counters_fail():
    bad_line = f"FERRY BAD run={RUN} page=77 kind=lost expected_gen=5 found_gen=4\n"
    logs, off = migrated(range(1, 11), range(11, 13), range(13, 15), extra_dst=bad_line)
    r = analyze("vm", logs, "h2", off)
    assert not checks(r)["no_bad_pages"] and "page 77 (lost)" in " ".join(r.reasons)
    logs = [HostLog("h1", start() + hb(1) + hb(2, bad=1)), HostLog("h2", scan() + hb(3, bad=1) + hb(4, bad=1))]
    r = analyze("vm", logs, "h2", 0)
    assert not checks(r)["no_bad_pages"] and "bad=1" in " ".join(r.reasons)


def test_full_scan_must_be_clean_complete_and_after_the_request():
    for bad_scan in (scan(bad=3), scan(lost=1), scan(pages=1000)):
        logs, off = migrated(range(1, 5), [], range(5, 7), dst_scan=bad_scan)
        assert not checks(analyze("vm", logs, "h2", off))["full_scan_clean"]
    # A clean scan from before the request does not count.
    logs = [HostLog("h2", start() + scan() + hb(1) + hb(2) + hb(3))]
    offset = len((start() + scan() + hb(1)).encode())
    r = analyze("vm", logs, "h2", offset)
    assert not checks(r)["full_scan_clean"] and "no full scan" in " ".join(r.reasons)


def test_no_heartbeats_after_request_fails():
    logs, off = migrated(range(1, 11), range(11, 13), [])
    r = analyze("vm", logs, "h2", off)
    assert not checks(r)["heartbeats_continue_here"]


def test_kernel_oops_anywhere_fails():
    oops = "[   12.3] BUG: unable to handle page fault for address: 0000000000001234\n"
    logs, off = migrated(range(1, 11), range(11, 13), range(13, 15), extra_dst=oops)
    r = analyze("vm", logs, "h2", off)
    assert not r.intact and not checks(r)["no_kernel_errors"] and "BUG:" in " ".join(r.reasons)
    logs, off = migrated(range(1, 11), range(11, 13), range(13, 15), extra_src="Kernel panic - not syncing\n")
    assert not checks(analyze("vm", logs, "h2", off))["no_kernel_errors"]


def test_workload_failure_line_fails():
    logs, off = migrated(range(1, 3), [], range(3, 5),
                         extra_dst=f"FERRY FAIL run={RUN} reason=cannot-allocate-850-MiB\n")
    r = analyze("vm", logs, "h2", off)
    assert not checks(r)["no_kernel_errors"] and "cannot-allocate" in " ".join(r.reasons)


def test_a_dirtying_guest_must_keep_writing():
    logs = [HostLog("h1", start() + hb(1)), HostLog("h2", scan() + hb(2, writes=500) + hb(3, writes=500))]
    r = analyze("vm", logs, "h2", 0)
    assert not checks(r)["still_dirtying"]
    idle = [HostLog("h1", start(dirty=0) + hb(1, writes=0)),
            HostLog("h2", scan() + hb(2, writes=0) + hb(3, writes=0))]
    r = analyze("vm", idle, "h2", 0)
    assert r.intact and "still_dirtying" not in checks(r)


def test_heartbeats_queued_behind_a_scan_do_not_count_as_stopped_writes():
    """After a long full scan two heartbeats can arrive 46 ms apart with equal counts; that says
    nothing about writes. The verdict needs a second of guest time."""
    def beat(seq, ms, writes):
        return (f"FERRY HB run={RUN} seq={seq} ms={ms} writes={writes} spot_pages=0 bad=0 lost=0 scans=1\n")
    queued = [HostLog("h1", start() + hb(1)), HostLog("h2", scan() + beat(2, 2000, 700) + beat(3, 2046, 700))]
    r = analyze("vm", queued, "h2", 0)
    assert not checks(r)["still_dirtying"] and "span 46 ms" in " ".join(r.reasons)
    assert not scan_seen(queued[1].text, 0)          # verify keeps waiting instead
    later = HostLog("h2", queued[1].text + beat(4, 3046, 9000))
    assert scan_seen(later.text, 0)
    r = analyze("vm", [queued[0], later], "h2", 0)
    assert r.intact, r.reasons
    stopped = HostLog("h2", queued[1].text + beat(4, 3046, 700))
    assert not checks(analyze("vm", [queued[0], stopped], "h2", 0))["still_dirtying"]


def test_no_start_line_fails():
    r = analyze("vm", [HostLog("h2", scan() + hb(1) + hb(2))], "h2", 0)
    assert not checks(r)["workload_started"]


def test_parser_handles_crlf_noise_and_offsets():
    text = "\x1b[2Jgarbage\r\n" + start() + hb(1).replace("\n", "\r\n")
    events = parse_events("h", text)
    assert [e.kind for e in events] == ["START", "READY", "HB"]
    assert events[2].num("seq") == 1
    assert text.encode()[events[0].offset:].startswith(b"FERRY START")


def test_scan_seen_needs_scan_and_heartbeats_after_offset():
    text = start() + hb(1) + scan()
    assert not scan_seen(text, 0)  # one heartbeat only
    assert scan_seen(text + hb(2), 0)
    assert not scan_seen(text + hb(2) + hb(3), len((start() + hb(1) + scan()).encode()))  # scan before offset
    assert not scan_seen(start() + hb(1) + hb(2), 0)  # no scan


# ---- which copy verify judges ----------------------------------------------------------------
def test_running_copy_wins_over_a_paused_incoming_copy_and_a_shut_off_definition():
    copies = [Copy("ferry-h1", "shutoff", 1), Copy("ferry-h2", "paused", 2), Copy("ferry-h3", "running", 1)]
    assert running_copy("vm", copies) == "ferry-h3"
    assert running_copy("vm", list(reversed(copies))) == "ferry-h3"


def test_without_a_running_copy_the_single_paused_one_is_judged_so_verify_says_paused():
    assert running_copy("vm", [Copy("ferry-h1", "shutoff"), Copy("ferry-h2", "paused")]) == "ferry-h2"


def test_two_running_copies_are_an_error_naming_both_hosts():
    with pytest.raises(Conflict) as info:
        running_copy("vm", [Copy("ferry-h1", "running"), Copy("ferry-h2", "running")])
    assert "ferry-h1, ferry-h2" in str(info.value)


def test_no_active_copy_or_several_paused_ones_cannot_be_judged():
    with pytest.raises(NotFound):
        running_copy("vm", [Copy("ferry-h1", "shutoff")])
    with pytest.raises(NotFound):
        running_copy("vm", [])
    with pytest.raises(Conflict) as info:
        running_copy("vm", [Copy("ferry-h1", "paused"), Copy("ferry-h2", "paused")])
    assert "name the host" in str(info.value)

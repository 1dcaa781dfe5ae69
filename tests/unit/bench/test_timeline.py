"""Where a Ferry migration's time goes: phases from the recorded timestamps."""
import pytest

from ferry.bench.timeline import PHASES, breakdown, phase_seconds

T0 = 1_800_000_000.0


def detail(**shift):
    times = {"bench_sent_at": 0.0, "engine_created_at": 0.010, "engine_started_at": 0.015,
             "job_started_at": 0.025, "libvirt_started_at": 0.030, "libvirt_returned_at": 3.530,
             "job_ended_at": 3.531, "engine_finished_at": 3.550, "bench_saw_end_at": 3.560}
    times.update(shift)
    abs_times = {k: T0 + v for k, v in times.items()}
    agent = {k: abs_times.pop(k) for k in ("job_started_at", "libvirt_started_at", "libvirt_returned_at",
                                           "job_ended_at")}
    return {"timeline": abs_times,
            "attempts": [{"agent_timeline": {"job_started_at": 1.0}}, {"agent_timeline": agent}]}


def test_phases_are_consecutive_differences_and_the_control_plane_is_what_lies_outside_libvirt():
    p = phase_seconds(detail(), 2000)
    assert p["engine_accept"] == pytest.approx(0.010, abs=1e-6)
    assert p["to_agent"] == pytest.approx(0.010, abs=1e-6)
    assert p["libvirt"] == pytest.approx(3.5, abs=1e-6)
    assert p["engine_hears"] == pytest.approx(0.019, abs=1e-6)
    assert p["control_plane"] == pytest.approx(0.060, abs=1e-6)
    assert p["qemu"] == 2.0 and p["libvirt_around_qemu"] == pytest.approx(1.5, abs=1e-6)
    assert sum(p[ph.key] for ph in PHASES) == pytest.approx(3.56, abs=1e-6)   # the whole wall time


def test_the_last_attempt_counts():
    assert phase_seconds(detail(), None)["agent_prepare"] == pytest.approx(0.005, abs=1e-6)


def test_missing_timestamps_give_no_breakdown():
    d = detail()
    del d["attempts"][-1]["agent_timeline"]["libvirt_returned_at"]
    assert phase_seconds(d, 2000) is None
    assert phase_seconds({"timeline": {"bench_sent_at": T0}}, None) is None


def test_breakdown_summarises_successful_ferry_runs_only():
    ok = {"kind": "migrate", "driver": "ferry", "ok": True, "figures": {"total_ms": 2000}}
    records = [{**ok, "driver_detail": detail()},
               {**ok, "driver_detail": detail(engine_finished_at=3.9, bench_saw_end_at=3.95)},
               {**ok, "driver_detail": detail(bench_saw_end_at=9.0), "ok": False},
               {**ok, "driver_detail": detail(), "driver": "virsh"},
               {**ok, "driver_detail": {}}]
    b = breakdown(records)
    assert b["engine_hears"].n == 2
    assert b["engine_hears"].maximum == pytest.approx(0.369, abs=1e-6)
    assert b["control_plane"].minimum == pytest.approx(0.060, abs=1e-6)
    assert breakdown([]) == {}

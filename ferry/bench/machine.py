"""The machine a benchmark ran on: cores, memory, CPU, kernel, QEMU/libvirt versions, accelerator.

Numbers mean little without it: the report states it above every table.
"""
from __future__ import annotations

import os
import platform
import subprocess


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _mem_total_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError):
        pass
    return None


def _tool_version(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = out.strip().splitlines()[:1]
    return first[0] if first else None


def machine_facts(lab) -> dict:
    facts = {
        "cores": os.cpu_count(),
        "memory_gib": _mem_total_gib(),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "iperf3": _tool_version(["iperf3", "--version"]),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    if lab is not None:
        status = lab.status()
        facts["accelerator"] = status.get("accel")
        facts["accelerator_reason"] = status.get("accel_reason")
        for host in status.get("hosts", []):
            if host.get("qemu_version"):
                facts["qemu"] = host["qemu_version"]
                facts["libvirt"] = host.get("libvirt_version")
                break
        facts["lab_id"] = status.get("lab_id")
        facts["lab_hosts"] = [f"{h['name']} {h['address']}" for h in status.get("hosts", [])]
    return facts

"""Lab: real libvirt/QEMU hosts on one machine, with guests whose memory can be verified.

`Lab` is the Python API (up, down, status, hosts, connect, boot_guest, verify, copies, cut_off,
restore, link, run_in_host, restart_agent, images); `ferry lab ...` (ferry.cli.lab) is its
command line. Each host has its own network namespace on the lab's bridge (ferry.lab.network).
"""
from ferry.lab.guests import Guest
from ferry.lab.lab import Lab, agent_available
from ferry.lab.verify import VerifyReport

__all__ = ["Lab", "Guest", "VerifyReport", "agent_available"]

"""Lab: real libvirt/QEMU hosts on one machine, with guests whose memory can be verified.

`Lab` is the Python API (up, down, status, hosts, boot_guest, verify, cut_off, restore,
restart_agent, images); `ferry lab ...` (ferry.cli.lab) is its command line.
"""
from ferry.lab.guests import Guest
from ferry.lab.lab import Lab, agent_available
from ferry.lab.verify import VerifyReport

__all__ = ["Lab", "Guest", "VerifyReport", "agent_available"]

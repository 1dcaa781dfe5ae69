"""Lab: real libvirt/QEMU hosts on one machine, with guests whose memory can be verified."""

"""Host agent (Vdsm's role): the only part of Ferry that talks to libvirt."""

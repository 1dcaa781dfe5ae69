"""A deterministic writer of the cpio "newc" archives the Linux kernel unpacks as initramfs.

Written here rather than calling `cpio` so that an image built twice from the same inputs is
byte-identical (fixed inode numbers, owners and mtimes) and so device nodes such as
/dev/console need no mknod on the build machine.
"""
from __future__ import annotations

import stat
from dataclasses import dataclass

_MAGIC = b"070701"


@dataclass(frozen=True)
class Entry:
    """One archive member: a directory, regular file, symlink or character device."""

    path: str  # relative, no leading "/"
    mode: int  # full st_mode (type bits + permissions)
    data: bytes = b""  # file contents, or the symlink target
    rdev: tuple[int, int] = (0, 0)  # (major, minor) for device nodes


def directory(path: str, perm: int = 0o755) -> Entry:
    return Entry(path, stat.S_IFDIR | perm)


def file(path: str, data: bytes, perm: int = 0o644) -> Entry:
    return Entry(path, stat.S_IFREG | perm, data)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def chardev(path: str, major: int, minor: int, perm: int = 0o600) -> Entry:
    return Entry(path, stat.S_IFCHR | perm, b"", (major, minor))


def _pad4(n: int) -> bytes:
    return b"\0" * ((4 - n % 4) % 4)


def _header(ino: int, entry: Entry, name: bytes) -> bytes:
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    fields = [ino, entry.mode, 0, 0, nlink, 0, len(entry.data), 0, 0,
              entry.rdev[0], entry.rdev[1], len(name) + 1, 0]
    return _MAGIC + b"".join(b"%08X" % f for f in fields)


def build(entries: list[Entry]) -> bytes:
    """The newc archive of `entries`, in the given order, with its trailer."""
    out = bytearray()
    for ino, entry in enumerate(entries, start=1):
        if entry.path.startswith("/") or not entry.path:
            raise ValueError(f"cpio entry path must be relative and non-empty: {entry.path!r}")
        name = entry.path.encode()
        hdr = _header(ino, entry, name)
        out += hdr + name + b"\0"
        out += _pad4(len(hdr) + len(name) + 1)
        out += entry.data + _pad4(len(entry.data))
    trailer = Entry("TRAILER!!!", 0)
    name = trailer.path.encode()
    hdr = _header(0, trailer, name)
    out += hdr + name + b"\0" + _pad4(len(hdr) + len(name) + 1)
    return bytes(out)

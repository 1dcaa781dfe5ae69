"""The initramfs archive writer and the image key (pure parts of the image builder)."""
import stat

import pytest

from ferry.lab import cpio
from ferry.lab.images import INIT_SCRIPT, image_key, initramfs_entries


def read_newc(data: bytes):
    """Minimal newc reader, to check what the writer produced."""
    out, pos = [], 0
    while True:
        assert data[pos:pos + 6] == b"070701"
        f = [int(data[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = f[11], f[6]
        name = data[pos + 110: pos + 110 + namesize - 1].decode()
        pos = (pos + 110 + namesize + 3) & ~3
        body = data[pos: pos + filesize]
        pos = (pos + filesize + 3) & ~3
        if name == "TRAILER!!!":
            return out, pos
        out.append((name, f[1], body, (f[9], f[10])))


def test_archive_round_trips_files_dirs_links_and_devices():
    entries = [cpio.directory("bin"), cpio.file("bin/x", b"hello", 0o755),
               cpio.symlink("bin/sh", "x"), cpio.chardev("dev/console", 5, 1)]
    members, end = read_newc(cpio.build(entries))
    assert end % 4 == 0
    assert [m[0] for m in members] == ["bin", "bin/x", "bin/sh", "dev/console"]
    assert stat.S_ISDIR(members[0][1])
    assert members[1][2] == b"hello" and stat.S_IMODE(members[1][1]) == 0o755
    assert stat.S_ISLNK(members[2][1]) and members[2][2] == b"x"
    assert stat.S_ISCHR(members[3][1]) and members[3][3] == (5, 1)


def test_archive_is_deterministic():
    entries = [cpio.file("a", b"1"), cpio.file("b", b"22")]
    assert cpio.build(entries) == cpio.build(list(entries))


def test_absolute_paths_are_refused():
    with pytest.raises(ValueError):
        cpio.build([cpio.file("/etc/passwd", b"")])


def test_initramfs_has_init_busybox_workload_and_console():
    members, _ = read_newc(cpio.build(initramfs_entries(b"BB", b"WL")))
    by_name = {m[0]: m for m in members}
    assert by_name["init"][2] == INIT_SCRIPT.encode()
    assert by_name["init"][2].startswith(b"#!/bin/busybox sh")
    assert b"exec /sbin/ferry-workload" in by_name["init"][2]
    assert by_name["bin/busybox"][2] == b"BB"
    assert by_name["sbin/ferry-workload"][2] == b"WL"
    assert by_name["dev/console"][3] == (5, 1)


def test_image_key_changes_with_every_input():
    base = image_key("linux-image-a", b"bb", b"src")
    assert base == image_key("linux-image-a", b"bb", b"src")
    assert len({base, image_key("linux-image-b", b"bb", b"src"),
                image_key("linux-image-a", b"bb2", b"src"), image_key("linux-image-a", b"bb", b"src2")}) == 4

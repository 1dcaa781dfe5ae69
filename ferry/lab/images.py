"""Guest images built locally from Debian packages: a kernel and an initramfs with the workload.

- kernel: the vmlinuz of a Debian linux-image package (the `cloud` flavour when available:
  built for VMs, fewer drivers, boots faster under TCG), fetched with `apt-get download`
  into <images>/debs and unpacked with dpkg-deb;
- initramfs: busybox from busybox-static runs a tiny /init that mounts /proc and /dev and
  execs the workload (ferry/lab/workload/workload.c, compiled statically here) as PID 1.

Images live under <root>/images/<key>/, where the key hashes every input (kernel package,
busybox binary, workload source, init script, this builder's format version): building again
with the same inputs reuses the directory, and concurrent builders (two labs) serialize on a
lock file.
"""
from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ferry.common.errors import OperationFailed
from ferry.lab import cpio

FORMAT_VERSION = "1"
WORKLOAD_SOURCE = Path(__file__).parent / "workload" / "workload.c"
KERNEL_METAPACKAGES = ("linux-image-cloud-amd64", "linux-image-amd64")
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

INIT_SCRIPT = """#!/bin/busybox sh
# Ferry lab guest init: mount the basics, then the workload becomes PID 1.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs devtmpfs /dev
case " $(/bin/busybox cat /proc/cmdline) " in
  *" ferry.shell=1 "*) exec /bin/busybox sh ;;
esac
exec /sbin/ferry-workload
"""


@dataclass(frozen=True)
class GuestImages:
    """Paths of a built image set (readable inside every lab host: same paths everywhere)."""

    dir: Path
    kernel: Path
    initrd: Path
    kernel_package: str

    def to_dict(self) -> dict[str, str]:
        return {"dir": str(self.dir), "kernel": str(self.kernel), "initrd": str(self.initrd),
                "kernel_package": self.kernel_package}


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise OperationFailed(f"{' '.join(cmd)} failed: {(proc.stderr or proc.stdout).strip()[-400:]}")
    return proc


def resolve_kernel_package() -> str:
    """The versioned linux-image package the preferred metapackage currently depends on."""
    for meta in KERNEL_METAPACKAGES:
        proc = subprocess.run(["apt-cache", "depends", meta], capture_output=True, text=True)
        for line in proc.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "Depends:" and parts[1].startswith("linux-image-"):
                return parts[1]
    raise OperationFailed("no linux-image package known to apt (tried "
                          f"{', '.join(KERNEL_METAPACKAGES)}); run `apt-get update`")


def fetch_kernel_deb(package: str, debs_dir: Path) -> Path:
    """The package's .deb, from the local cache or downloaded once with apt-get."""
    debs_dir.mkdir(parents=True, exist_ok=True)
    for where in (debs_dir, Path("/var/cache/apt/archives")):
        found = sorted(where.glob(f"{package}_*.deb"))
        if found:
            return found[-1]
    _run(["apt-get", "download", package], cwd=debs_dir)
    found = sorted(debs_dir.glob(f"{package}_*.deb"))
    if not found:
        raise OperationFailed(f"apt-get download {package} produced no .deb in {debs_dir}")
    return found[-1]


def extract_vmlinuz(deb: Path) -> bytes:
    """The ./boot/vmlinuz-* member of a linux-image .deb."""
    proc = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True)
    if proc.returncode != 0:
        raise OperationFailed(f"dpkg-deb --fsys-tarfile {deb} failed: {proc.stderr.decode()[-300:]}")
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        for member in tar.getmembers():
            if member.name.lstrip("./").startswith("boot/vmlinuz-") and member.isfile():
                return tar.extractfile(member).read()
    raise OperationFailed(f"{deb} has no boot/vmlinuz-*")


def find_busybox() -> Path:
    for cand in BUSYBOX_CANDIDATES:
        p = Path(cand)
        if p.exists() and _is_static(p):
            return p
    raise OperationFailed("no static busybox found (install busybox-static: `ferry lab install`)")


def _is_static(path: Path) -> bool:
    """True if the ELF has no PT_INTERP program header (no dynamic loader needed)."""
    data = path.read_bytes()[:4096]
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return False
    phoff = int.from_bytes(data[0x20:0x28], "little")
    phentsize = int.from_bytes(data[0x36:0x38], "little")
    phnum = int.from_bytes(data[0x38:0x3a], "little")
    for i in range(phnum):
        off = phoff + i * phentsize
        if off + 4 > len(data):
            break
        if int.from_bytes(data[off:off + 4], "little") == 3:  # PT_INTERP
            return False
    return True


def compile_workload(out: Path, source: Path = WORKLOAD_SOURCE) -> None:
    _run(["gcc", "-O2", "-static", "-Wall", "-o", str(out), str(source)])


def initramfs_entries(busybox: bytes, workload: bytes) -> list[cpio.Entry]:
    """The initramfs tree (pure)."""
    return [
        cpio.directory("bin"), cpio.directory("sbin"), cpio.directory("dev"),
        cpio.directory("proc"), cpio.directory("tmp", 0o1777),
        cpio.chardev("dev/console", 5, 1), cpio.chardev("dev/ttyS0", 4, 64),
        cpio.file("bin/busybox", busybox, 0o755),
        cpio.symlink("bin/sh", "busybox"),
        cpio.file("sbin/ferry-workload", workload, 0o755),
        cpio.file("init", INIT_SCRIPT.encode(), 0o755),
    ]


def image_key(kernel_package: str, busybox: bytes, workload_source: bytes) -> str:
    h = hashlib.sha256()
    for part in (FORMAT_VERSION.encode(), kernel_package.encode(), busybox, workload_source,
                 INIT_SCRIPT.encode()):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def build_images(images_dir: Path, progress: Callable[[str], None] = lambda _m: None) -> GuestImages:
    """Build (or reuse) the guest kernel and initramfs; returns their paths."""
    images_dir.mkdir(parents=True, exist_ok=True)
    busybox_path = find_busybox()
    busybox = busybox_path.read_bytes()
    source = WORKLOAD_SOURCE.read_bytes()
    with open(images_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        package = _cached_kernel_package(images_dir) or resolve_kernel_package()
        key = image_key(package, busybox, source)
        final = images_dir / key
        manifest = final / "manifest.json"
        if manifest.exists():
            return _images(final, package)
        progress(f"building guest images ({package}, busybox, workload)")
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=images_dir))
        try:
            deb = fetch_kernel_deb(package, images_dir / "debs")
            (tmp / "vmlinuz").write_bytes(extract_vmlinuz(deb))
            compile_workload(tmp / "ferry-workload")
            archive = cpio.build(initramfs_entries(busybox, (tmp / "ferry-workload").read_bytes()))
            with open(tmp / "initrd.cpio.gz", "wb") as f, \
                    gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
                gz.write(archive)
            (tmp / "manifest.json").write_text(json.dumps({
                "key": key, "kernel_package": package, "kernel_deb": deb.name,
                "busybox": str(busybox_path), "workload_source_sha256": hashlib.sha256(source).hexdigest(),
                "format": FORMAT_VERSION}, indent=2) + "\n")
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        (images_dir / "kernel-package").write_text(package + "\n")
        return _images(final, package)


def _cached_kernel_package(images_dir: Path) -> str | None:
    """The kernel package used last time, so a rebuild needs no apt query (and no network)."""
    p = images_dir / "kernel-package"
    if p.exists():
        name = p.read_text().strip()
        if name and any((images_dir / "debs").glob(f"{name}_*.deb")):
            return name
    return None


def _images(d: Path, package: str) -> GuestImages:
    return GuestImages(dir=d, kernel=d / "vmlinuz", initrd=d / "initrd.cpio.gz", kernel_package=package)

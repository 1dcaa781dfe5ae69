"""Files only their owner may read: the engine's database, admin token and logs (0600, in 0700
directories). They hold token hashes, the inventory and whatever the engine logged; group- or
world-readable copies would hand them to every local user.
"""
from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path, *, tighten: bool = True) -> Path:
    """Create `path` (and missing parents) 0700; an existing one is made 0700 if `tighten`
    (not for directories Ferry does not own, such as /tmp holding a user's database file)."""
    path = Path(path)
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if tighten:
        os.chmod(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty with mode 0600 if missing, else make it 0600 (contents untouched)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return Path(path)

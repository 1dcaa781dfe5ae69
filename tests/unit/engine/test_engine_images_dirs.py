"""An engine started over a lab accepts that lab's kernels, wherever FERRY_LAB_ROOT put them.

Before, an engine over a lab under a non-default FERRY_LAB_ROOT rejected every VM's kernel
("not under an allowed images directory"), and each helper had to set FERRY_ENGINE_IMAGES_DIRS.
"""
from pathlib import Path

from ferry.engine.process import engine_images_dirs
from ferry.engine.vm_validation import DEFAULT_IMAGES_DIRS


def test_the_lab_images_dir_is_added_to_the_engine_defaults():
    got = engine_images_dirs(Path("/var/lib/ferry/lab-x/images"), {})
    assert got.split(":") == [*DEFAULT_IMAGES_DIRS, "/var/lib/ferry/lab-x/images"]


def test_an_allowlist_the_environment_sets_is_kept_and_extended():
    got = engine_images_dirs(Path("/srv/lab/images"), {"FERRY_ENGINE_IMAGES_DIRS": "/srv/a:/srv/b"})
    assert got == "/srv/a:/srv/b:/srv/lab/images"


def test_a_dir_already_allowed_is_not_listed_twice():
    got = engine_images_dirs(Path("/srv/a"), {"FERRY_ENGINE_IMAGES_DIRS": "/srv/a"})
    assert got == "/srv/a"

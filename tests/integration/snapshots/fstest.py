"""Appliers and tree comparison for the snapshotter tests (containerd ``continuity/fstest``).

An applier is a function writing changes into a directory; the suite applies
the same appliers to a mounted snapshot and to a plain "flat" directory and
then requires both trees to be equal (:func:`check_directory_equal`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from pycontainerd import mount
from pycontainerd.api.types import Mount

Applier = Callable[[Path], None]


def _at(root: Path, name: str) -> Path:
    return root / name.lstrip("/")


def create_file(name: str, content: bytes, perm: int) -> Applier:
    def apply(root: Path) -> None:
        path = _at(root, name)
        path.write_bytes(content)
        os.chmod(path, perm)

    return apply


def create_dir(name: str, perm: int) -> Applier:
    def apply(root: Path) -> None:
        path = _at(root, name)
        path.mkdir(mode=perm)
        os.chmod(path, perm)

    return apply


def remove_all(name: str) -> Applier:
    def apply(root: Path) -> None:
        path = _at(root, name)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)

    return apply


def chown(name: str, uid: int, gid: int) -> Applier:
    def apply(root: Path) -> None:
        os.lchown(_at(root, name), uid, gid)

    return apply


def rename(old: str, new: str) -> Applier:
    def apply(root: Path) -> None:
        os.rename(_at(root, old), _at(root, new))

    return apply


def link(old: str, new: str) -> Applier:
    def apply(root: Path) -> None:
        os.link(_at(root, old), _at(root, new))

    return apply


def symlink(target: str, name: str) -> Applier:
    def apply(root: Path) -> None:
        os.symlink(target, _at(root, name))

    return apply


def apply_all(*appliers: Applier) -> Applier:
    """One applier running ``appliers`` in order (``fstest.Apply``)."""

    def apply(root: Path) -> None:
        for a in appliers:
            a(root)

    return apply


Entry = tuple[str, int, int, int, str]


def _entries(root: Path) -> dict[str, Entry]:
    """Every path under ``root`` (the root itself excluded) with what must match."""
    out: dict[str, Entry] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            detail = ""
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    detail = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                detail = os.readlink(path)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                detail = f"rdev={st.st_rdev}"
            out[rel] = (rel, st.st_mode, st.st_uid, st.st_gid, detail)
    return out


def check_directory_equal(expected: Path, actual: Path) -> None:
    """Assert both trees hold the same paths, types, modes, owners and contents.

    Timestamps and the roots' own metadata are not compared (continuity's
    ``CheckDirectoryEqual`` compares the same resource fields).
    """
    want, got = _entries(expected), _entries(actual)
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    changed = sorted(
        f"{k}: want mode={want[k][1]:o} uid={want[k][2]} gid={want[k][3]} {want[k][4]!r},"
        f" got mode={got[k][1]:o} uid={got[k][2]} gid={got[k][3]} {got[k][4]!r}"
        for k in set(want) & set(got)
        if want[k] != got[k]
    )
    assert not (missing or extra or changed), (
        f"{actual} differs from {expected}: missing {missing}, extra {extra}, changed {changed}"
    )


def check_directory_equal_with_applier(actual: Path, applier: Applier, scratch: Path) -> None:
    """Apply ``applier`` to a fresh directory under ``scratch`` and compare with ``actual``."""
    expected = Path(os.path.join(scratch, f"expected-{os.urandom(4).hex()}"))
    expected.mkdir()
    try:
        applier(expected)
        check_directory_equal(expected, actual)
    finally:
        shutil.rmtree(expected)


@contextlib.contextmanager
def mounted(mounts: Sequence[Mount], target: Path) -> Iterator[Path]:
    """``mount.All(mounts, target)`` for the block, unmounted even on failure."""
    target.mkdir(parents=True, exist_ok=True)
    try:
        mount.mount_all(mounts, target)
        yield target
    finally:
        mount.unmount_all(target)


def mount_points_under(base: Path) -> list[str]:
    """Mount points at or below ``base``, deepest first (for teardown)."""
    prefix = os.path.realpath(base)
    points: list[str] = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            point = line.split(" ", 5)[4]
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)

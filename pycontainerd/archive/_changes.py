"""Filesystem changes between two trees (continuity's ``fs.Changes``).

Two sources of changes feed the layer writer:

- :func:`changes` is the double walk containerd's walking differ runs over a
  mounted ``lower`` and ``upper``: both trees are walked in the same order
  (depth first, siblings sorted by name bytes, parents before children) and
  compared entry by entry. A path only in ``lower`` is deleted (its children are
  not listed: the deletion covers them); only in ``upper`` added; in both and not
  the same file, modified. Hardlinked files that did not change are reported as
  unmodified so the writer can still link new names to them.
- :func:`overlay_upper_changes` reads an overlayfs upper directory alone: a 0/0
  character device is a deletion, a directory with ``trusted.overlay.opaque=y``
  is reported opaque (it hides everything below it in the lower layers), every
  other entry is a change. overlayfs' own ``trusted.overlay.*`` xattrs are never
  reported as content.

"The same file" is continuity's ``sameFile``: same type, mode, owner, device
numbers and xattrs; for non-directories also the same size and mtime second, and
when both mtimes have no nanoseconds (a filesystem or copy that truncated them)
the same content.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import attrs

ChangeKind = Literal["add", "modify", "delete", "unmodified"]

OVERLAY_XATTR_PREFIX = "trusted.overlay."
_COMPARE_CHUNK = 1 << 20


@attrs.frozen
class Change:
    """One changed path: ``path`` is absolute within the tree (``"/etc/passwd"``);
    ``stat`` is the upper entry's ``lstat`` (``None`` for a deletion)."""

    kind: ChangeKind
    path: str
    stat: os.stat_result | None = None
    opaque: bool = False


def read_xattrs(path: str) -> dict[str, bytes]:
    """The extended attributes of ``path`` (not followed), minus overlayfs' own.

    Filesystems without xattr support give ``{}``; attributes we may not read
    (e.g. ``trusted.*`` without root) are left out.
    """
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return {}
        raise
    found: dict[str, bytes] = {}
    for name in names:
        if name.startswith(OVERLAY_XATTR_PREFIX):
            continue
        try:
            found[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in (errno.ENODATA, errno.EPERM, errno.EACCES):
                continue
            raise
    return found


def _same_content(a: str, b: str) -> bool:
    with open(a, "rb", buffering=0) as fa, open(b, "rb", buffering=0) as fb:
        while True:
            ca = fa.read(_COMPARE_CHUNK)
            cb = fb.read(_COMPARE_CHUNK)
            if ca != cb:
                return False
            if not ca:
                return True


def same_file(lower: str, lst: os.stat_result, upper: str, ust: os.stat_result) -> bool:
    """continuity's ``sameFile``: whether ``upper`` is an unchanged ``lower``."""
    if (lst.st_dev, lst.st_ino) == (ust.st_dev, ust.st_ino):
        return True
    if (lst.st_mode, lst.st_uid, lst.st_gid) != (ust.st_mode, ust.st_uid, ust.st_gid):
        return False
    mode = ust.st_mode
    if (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) and lst.st_rdev != ust.st_rdev:
        return False
    if read_xattrs(lower) != read_xattrs(upper):
        return False
    if stat.S_ISDIR(mode):
        return True
    if lst.st_size != ust.st_size:
        return False
    if stat.S_ISLNK(mode) and os.readlink(lower) != os.readlink(upper):
        return False
    l_sec, l_ns = divmod(lst.st_mtime_ns, 1_000_000_000)
    u_sec, u_ns = divmod(ust.st_mtime_ns, 1_000_000_000)
    if l_sec != u_sec:
        return False
    if l_ns == 0 and u_ns == 0:
        if not stat.S_ISREG(mode) or ust.st_size == 0:
            return True
        return _same_content(lower, upper)
    return l_ns == u_ns


def _listing(directory: str | None) -> dict[bytes, os.DirEntry[str]]:
    if directory is None:
        return {}
    with os.scandir(directory) as it:
        return {os.fsencode(entry.name): entry for entry in it}


def _walk(lower: str | None, upper: str, rel: str) -> Iterator[Change]:
    lower_entries = _listing(lower)
    upper_entries = _listing(upper)
    for key in sorted(lower_entries.keys() | upper_entries.keys()):
        low = lower_entries.get(key)
        up = upper_entries.get(key)
        path = rel + "/" + os.fsdecode(key)
        if up is None:
            yield Change("delete", path)
            continue
        ust = up.stat(follow_symlinks=False)
        is_dir = stat.S_ISDIR(ust.st_mode)
        lower_dir: str | None = None
        if low is None:
            yield Change("add", path, ust)
        else:
            lst = low.stat(follow_symlinks=False)
            if not same_file(low.path, lst, up.path, ust):
                yield Change("modify", path, ust)
            elif not is_dir and ust.st_nlink > 1:
                yield Change("unmodified", path, ust)
            if stat.S_ISDIR(lst.st_mode):
                lower_dir = low.path
        if is_dir:
            yield from _walk(lower_dir, up.path, path)


def changes(lower: Path, upper: Path) -> Iterator[Change]:
    """The changes that turn tree ``lower`` into tree ``upper``, in tar order.

    Raises:
        FileNotFoundError: either root is missing (the caller mounts them).
    """
    yield from _walk(os.fspath(lower), os.fspath(upper), "")


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OVERLAY_XATTR_PREFIX + "opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


def _walk_upper(upper: str, rel: str) -> Iterator[Change]:
    listing = _listing(upper)
    for key in sorted(listing):
        entry = listing[key]
        path = rel + "/" + os.fsdecode(key)
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            yield Change("delete", path)
        elif stat.S_ISDIR(st.st_mode):
            yield Change("modify", path, st, opaque=_is_opaque(entry.path))
            yield from _walk_upper(entry.path, path)
        else:
            yield Change("modify", path, st)


def overlay_upper_changes(upper: Path) -> Iterator[Change]:
    """The changes an overlayfs upper directory holds over its lower layers.

    Raises:
        FileNotFoundError: ``upper`` is missing.
    """
    yield from _walk_upper(os.fspath(upper), "")

"""Users and groups of a container's rootfs (``oci.UserFromFS``, ``GIDFromFS``).

The rootfs belongs to an image, not to the host: ``/etc/passwd`` may be a
symlink to ``/../../host/etc/shadow``. Every path is resolved component by
component with ``O_NOFOLLOW``, symlinks re-rooted at the rootfs and ``..``
clamped there (as Go's ``os.OpenRoot`` / ``securejoin``), so a lookup never
reads a file outside the rootfs.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import NamedTuple

from pycontainerd.api import errdefs

_MAX_SYMLINKS = 40
_MAX_FILE = 4 << 20


class User(NamedTuple):
    """One ``/etc/passwd`` entry."""

    name: str
    uid: int
    gid: int
    home: str


class Group(NamedTuple):
    """One ``/etc/group`` entry."""

    name: str
    gid: int
    members: tuple[str, ...]


def _split(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]


def open_in_root(root: str | os.PathLike[str], path: str) -> int:
    """Open ``path`` read-only as seen from inside ``root``; returns the fd.

    Raises:
        errdefs.NotFound: the path does not exist inside ``root``.
        errdefs.InvalidArgument: too many symlinks, or not a regular file.
    """
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    stack: list[int] = []  # fds of the directories below root
    try:
        todo = _split(path)
        links = 0
        while todo:
            name = todo.pop(0)
            cur = stack[-1] if stack else root_fd
            if name == "..":
                if stack:
                    os.close(stack.pop())
                continue
            try:
                st = os.stat(name, dir_fd=cur, follow_symlinks=False)
            except FileNotFoundError:
                raise errdefs.NotFound(f"{path}: not found in rootfs") from None
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > _MAX_SYMLINKS:
                    raise errdefs.InvalidArgument(f"{path}: too many levels of symbolic links")
                target = os.readlink(name, dir_fd=cur)
                if target.startswith("/"):
                    while stack:
                        os.close(stack.pop())
                todo = _split(target) + todo
                continue
            if todo:
                if not stat.S_ISDIR(st.st_mode):
                    raise errdefs.NotFound(f"{path}: {name} is not a directory")
                stack.append(os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=cur))
                continue
            if not stat.S_ISREG(st.st_mode):
                raise errdefs.InvalidArgument(f"{path}: not a regular file")
            try:
                return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise errdefs.InvalidArgument(f"{path}: changed while opening") from None
                raise
        raise errdefs.InvalidArgument(f"{path}: not a regular file")
    finally:
        for fd in stack:
            os.close(fd)
        os.close(root_fd)


def read_in_root(root: str | os.PathLike[str], path: str) -> str:
    """The text of ``path`` inside ``root`` (at most 4 MiB).

    Raises:
        errdefs.NotFound: as :func:`open_in_root`.
        errdefs.InvalidArgument: as :func:`open_in_root`, or the file is too big.
    """
    fd = open_in_root(root, path)
    with os.fdopen(fd, "rb") as f:
        data = f.read(_MAX_FILE + 1)
    if len(data) > _MAX_FILE:
        raise errdefs.InvalidArgument(f"{path}: larger than {_MAX_FILE} bytes")
    return data.decode("utf-8", errors="replace")


def _entries(text: str, fields: int) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) < fields:
            parts += [""] * (fields - len(parts))
        rows.append(parts)
    return rows


def parse_passwd(text: str) -> list[User]:
    """Entries of an ``/etc/passwd`` file; malformed ids are skipped (as moby/user)."""
    users = []
    for p in _entries(text, 7):
        try:
            users.append(User(p[0], int(p[2]), int(p[3]), p[5]))
        except ValueError:
            continue
    return users


def parse_group(text: str) -> list[Group]:
    """Entries of an ``/etc/group`` file; malformed ids are skipped."""
    groups = []
    for p in _entries(text, 4):
        try:
            groups.append(Group(p[0], int(p[2]), tuple(m for m in p[3].split(",") if m)))
        except ValueError:
            continue
    return groups


def rootfs_users(root: str | os.PathLike[str]) -> list[User]:
    """The users of ``root``'s ``/etc/passwd``; ``[]`` when it has none.

    Raises:
        errdefs.InvalidArgument: the file is a symlink loop or not a file.
    """
    try:
        return parse_passwd(read_in_root(root, "/etc/passwd"))
    except errdefs.NotFound:
        return []


def rootfs_groups(root: str | os.PathLike[str]) -> list[Group]:
    """The groups of ``root``'s ``/etc/group``; ``[]`` when it has none.

    Raises:
        errdefs.InvalidArgument: the file is a symlink loop or not a file.
    """
    try:
        return parse_group(read_in_root(root, "/etc/group"))
    except errdefs.NotFound:
        return []

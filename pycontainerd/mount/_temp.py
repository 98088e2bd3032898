"""Temporary mounts and read-only rewrites (containerd ``mount/temp.go``).

Used wherever a snapshot's contents must be read or written without a
container: a differ applies a layer into ``with_temp_mount(mounts)``, a
comparison reads two ``with_readonly_temp_mount`` trees side by side.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence

import attrs

from pycontainerd.api.types import Mount

from ._linux import mount_all, unmount_all

TEMP_MOUNT_PREFIX = "containerd-mount"


def _readonly_overlay(options: Sequence[str]) -> list[str]:
    """Drop ``upperdir``/``workdir``; the upper layer becomes the top lowerdir."""
    out: list[str] = []
    upper = ""
    for option in options:
        if option.startswith("upperdir="):
            upper = option.removeprefix("upperdir=")
        elif not option.startswith("workdir="):
            out.append(option)
    if upper:
        out = [
            "lowerdir=" + upper + ":" + o.removeprefix("lowerdir=")
            if o.startswith("lowerdir=")
            else o
            for o in out
        ]
    return out


def read_only(m: Mount) -> Mount:
    """The same mount, read-only (containerd ``readonlyMounts`` for one mount).

    An overlay loses its upper and work directories (the upper directory is
    stacked on top of the lowerdirs instead); any other mount drops ``rw`` and
    ``ro`` and gets one ``ro`` at the end.
    """
    if m.type == "overlay":
        return attrs.evolve(m, options=_readonly_overlay(m.options))
    options = [o for o in m.options if o not in ("rw", "ro")]
    return attrs.evolve(m, options=[*options, "ro"])


def read_only_mounts(mounts: Sequence[Mount]) -> list[Mount]:
    """:func:`read_only` of every mount."""
    return [read_only(m) for m in mounts]


@contextlib.contextmanager
def with_temp_mount(
    mounts: Sequence[Mount], *, temp_dir: str | os.PathLike[str] | None = None
) -> Iterator[str]:
    """Mount ``mounts`` on a fresh temporary directory for the ``with`` block.

    containerd ``mount.WithTempMount``: the directory is created under
    ``temp_dir`` (default: the system temporary directory), everything is
    unmounted when the block ends, and the directory is removed only once
    nothing is mounted on it any more.

    Args:
        mounts: mounted in order (:func:`mount_all`).
        temp_dir: where to create the mount point.

    Yields:
        The mount point.

    Raises:
        errdefs.ErrdefsError: mounting or unmounting failed; a failure to
            unmount after the block is raised unless the block itself raised.
    """
    root = tempfile.mkdtemp(prefix=TEMP_MOUNT_PREFIX, dir=temp_dir)
    try:
        mount_all(mounts, root)
    except BaseException:
        unmount_all(root)
        os.rmdir(root)
        raise
    failed = True
    try:
        yield root
        failed = False
    finally:
        try:
            unmount_all(root)
        except Exception:
            if not failed:
                raise
        else:
            os.rmdir(root)


@contextlib.contextmanager
def with_readonly_temp_mount(
    mounts: Sequence[Mount], *, temp_dir: str | os.PathLike[str] | None = None
) -> Iterator[str]:
    """:func:`with_temp_mount` of :func:`read_only_mounts` (nothing can be changed)."""
    with with_temp_mount(read_only_mounts(mounts), temp_dir=temp_dir) as root:
        yield root

"""A fresh filesystem for a benchmark's daemons, made and removed by the benchmark.

Filesystem benchmarks on the host's own filesystem measure its history as much
as the code: on an ext4 *without a journal* (this machine's root) the inode
allocator skips every inode freed in the last minute (``recently_deleted``,
five more minutes while its table block is dirty), scanning the buffer cache
for each, so creating 9,000 files right after deleting 9,000 costs seconds of
system time that depend on what else ran. :func:`scratch_fs` gives both daemons
the same fresh filesystem instead:

- ``ext4``: a sparse image file in the benchmark's directory, ``mkfs.ext4`` with
  its defaults (a journal; inode tables initialised up front so no lazy-init
  thread writes during the runs), on a loop device;
- ``tmpfs``: memory only, the cost of the code without a disk;
- ``none``: the directory's own filesystem, as it is.

Everything it mounts and attaches is detached again when the block ends, also
on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

KINDS = ("ext4", "tmpfs", "none")
IMAGE_SIZE = 4 << 30


class ScratchError(Exception):
    """The filesystem could not be made; the message says why."""


def _run(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise ScratchError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip()


def _umount(point: Path) -> None:
    if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


@contextlib.contextmanager
def scratch_fs(kind: str, directory: Path) -> Iterator[tuple[Path, str]]:
    """A new filesystem of ``kind`` mounted under ``directory`` (which it must not outlive).

    Yields:
        The mount point (``directory/fs``; ``directory`` itself for ``none``) and
        a description such as ``"ext4 on /dev/loop3 (4 GiB image on ext4)"``.

    Raises:
        ScratchError: an unknown kind, or a tool (``mkfs.ext4``, ``losetup``,
            ``mount``) failed.
    """
    if kind not in KINDS:
        raise ScratchError(f"unknown filesystem kind {kind!r}: one of {', '.join(KINDS)}")
    if kind == "none":
        yield directory, "the directory's own"
        return
    point = directory / "fs"
    point.mkdir()
    mounted = False
    device: str | None = None
    image = directory / "fs.img"
    try:
        if kind == "tmpfs":
            _run("mount", "-t", "tmpfs", "-o", f"size={IMAGE_SIZE},mode=0755", "tmpfs", str(point))
            mounted = True
            yield point, f"tmpfs ({IMAGE_SIZE >> 30} GiB)"
            return
        if shutil.which("mkfs.ext4") is None:
            raise ScratchError("mkfs.ext4 not found: apt-get install e2fsprogs")
        with image.open("wb") as f:
            f.truncate(IMAGE_SIZE)
        _run("mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", str(image))
        device = _run("losetup", "--find", "--show", str(image))
        _run("mount", "-t", "ext4", device, str(point))
        mounted = True
        yield point, f"ext4 with a journal on {device} ({IMAGE_SIZE >> 30} GiB sparse image)"
    finally:
        if mounted:
            _umount(point)
        if device is not None:
            subprocess.run(["losetup", "-d", device], capture_output=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(image)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``--tmpdir`` and ``--fs``: where the daemons' roots go, for every benchmark."""
    p.add_argument("--tmpdir", default="/tmp", help="the benchmark's directory (/tmp)")
    p.add_argument(
        "--fs",
        choices=KINDS,
        default="ext4",
        help="the daemons' roots on a fresh loop-mounted ext4 (default), a tmpfs, "
        "or none: the --tmpdir's own filesystem",
    )

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pycontainerd import mount
from pycontainerd.snapshots import (
    BtrfsSnapshotter,
    LocalSnapshotter,
    NativeSnapshotter,
    OverlaySnapshotter,
)
from tests.requirements import require

from .fstest import mount_points_under

MakeSnapshotter = Callable[[Path], LocalSnapshotter]
BACKENDS = ("overlayfs", "native", "btrfs")
BTRFS_IMAGE_SIZE = 1 << 30  # sparse: only written blocks take space


def _run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout.strip()


@pytest.fixture(scope="session")
def btrfs_mount() -> Iterator[Path]:
    """A btrfs filesystem on a loop device, mounted for the session, torn down after."""
    require("mkfs.btrfs", "btrfs-progs")
    require("losetup", "mount")
    base = Path(tempfile.mkdtemp(prefix="pcd-btrfs-"))
    image, point = base / "btrfs.img", base / "mnt"
    point.mkdir()
    device = ""
    try:
        with open(image, "wb") as f:
            f.truncate(BTRFS_IMAGE_SIZE)
        try:
            _run("mkfs.btrfs", "-q", str(image))
            device = _run("losetup", "-f", "--show", str(image))
        except RuntimeError as exc:
            print(f"skipping btrfs: cannot create a loop-backed btrfs: {exc}")
            pytest.skip(f"this host cannot create a loop-backed btrfs filesystem: {exc}")
        mount.mount(mount.Mount(type="btrfs", source=device), point)
        yield point
    finally:
        for p in mount_points_under(base):
            mount.unmount_all(p, mount.MNT_DETACH)
        if device:
            _run("losetup", "-d", device)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def umask0() -> Iterator[None]:
    """containerd's suite runs with umask 0, so modes are exactly what tests ask for."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path``, with anything left mounted below it unmounted afterwards."""
    try:
        yield tmp_path
    finally:
        for point in mount_points_under(tmp_path):
            mount.unmount_all(point, mount.MNT_DETACH)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def make_snapshotter(
    backend: str, scratch: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[MakeSnapshotter, Path]]:
    """``(make, base)``: ``make(root)`` opens a ``backend`` snapshotter; roots go under ``base``."""
    opened: list[LocalSnapshotter] = []
    base = scratch
    if backend == "btrfs":
        fs: Path = request.getfixturevalue("btrfs_mount")
        base = Path(tempfile.mkdtemp(prefix="t-", dir=fs))

    def make(root: Path) -> LocalSnapshotter:
        sn: LocalSnapshotter
        if backend == "overlayfs":
            sn = OverlaySnapshotter(root)
        elif backend == "native":
            sn = NativeSnapshotter(root)
        else:
            sn = BtrfsSnapshotter(root)
        opened.append(sn)
        return sn

    try:
        yield make, base
    finally:
        for point in mount_points_under(scratch):
            mount.unmount_all(point, mount.MNT_DETACH)
        for sn in opened:
            sn.close()
        if backend == "btrfs":
            _remove_btrfs_tree(base)


def _remove_btrfs_tree(base: Path) -> None:
    """Delete every subvolume under ``base`` (deepest first), then the rest."""
    from pycontainerd.snapshots._btrfs import is_subvolume, subvolume_delete

    subvolumes = [Path(d) for d, _, _ in os.walk(base) if Path(d) != base and is_subvolume(Path(d))]
    for sub in sorted(subvolumes, key=lambda p: len(p.parts), reverse=True):
        subvolume_delete(sub)
    shutil.rmtree(base, ignore_errors=True)

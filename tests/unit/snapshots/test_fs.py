"""copy_dir and disk_usage on plain directories (what the native snapshotter relies on)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pycontainerd.snapshots import Usage, copy_dir, disk_usage


def _tree(src: Path) -> None:
    (src / "dir" / "sub").mkdir(parents=True)
    (src / "dir" / "file").write_bytes(b"data" * 1000)
    os.chmod(src / "dir" / "file", 0o4751)
    os.link(src / "dir" / "file", src / "hardlink")
    os.symlink("dir/file", src / "symlink")
    os.symlink("/nonexistent/target", src / "dangling")
    os.mkfifo(src / "fifo", 0o640)
    os.chmod(src / "dir" / "sub", 0o700)
    (src / "empty").touch()
    os.utime(src / "dir" / "file", ns=(1_000_000_000_123, 2_000_000_000_456))
    os.utime(src / "symlink", ns=(3_000_000_000, 4_000_000_000), follow_symlinks=False)
    os.utime(src / "dir", ns=(5_000_000_000, 6_000_000_000))


def test_copy_dir_keeps_everything(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    _tree(src)
    try:
        os.setxattr(src / "dir" / "file", "user.origin", b"layer-1")
        have_xattrs = True
    except OSError:
        have_xattrs = False
    copy_dir(dst, src)

    assert (dst / "dir" / "file").read_bytes() == b"data" * 1000
    fst = os.stat(dst / "dir" / "file")
    assert stat.S_IMODE(fst.st_mode) == 0o4751
    assert fst.st_mtime_ns == 2_000_000_000_456
    assert fst.st_nlink == 2
    assert os.stat(dst / "hardlink").st_ino == fst.st_ino
    assert fst.st_ino != os.stat(src / "dir" / "file").st_ino
    assert os.readlink(dst / "symlink") == "dir/file"
    assert os.lstat(dst / "symlink").st_mtime_ns == 4_000_000_000
    assert os.readlink(dst / "dangling") == "/nonexistent/target"
    assert stat.S_ISFIFO(os.lstat(dst / "fifo").st_mode)
    assert stat.S_IMODE(os.lstat(dst / "fifo").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(dst / "dir" / "sub").st_mode) == 0o700
    assert os.stat(dst / "dir").st_mtime_ns == 6_000_000_000  # set after its entries
    assert (os.stat(dst / "dir").st_uid, fst.st_gid) == (os.getuid(), os.stat(src / "dir").st_gid)
    if have_xattrs:
        assert os.getxattr(dst / "dir" / "file", "user.origin") == b"layer-1"


def test_copy_dir_into_existing_directory(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir(mode=0o711)
    dst.mkdir()
    (src / "f").write_text("x")
    copy_dir(dst, src)
    assert (dst / "f").read_text() == "x"
    assert stat.S_IMODE(os.stat(dst).st_mode) == stat.S_IMODE(os.stat(src).st_mode)


def test_copy_dir_refuses_non_directories(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "src").mkdir()
    with pytest.raises(NotADirectoryError):
        copy_dir(tmp_path / "dst", tmp_path / "file")
    with pytest.raises(NotADirectoryError):
        copy_dir(tmp_path / "file", tmp_path / "src")


def test_disk_usage_counts_inodes_once(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    assert disk_usage(root) == Usage(os.lstat(root).st_blocks * 512, 1)
    (root / "big").write_bytes(b"\1" * (256 * 1024))
    os.link(root / "big", root / "again")
    (root / "d").mkdir()
    usage = disk_usage(root)
    assert usage.inodes == 3
    blocks = sum(os.lstat(p).st_blocks for p in (root, root / "big", root / "d"))
    assert usage.size == blocks * 512
    assert usage.size >= 256 * 1024
    assert usage.add(Usage(1, 1)) == Usage(usage.size + 1, 4)

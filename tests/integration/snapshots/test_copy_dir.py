"""copy_dir for what only root can create: foreign owners, devices, trusted xattrs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pycontainerd.snapshots import copy_dir


def test_copy_dir_keeps_owners_devices_and_trusted_xattrs(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "passwd").write_text("root:x:0:0")
    os.chown(src / "etc", 1234, 5678)
    os.chown(src / "etc" / "passwd", 1000, 1000)
    os.chmod(src / "etc" / "passwd", 0o4755)  # after chown, which clears setuid
    os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chmod(src / "null", 0o666)  # mknod is subject to the umask
    os.mknod(src / "blk", stat.S_IFBLK | 0o600, os.makedev(7, 200))
    os.symlink("etc/passwd", src / "link")
    os.lchown(src / "link", 42, 43)
    os.setxattr(src / "etc", "trusted.overlay.opaque", b"y")

    copy_dir(dst, src)

    est = os.stat(dst / "etc")
    assert (est.st_uid, est.st_gid) == (1234, 5678)
    pst = os.stat(dst / "etc" / "passwd")
    assert (pst.st_uid, pst.st_gid) == (1000, 1000)
    assert stat.S_IMODE(pst.st_mode) == 0o4755
    nst = os.lstat(dst / "null")
    assert stat.S_ISCHR(nst.st_mode)
    assert nst.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(nst.st_mode) == 0o666
    bst = os.lstat(dst / "blk")
    assert stat.S_ISBLK(bst.st_mode)
    assert bst.st_rdev == os.makedev(7, 200)
    lst = os.lstat(dst / "link")
    assert (lst.st_uid, lst.st_gid) == (42, 43)
    assert os.getxattr(dst / "etc", "trusted.overlay.opaque") == b"y"

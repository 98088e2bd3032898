"""Round trips only root can make: device nodes, foreign ownership, trusted xattrs."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

from pycontainerd.archive import write_diff
from tests.unit.archive.trees import apply_bytes, make_tar, member, set_mtimes, snapshot


def build_privileged(root: Path) -> None:
    (root / "dev").mkdir()
    os.mknod(root / "dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(root / "dev/sda", stat.S_IFBLK | 0o660, os.makedev(8, 0))
    os.chown(root / "dev/sda", 0, 6)
    (root / "home/user").mkdir(parents=True)
    (root / "home/user/.profile").write_bytes(b"export PS1='$ '\n")
    os.chown(root / "home/user", 1000, 1000)
    os.chown(root / "home/user/.profile", 1000, 100)
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/passwd").write_bytes(b"\x7fELF setuid")
    os.chown(root / "usr/bin/passwd", 0, 42)
    os.chmod(root / "usr/bin/passwd", 0o6755)  # after chown: chown clears setuid
    os.symlink("passwd", root / "usr/bin/chfn")
    os.chown(root / "usr/bin/chfn", 33, 33, follow_symlinks=False)
    os.setxattr(root / "usr/bin", "trusted.mark", b"t")
    (root / "big-ids").write_bytes(b"ids beyond octal")
    os.chown(root / "big-ids", 3_000_000_000, 2_500_000_000)  # base-256 / PAX numbers
    set_mtimes(root, 1_650_000_000)


def test_devices_ownership_round_trip(tmp_path: Path) -> None:
    lower, upper, target = (tmp_path / n for n in ("lower", "upper", "target"))
    for path in (lower, upper, target):
        path.mkdir()
    build_privileged(upper)
    out = io.BytesIO()
    write_diff(lower, upper, out)
    layer = out.getvalue()
    apply_bytes(layer, target)
    assert snapshot(target) == snapshot(upper)
    assert os.stat(target / "dev/null").st_rdev == os.makedev(1, 3)
    assert stat.S_ISBLK(os.stat(target / "dev/sda").st_mode)
    assert stat.S_IMODE(os.stat(target / "usr/bin/passwd").st_mode) == 0o6755
    assert os.lstat(target / "usr/bin/chfn").st_uid == 33
    assert os.stat(target / "big-ids").st_uid == 3_000_000_000
    assert os.getxattr(target / "usr/bin", "trusted.mark") == b"t"


def test_foreign_owner_from_tar_header(tmp_path: Path) -> None:
    info, data = member("f", tarfile.REGTYPE, b"x", mode=0o4750)
    info.uid, info.gid = 4242, 4343
    dev, _ = member("null", tarfile.CHRTYPE, mode=0o666)
    dev.devmajor, dev.devminor = 1, 3
    apply_bytes(make_tar([(info, data), (dev, b"")]), tmp_path)
    st = os.stat(tmp_path / "f")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4242, 4343, 0o4750)
    assert os.stat(tmp_path / "null").st_rdev == os.makedev(1, 3)

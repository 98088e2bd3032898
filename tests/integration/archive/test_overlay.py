"""Whiteouts as overlayfs stores them, both ways, checked through a real mount."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pycontainerd.archive import OVERLAY_OPAQUE_XATTR, overlay_upper_changes, write_overlay_diff
from tests.unit.archive.trees import apply_bytes, make_tar, member, set_mtimes, snapshot

REG, DIR = tarfile.REGTYPE, tarfile.DIRTYPE


@contextmanager
def overlay(lower: Path, upper: Path, work: Path, merged: Path) -> Iterator[Path]:
    for path in (upper, work, merged):
        path.mkdir(exist_ok=True)
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    done = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", options, str(merged)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"this kernel cannot mount overlayfs here: {done.stderr.strip()}")
    try:
        yield merged
    finally:
        subprocess.run(["umount", str(merged)], check=True)
        shutil.rmtree(work, ignore_errors=True)  # overlay's work dir keeps a 000 "work"


def base_layer() -> bytes:
    return make_tar(
        [
            member("etc/", DIR, mode=0o750),
            member("etc/passwd", REG, b"root"),
            member("etc/shadow", REG, b"secret"),
            member("opt/", DIR),
            member("opt/app/", DIR),
            member("opt/app/old1", REG, b"1"),
            member("opt/app/old2", REG, b"2"),
            member("var/", DIR),
            member("var/cache/", DIR),
            member("var/cache/x", REG, b"x"),
        ]
    )


def second_layer() -> bytes:
    return make_tar(
        [
            member("etc/.wh.shadow", REG),
            member("opt/app/", DIR, mode=0o750),
            member("opt/app/new", REG, b"new"),
            member("opt/app/.wh..wh..opq", REG),
            member(".wh.var", REG),
            member("etc/motd", REG, b"hi"),
        ]
    )


def test_apply_converts_whiteouts_for_overlay(tmp_path: Path) -> None:
    lower, upper, naive = tmp_path / "lower", tmp_path / "upper", tmp_path / "naive"
    for path in (lower, upper, naive):
        path.mkdir()
    apply_bytes(base_layer(), lower)
    apply_bytes(base_layer(), naive)
    apply_bytes(second_layer(), naive)
    apply_bytes(second_layer(), upper, convert_whiteout="overlay", parents=[lower])
    for name in ("etc/shadow", "var"):
        st = os.lstat(upper / name)
        assert stat.S_ISCHR(st.st_mode)
        assert st.st_rdev == 0
    assert os.getxattr(upper / "opt/app", OVERLAY_OPAQUE_XATTR) == b"y"
    assert sorted(os.listdir(upper / "opt/app")) == ["new"]
    assert stat.S_IMODE(os.stat(upper / "etc").st_mode) == 0o750  # copied from lower
    for tree in (lower, upper, naive):
        set_mtimes(tree, 1_650_000_000)  # creating etc/motd bumped etc's mtime: not content
    with overlay(lower, upper, tmp_path / "work", tmp_path / "merged") as merged:
        assert snapshot(merged) == snapshot(naive)


def test_overlay_upper_diff_round_trip(tmp_path: Path) -> None:
    lower, upper, target = tmp_path / "lower", tmp_path / "upper", tmp_path / "target"
    for path in (lower, target):
        path.mkdir()
    apply_bytes(base_layer(), lower)
    apply_bytes(base_layer(), target)
    with overlay(lower, upper, tmp_path / "work", tmp_path / "merged") as merged:
        os.remove(merged / "etc/shadow")
        shutil.rmtree(merged / "var")
        shutil.rmtree(merged / "opt/app")
        (merged / "opt/app").mkdir()  # overlayfs makes this dir opaque
        (merged / "opt/app/new").write_bytes(b"new")
        (merged / "etc/passwd").write_bytes(b"root:changed")
        (merged / "etc/new.d").mkdir()
        (merged / "etc/new.d/f").write_bytes(b"f")
        set_mtimes(merged, 1_650_000_000)
        expected = snapshot(merged)
    kinds = {c.path: (c.kind, c.opaque) for c in overlay_upper_changes(upper)}
    assert kinds["/etc/shadow"] == ("delete", False)
    assert kinds["/var"] == ("delete", False)
    assert kinds["/opt/app"] == ("modify", True)
    out = io.BytesIO()
    write_overlay_diff(upper, out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        names = tf.getnames()
        xattr_keys = {k for m in tf for k in m.pax_headers}
    assert "opt/app/.wh..wh..opq" in names
    assert names.index("opt/app") < names.index("opt/app/.wh..wh..opq")
    assert "etc/.wh.shadow" in names and ".wh.var" in names
    assert not any(k.startswith("SCHILY.xattr.trusted.overlay.") for k in xattr_keys)
    apply_bytes(out.getvalue(), target)
    assert snapshot(target) == expected

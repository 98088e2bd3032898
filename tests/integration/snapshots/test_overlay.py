"""Overlay-only behaviour (containerd ``snapshots/overlay/overlay_test.go``) and async removal."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycontainerd import mount
from pycontainerd.api import errdefs
from pycontainerd.snapshots import UPPERDIR_LABEL, Kind, OverlaySnapshotter

from .fstest import mounted

INDEX_OFF = ["index=off"] if Path("/sys/module/overlay/parameters/index").exists() else []


@pytest.fixture
def overlay(scratch: Path) -> Iterator[OverlaySnapshotter]:
    sn = OverlaySnapshotter(scratch / "root")
    yield sn
    sn.close()


def _snap(sn: OverlaySnapshotter, snapshot_id: str) -> Path:
    return sn.root / "snapshots" / snapshot_id


def test_overlay_mounts(overlay: OverlaySnapshotter) -> None:
    mounts = overlay.prepare("/tmp/test", "")
    assert len(mounts) == 1
    m = mounts[0]
    assert m.type == "bind"
    assert m.source == str(_snap(overlay, "1") / "fs")
    assert m.options == ["rw", "rbind"]
    assert overlay.mounts("/tmp/test") == mounts
    assert sorted(os.listdir(_snap(overlay, "1"))) == ["fs", "work"]
    assert os.stat(_snap(overlay, "1") / "fs").st_mode & 0o777 == 0o755


def test_overlay_commit(overlay: OverlaySnapshotter) -> None:
    overlay.prepare("/tmp/test", "")
    (_snap(overlay, "1") / "fs" / "foo").write_text("hi")
    overlay.commit("base", "/tmp/test")
    info = overlay.stat("base")
    assert (info.kind, info.parent) == (Kind.COMMITTED, "")
    with pytest.raises(errdefs.FailedPrecondition, match="not active or view"):
        overlay.mounts("base")
    with pytest.raises(errdefs.NotFound):
        overlay.stat("/tmp/test")
    usage = overlay.usage("base")
    assert usage.inodes == 2  # fs and foo
    assert usage.size > 0


def test_overlay_overlay_mount(overlay: OverlaySnapshotter) -> None:
    overlay.prepare("/tmp/test", "")
    overlay.commit("base", "/tmp/test")
    mounts = overlay.prepare("/tmp/layer2", "base")
    assert len(mounts) == 1
    m = mounts[0]
    assert (m.type, m.source) == ("overlay", "overlay")
    assert m.options == [
        *INDEX_OFF,
        f"workdir={_snap(overlay, '2') / 'work'}",
        f"upperdir={_snap(overlay, '2') / 'fs'}",
        f"lowerdir={_snap(overlay, '1') / 'fs'}",
    ]


def test_overlay_overlay_read(overlay: OverlaySnapshotter, scratch: Path) -> None:
    overlay.prepare("/tmp/test", "")
    (_snap(overlay, "1") / "fs" / "foo").write_text("hi")
    overlay.commit("base", "/tmp/test")
    with mounted(overlay.prepare("/tmp/layer2", "base"), scratch / "dest") as root:
        assert (root / "foo").read_text() == "hi"
        (root / "bar").write_text("upper")
    assert (_snap(overlay, "2") / "fs" / "bar").read_text() == "upper"
    assert not (_snap(overlay, "1") / "fs" / "bar").exists()


def test_overlay_view(scratch: Path) -> None:
    sn = OverlaySnapshotter(scratch / "root", mount_options=["volatile"])
    try:
        sn.prepare("/tmp/base", "")
        (_snap(sn, "1") / "fs" / "foo").write_text("hi")
        sn.commit("base", "/tmp/base")
        sn.prepare("/tmp/top", "base")
        (_snap(sn, "2") / "fs" / "foo").write_text("hi, again")
        sn.commit("top", "/tmp/top")

        (m1,) = sn.view("/tmp/view1", "base")
        assert (m1.type, m1.source) == ("bind", str(_snap(sn, "1") / "fs"))
        assert m1.options == ["ro", "rbind"]
        assert not (_snap(sn, "3") / "work").exists()  # views have no workdir

        (m2,) = sn.view("/tmp/view2", "top")
        assert (m2.type, m2.source) == ("overlay", "overlay")
        assert m2.options[0] == "volatile"
        assert m2.options == [
            "volatile",
            *INDEX_OFF,
            f"lowerdir={_snap(sn, '2') / 'fs'}:{_snap(sn, '1') / 'fs'}",
        ]
        (m0,) = sn.view("/tmp/view0", "")
        assert (m0.type, m0.source) == ("bind", str(_snap(sn, "5") / "fs"))
        assert m0.options == ["ro", "rbind"]
    finally:
        sn.close()


def test_overlay_view_mounts_read_only_merged(overlay: OverlaySnapshotter, scratch: Path) -> None:
    overlay.prepare("a", "")
    (_snap(overlay, "1") / "fs" / "foo").write_text("1")
    overlay.commit("l1", "a")
    overlay.prepare("b", "l1")
    (_snap(overlay, "2") / "fs" / "foo").write_text("2")
    overlay.commit("l2", "b")
    with mounted(overlay.view("v", "l2"), scratch / "v") as root:
        assert (root / "foo").read_text() == "2"
        with pytest.raises(OSError, match="Read-only"):
            (root / "new").write_text("x")


def test_remove_is_async_until_cleanup(overlay: OverlaySnapshotter) -> None:
    overlay.prepare("k", "")
    overlay.remove("k")
    assert _snap(overlay, "1").is_dir()  # kept until cleanup
    overlay.prepare("k", "")  # the key is free at once, with a new id
    assert _snap(overlay, "2").is_dir()
    overlay.cleanup()
    assert not _snap(overlay, "1").exists()
    assert _snap(overlay, "2").is_dir()
    assert sorted(os.listdir(overlay.root / "snapshots")) == ["2"]


def test_sync_remove(scratch: Path) -> None:
    sn = OverlaySnapshotter(scratch / "root", sync_remove=True)
    try:
        sn.prepare("k", "")
        sn.remove("k")
        assert os.listdir(sn.root / "snapshots") == []
    finally:
        sn.close()


def test_cleanup_removes_crashed_builds(overlay: OverlaySnapshotter) -> None:
    leftover = overlay.root / "snapshots" / "new-crashed"
    (leftover / "fs").mkdir(parents=True)
    overlay.prepare("k", "")
    overlay.cleanup()
    assert sorted(os.listdir(overlay.root / "snapshots")) == ["1"]


def test_upperdir_label(scratch: Path) -> None:
    sn = OverlaySnapshotter(scratch / "root", upperdir_label=True)
    try:
        sn.prepare("k", "", {"a": "b"})
        upper = str(_snap(sn, "1") / "fs")
        assert sn.stat("k").labels == {"a": "b", UPPERDIR_LABEL: upper}
        assert [i.labels[UPPERDIR_LABEL] for i in sn.walk()] == [upper]
        info = sn.update(sn.stat("k"), ["labels.a"])
        assert info.labels[UPPERDIR_LABEL] == upper
    finally:
        sn.close()


def test_child_fs_owned_like_parent(overlay: OverlaySnapshotter) -> None:
    overlay.prepare("a", "")
    os.chown(_snap(overlay, "1") / "fs", 1000, 1001)
    overlay.commit("l1", "a")
    overlay.prepare("b", "l1")
    st = os.stat(_snap(overlay, "2") / "fs")
    assert (st.st_uid, st.st_gid) == (1000, 1001)


def test_metadata_survives_reopen(scratch: Path) -> None:
    sn = OverlaySnapshotter(scratch / "root")
    sn.prepare("a", "", {"x": "y"})
    sn.commit("l1", "a")
    sn.prepare("b", "l1")
    sn.remove("b")
    sn.close()
    again = OverlaySnapshotter(scratch / "root")
    try:
        assert again.stat("l1").kind is Kind.COMMITTED
        (m,) = again.prepare("c", "l1")
        assert f"upperdir={_snap(again, '3') / 'fs'}" in m.options  # ids never reused
    finally:
        again.close()


def test_long_lowerdir_is_compacted(overlay: OverlaySnapshotter, scratch: Path) -> None:
    parent = ""
    for i in range(60):
        key = f"extract-{i}"
        overlay.prepare(key, parent)
        (overlay.root / "snapshots" / str(i + 1) / "fs" / f"f{i}").write_text(str(i))
        parent = f"layer-{i}-{'x' * 40}"
        overlay.commit(parent, key)
    (m,) = overlay.view("top", parent)
    assert sum(len(o) + 1 for o in m.options) > mount.PAGE_SIZE
    cwd = os.getcwd()
    with mounted([m], scratch / "top") as root:
        assert sorted(os.listdir(root)) == sorted(f"f{i}" for i in range(60))
    assert os.getcwd() == cwd

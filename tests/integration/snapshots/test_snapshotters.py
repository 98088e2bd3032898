"""Errors, usage and cleanup that every backend must share (reference §4 table)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from pycontainerd.api import errdefs
from pycontainerd.snapshots import Kind, Snapshotter, Usage

from .conftest import MakeSnapshotter
from .fstest import mounted


@pytest.fixture
def sn(make_snapshotter: tuple[MakeSnapshotter, Path]) -> Snapshotter:
    make, base = make_snapshotter
    snapshotter: Snapshotter = make(base / "root")
    return snapshotter


def test_errors(sn: Snapshotter) -> None:
    sn.prepare("a", "")
    sn.view("v", "")
    with pytest.raises(errdefs.NotFound):
        sn.prepare("b", "missing")
    with pytest.raises(errdefs.InvalidArgument, match="not a committed"):
        sn.prepare("b", "a")
    with pytest.raises(errdefs.InvalidArgument):
        sn.view("b", "v")
    with pytest.raises(errdefs.FailedPrecondition):
        sn.commit("c", "v")
    with pytest.raises(errdefs.NotFound):
        sn.commit("c", "missing")
    sn.commit("c", "a")
    with pytest.raises(errdefs.FailedPrecondition):
        sn.commit("c2", "c")
    sn.prepare("a2", "c")
    with pytest.raises(errdefs.AlreadyExists):
        sn.commit("c", "a2")
    with pytest.raises(errdefs.AlreadyExists):
        sn.commit("v", "a2")
    assert sn.stat("a2").kind is Kind.ACTIVE  # a failed commit changes nothing
    with pytest.raises(errdefs.FailedPrecondition):
        sn.mounts("c")
    with pytest.raises(errdefs.NotFound):
        sn.mounts("missing")
    with pytest.raises(errdefs.NotFound):
        sn.remove("missing")
    with pytest.raises(errdefs.NotFound):
        sn.usage("missing")
    with pytest.raises(errdefs.InvalidArgument):
        sn.prepare("big", "", {"k": "v" * 4096})
    with pytest.raises(errdefs.NotFound):
        sn.stat("big")  # nothing left behind


def test_keys_are_arbitrary_strings(sn: Snapshotter, scratch: Path) -> None:
    key = "/var/lib/x y/ünïcode:key@sha256:abc"
    mounts = sn.prepare(key, "")
    with mounted(mounts, scratch / "k") as root:
        (root / "f").write_text("x")
    sn.commit("name with spaces/and:colons", key)
    assert sn.stat("name with spaces/and:colons").kind is Kind.COMMITTED


def test_usage(sn: Snapshotter, backend: str, scratch: Path) -> None:
    mounts = sn.prepare("a", "")
    assert sn.usage("a").inodes == 1  # the empty root
    with mounted(mounts, scratch / "a") as root:
        (root / "data").write_bytes(os.urandom(1 << 20))
        os.link(root / "data", root / "link")  # one inode, counted once
        (root / "dir").mkdir()
    active = sn.usage("a")
    assert active.inodes == 3
    assert active.size >= 1 << 20
    sn.commit("c", "a")
    assert sn.usage("c") == active
    mounts = sn.prepare("b", "c")
    with mounted(mounts, scratch / "b") as root:
        (root / "small").write_bytes(b"x" * 10)
    child = sn.usage("b")
    if backend == "overlayfs":
        assert child == Usage(child.size, 2)  # its upper dir only: root and small
        assert child.size < 1 << 20
    else:
        # native and btrfs scan the whole tree of an active snapshot, parent's
        # files included, as containerd's do: root, data (= link), dir, small.
        assert child.inodes == 4
        assert child.size >= 1 << 20


def test_mounts_match_prepare(sn: Snapshotter) -> None:
    sn.prepare("a", "")
    sn.commit("c", "a")
    prepared = sn.prepare("b", "c")
    viewed = sn.view("v", "c")
    assert sn.mounts("b") == prepared
    assert sn.mounts("v") == viewed


def test_cleanup_keeps_live_snapshots(sn: Snapshotter, scratch: Path) -> None:
    sn.prepare("a", "")
    sn.commit("c", "a")
    sn.prepare("gone", "c")
    sn.remove("gone")
    with mounted(sn.prepare("b", "c"), scratch / "b") as root:
        (root / "f").write_text("kept")
    sn.cleanup()
    sn.cleanup()
    with mounted(sn.view("v", "c"), scratch / "v") as root:
        assert os.listdir(root) == []
    with mounted(sn.mounts("b"), scratch / "b2") as root:
        assert (root / "f").read_text() == "kept"


def test_labels_on_create_and_commit(sn: Snapshotter) -> None:
    sn.prepare("a", "", {"on": "prepare", "empty": ""})
    assert sn.stat("a").labels == {"on": "prepare"}
    sn.commit("c", "a", {"on": "commit"})
    assert sn.stat("c").labels == {"on": "commit"}  # containerd: commit labels only


def test_cleanup_removes_crash_leftovers(
    sn: Snapshotter,
    backend: str,
    make_snapshotter: tuple[MakeSnapshotter, Path],
    scratch: Path,
) -> None:
    _, base = make_snapshotter
    root = base / "root"
    sn.prepare("live", "")
    if backend == "btrfs":
        from pycontainerd.snapshots._btrfs import is_subvolume, subvolume_create

        leftover = root / "active" / "rm-99"
        subvolume_create(leftover)
        assert is_subvolume(leftover)
    else:
        leftover = root / "snapshots" / "new-crashed"
        (leftover / "fs").mkdir(parents=True)
    sn.cleanup()
    assert not leftover.exists()
    assert sn.stat("live").kind is Kind.ACTIVE
    with mounted(sn.mounts("live"), scratch / "live") as tree:
        (tree / "still").write_text("writable")
    assert sn.usage("live").inodes == 2


def test_concurrent_calls_from_threads(sn: Snapshotter) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            parent = ""
            for i in range(5):
                sn.prepare(f"t{n}-a{i}", parent)
                sn.commit(f"t{n}-c{i}", f"t{n}-a{i}")
                parent = f"t{n}-c{i}"
                sn.stat(parent)
                list(sn.walk([f"name=={parent}"]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(list(sn.walk(["kind==committed"]))) == 20
    assert sn.stat("t3-c4").parent == "t3-c3"

"""containerd's snapshotter test suite (``snapshots/testsuite/testsuite.go``), ported.

Every case is ``check_<name>(ctx)`` taking a :class:`SuiteContext` (the
snapshotter under test, its backend name and a ``work`` directory for mount
points); :data:`CASES` lists them under containerd's names, so that
``test_conformance.py`` runs each against every backend. Cases mount for real
and run with umask 0, as containerd's do; every snapshot is created with the
suite's common label ``containerd.io/gc.root``.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest

from pycontainerd import mount
from pycontainerd.api import errdefs
from pycontainerd.snapshots import Info, Kind, Snapshotter

from .fstest import (
    Applier,
    apply_all,
    check_directory_equal,
    check_directory_equal_with_applier,
    chown,
    create_dir,
    create_file,
    link,
    mounted,
    remove_all,
    rename,
)

GC_ROOT = "containerd.io/gc.root"
OPT = {GC_ROOT: datetime.now(UTC).isoformat(timespec="seconds")}


@attrs.frozen
class SuiteContext:
    name: str
    sn: Snapshotter
    work: Path


# -- helpers (testsuite/helpers.go) -------------------------------------------


def create_snapshot(ctx: SuiteContext, parent: str, applier: Applier) -> str:
    """Prepare on ``parent``, apply in a temp mount, commit; the committed name."""
    name = f"{id(applier):x}-{random.getrandbits(48)}"
    preparing = f"{name}-prepare"
    mounts = ctx.sn.prepare(preparing, parent, OPT)
    with mount.with_temp_mount(mounts, temp_dir=ctx.work) as root:
        applier(Path(root))
    ctx.sn.commit(name, preparing, OPT)
    return name


def check_snapshot(ctx: SuiteContext, name: str, expected: Path) -> None:
    """A view of ``name`` equals the directory ``expected``."""
    view = f"{name}-view"
    mounts = ctx.sn.view(view, name, OPT)
    try:
        with mount.with_temp_mount(mounts, temp_dir=ctx.work) as root:
            check_directory_equal(expected, Path(root))
    finally:
        ctx.sn.remove(view)


def check_snapshots(ctx: SuiteContext, *appliers: Applier) -> None:
    """Stack one committed snapshot per applier; each must equal a flat directory."""
    flat = ctx.work / f"flat-{random.getrandbits(32)}"
    flat.mkdir()
    try:
        parent = create_snapshot(ctx, "", appliers[0])
        appliers[0](flat)
        for applier in appliers[1:]:
            parent = create_snapshot(ctx, parent, applier)
            applier(flat)
            check_snapshot(ctx, parent, flat)
        check_snapshot(ctx, parent, flat)
    finally:
        shutil.rmtree(flat)


def prepare_mount_apply_commit(ctx: SuiteContext, key: str, parent: str, name: str) -> None:
    """Prepare ``key``, mount it under ``work``, write one file, unmount, commit ``name``."""
    target = ctx.work / key.strip("/").replace("/", "_")
    with mounted(ctx.sn.prepare(key, parent, OPT), target) as root:
        create_file(f"/file-{name.replace('/', '_')}", b"content\n", 0o644)(root)
    ctx.sn.commit(name, key, OPT)


def _without_time(info: Info) -> tuple[str, str, Kind]:
    return info.name, info.parent, info.kind


# -- the cases ----------------------------------------------------------------


def check_basic(ctx: SuiteContext) -> None:
    sn, work = ctx.sn, ctx.work
    initial = apply_all(
        create_file("/foo", b"foo\n", 0o777),
        create_dir("/a", 0o755),
        create_dir("/a/b", 0o755),
        create_dir("/a/b/c", 0o755),
    )
    diff = apply_all(
        create_file("/bar", b"bar\n", 0o777),
        create_file("/foo", b"bar\n", 0o777),  # change content of foo to bar
        remove_all("/a/b"),
    )
    preparing = str(work / "preparing")
    with mounted(sn.prepare(preparing, "", OPT), Path(preparing)) as root:
        initial(root)
    committed = str(work / "committed")
    sn.commit(committed, preparing, OPT)
    si = sn.stat(committed)
    assert (si.parent, si.kind) == ("", Kind.COMMITTED)
    with pytest.raises(errdefs.NotFound):
        sn.stat(preparing)

    following = str(work / "nextlayer")
    with mounted(sn.prepare(following, committed, OPT), Path(following)) as root:
        check_directory_equal_with_applier(root, initial, work)
        diff(root)
        ni = sn.stat(following)
        assert _without_time(ni) == (following, committed, Kind.ACTIVE)
    next_committed = str(work / "committed-next")
    sn.commit(next_committed, following, OPT)
    si2 = sn.stat(next_committed)
    assert (si2.parent, si2.kind) == (committed, Kind.COMMITTED)

    walked = {info.name: info for info in sn.walk()}
    assert walked[si.name] == si
    assert walked[si2.name] == si2

    nextnext = str(work / "nextnextlayer")
    with mounted(sn.view(nextnext, next_committed, OPT), Path(nextnext)) as root:
        check_directory_equal_with_applier(root, apply_all(initial, diff), work)
    sn.remove(nextnext)
    with pytest.raises(errdefs.ErrdefsError, match="remove"):
        sn.remove(committed)
    sn.remove(next_committed)
    sn.remove(committed)
    assert list(sn.walk()) == []


def check_stat_active(ctx: SuiteContext) -> None:
    preparing = str(ctx.work / "preparing")
    with mounted(ctx.sn.prepare(preparing, "", OPT), Path(preparing)) as root:
        create_file("/foo", b"foo\n", 0o777)(root)
        si = ctx.sn.stat(preparing)
    assert _without_time(si) == (preparing, "", Kind.ACTIVE)
    assert si.labels == OPT


def check_stat_committed(ctx: SuiteContext) -> None:
    preparing, committed = str(ctx.work / "preparing"), str(ctx.work / "committed")
    prepare_mount_apply_commit(ctx, preparing, "", committed)
    si = ctx.sn.stat(committed)
    assert _without_time(si) == (committed, "", Kind.COMMITTED)
    assert si.created_at.tzinfo is UTC


def check_transitivity(ctx: SuiteContext) -> None:
    snap_a, snap_b = str(ctx.work / "snapA"), str(ctx.work / "snapB")
    prepare_mount_apply_commit(ctx, str(ctx.work / "preparing"), "", snap_a)
    prepare_mount_apply_commit(ctx, str(ctx.work / "preparing-next"), snap_a, snap_b)
    assert ctx.sn.stat(snap_b).parent == snap_a
    assert ctx.sn.stat(snap_a).parent == ""


def check_prepare_view_failing(ctx: SuiteContext) -> None:
    sn, work = ctx.sn, ctx.work
    snap_a = str(work / "snapA")
    prepare_mount_apply_commit(ctx, str(work / "preparing"), "", snap_a)
    new_layer = str(work / "newlayer")
    sn.prepare(new_layer, snap_a, OPT)
    with pytest.raises(errdefs.AlreadyExists):
        sn.view(new_layer, snap_a, OPT)
    view_name = str(work / "viewlayer")
    sn.view(view_name, snap_a, OPT)
    with pytest.raises(errdefs.AlreadyExists):
        sn.view(view_name, snap_a, OPT)
    with pytest.raises(errdefs.AlreadyExists):
        sn.prepare(new_layer, snap_a, OPT)
    with pytest.raises(errdefs.AlreadyExists):
        sn.prepare(snap_a, "", OPT)  # one key space for keys and names


def check_update(ctx: SuiteContext) -> None:
    sn = ctx.sn
    sn.prepare("c1-a", "", OPT)
    sn.commit("c1", "c1-a", OPT)
    sn.prepare("c2-a", "c1", OPT)
    sn.commit("c2", "c2-a", OPT)
    sn.prepare("a1", "c2", OPT)
    sn.prepare("a2", "", OPT)
    sn.view("v1", "c2", OPT)
    sn.view("v2", "", OPT)
    for key in ("c1", "c2", "a1", "a2", "v1", "v2"):
        st = sn.stat(key)
        assert st.created_at == st.updated_at, key

        wanted = {"l1": "v1", "l2": "v2", "l3": "v3", **OPT}
        st2 = sn.update(attrs.evolve(st, parent="doesnotexist", labels=wanted))
        assert _without_time(st2) == _without_time(st)
        assert st2.created_at == st.created_at
        assert st2.updated_at > st.updated_at
        assert st2.labels == wanted
        assert sn.stat(key) == st2

        st3 = sn.update(
            attrs.evolve(st2, labels={"l1": "updated", "l3": "mistake", **OPT}),
            ["labels.l1", "labels.l2"],
        )
        assert st3.labels == {"l1": "updated", "l3": "v3", **OPT}
        assert st3.updated_at > st2.updated_at
        assert sn.stat(key) == st3

        st4 = sn.update(attrs.evolve(st3, labels={"l4": "v4", **OPT}), ["labels"])
        assert st4.labels == {"l4": "v4", **OPT}
        assert sn.stat(key) == st4

        for path in ("parent", "name", "kind", "created_at"):
            with pytest.raises(errdefs.InvalidArgument):
                sn.update(st4, [path])
        assert sn.stat(key) == st4


def check_remove(ctx: SuiteContext) -> None:
    sn = ctx.sn
    sn.prepare("prepare-1", "", OPT)
    sn.commit("committed-1", "prepare-1", OPT)
    sn.prepare("reuse-1", "committed-1", OPT)
    sn.remove("reuse-1")
    sn.view("reuse-1", "committed-1", OPT)
    sn.remove("reuse-1")
    sn.prepare("reuse-1", "", OPT)
    sn.remove("committed-1")
    sn.commit("committed-1", "reuse-1", OPT)
    assert sn.stat("committed-1").kind is Kind.COMMITTED
    with pytest.raises(errdefs.NotFound):
        sn.remove("reuse-1")


def check_walk(ctx: SuiteContext) -> None:
    sn = ctx.sn
    opt = {GC_ROOT: "check-walk"}
    sn.prepare("a-np", "", opt)
    sn.prepare("p-tmp", "", opt)
    sn.commit("p", "p-tmp", opt)
    sn.prepare("a", "p", opt)
    sn.view("v", "p", opt)
    sn.prepare("p-wl-tmp", "", opt)
    sn.commit("p-wl", "p-wl-tmp", {"l": "1", **opt})
    sn.prepare("a-wl", "p-wl", {"l": "value-2", **opt})
    sn.view("v-wl", "p-wl", {"l": "value-3", **opt})
    sn.prepare("a-np-wl", "", {"l": "value-2", **opt})
    root = 'labels."containerd.io/gc.root"==check-walk'
    cases: list[tuple[set[str], list[str]]] = [
        ({"a-np", "p", "a", "v", "p-wl", "a-wl", "v-wl", "a-np-wl"}, [root]),
        ({"a-np", "a", "a-wl", "a-np-wl"}, [f"kind==active,{root}"]),
        ({"v", "v-wl"}, [f"kind==view,{root}"]),
        ({"p", "p-wl"}, [f"kind==committed,{root}"]),
        ({"p", "a-np-wl"}, ["name==p", "name==a-np-wl"]),
        ({"a-wl"}, ["name==a-wl,labels.l"]),
        ({"a", "v"}, ["parent==p"]),
        ({"a", "v", "a-wl", "v-wl"}, ['parent!=""']),
        ({"p-wl", "a-wl", "v-wl", "a-np-wl"}, ["labels.l"]),
        ({"a-wl", "a-np-wl"}, ["labels.l==value-2"]),
    ]
    for expected, filters in cases:
        assert {i.name for i in sn.walk(filters)} == expected, filters
    with pytest.raises(errdefs.InvalidArgument):
        sn.walk(["name=="])


def check_layer_file_update(ctx: SuiteContext) -> None:
    l1 = apply_all(
        create_dir("/etc", 0o700),
        create_file("/etc/hosts", b"mydomain 10.0.0.1", 0o644),
        create_file("/etc/profile", b"PATH=/usr/bin", 0o644),
    )
    l2 = apply_all(
        create_file("/etc/hosts", b"mydomain 10.0.0.2", 0o644),
        create_file("/etc/profile", b"PATH=/usr/bin", 0o666),
        create_dir("/root", 0o700),
        create_file("/root/.bashrc", b"PATH=/usr/sbin:/usr/bin", 0o644),
    )
    # Twice, across a second boundary: mtime granularity must not hide a change.
    for _ in range(2):
        check_snapshots(ctx, l1, l2)
        now = time.time()
        time.sleep(int(now) + 1 - now)


def check_remove_directory_in_lower_layer(ctx: SuiteContext) -> None:
    check_snapshots(
        ctx,
        apply_all(create_dir("/lib", 0o700), create_file("/lib/hidden", b"", 0o644)),
        apply_all(
            remove_all("/lib"),
            create_dir("/lib", 0o700),
            create_file("/lib/not-hidden", b"", 0o644),
        ),
        apply_all(create_file("/lib/newfile", b"", 0o644)),
    )


def check_chown(ctx: SuiteContext) -> None:
    check_snapshots(
        ctx,
        apply_all(
            create_dir("/opt", 0o700),
            create_dir("/opt/a", 0o700),
            create_dir("/opt/a/b", 0o700),
            create_file("/opt/a/b/file.txt", b"hello", 0o644),
        ),
        apply_all(
            chown("/opt", 1, 1),
            chown("/opt/a", 1, 1),
            chown("/opt/a/b", 1, 1),
            chown("/opt/a/b/file.txt", 1, 1),
        ),
    )


def check_directory_permission_on_commit(ctx: SuiteContext) -> None:
    check_snapshots(
        ctx,
        apply_all(
            *(create_dir(f"/dir{i}", 0o700) for i in range(1, 6)),
            create_file("/dir4/f1", b"...", 0o644),
            create_file("/dir5/f1", b"...", 0o644),
            chown("/dir1", 1, 1),
            chown("/dir2", 1, 1),
            chown("/dir3", 1, 1),
            chown("/dir5", 1, 1),
            chown("/dir5/f1", 1, 1),
        ),
        apply_all(
            chown("/dir2", 0, 0),
            remove_all("/dir3"),
            chown("/dir4", 1, 1),
            chown("/dir4/f1", 1, 1),
        ),
        apply_all(
            create_dir("/dir3", 0o700),
            chown("/dir3", 1, 1),
            remove_all("/dir5"),
            create_dir("/dir5", 0o700),
            chown("/dir5", 1, 1),
        ),
    )


def check_remove_intermediate_snapshot(ctx: SuiteContext) -> None:
    sn, work = ctx.sn, ctx.work
    base, committed_base = str(work / "base"), str(work / "committed-base")
    prepare_mount_apply_commit(ctx, base, "", committed_base)
    intermediate, committed_inter = str(work / "intermediate"), str(work / "committed-inter")
    sn.prepare(intermediate, committed_base, OPT)
    sn.commit(committed_inter, intermediate, OPT)
    top = str(work / "toplayer")
    sn.prepare(top, committed_inter, OPT)
    with pytest.raises(errdefs.FailedPrecondition, match="cannot remove snapshot with child"):
        sn.remove(committed_inter)
    sn.remove(top)
    sn.remove(committed_inter)
    sn.remove(committed_base)


def check_deleted_files_in_child_snapshot(ctx: SuiteContext) -> None:
    check_snapshots(
        ctx,
        apply_all(create_file("/foo", b"foo\n", 0o777), create_file("/foobar", b"foobar\n", 0o777)),
        apply_all(remove_all("/foobar")),
        apply_all(),
    )


def check_move_file_from_lower_layer(ctx: SuiteContext) -> None:
    check_snapshots(
        ctx,
        apply_all(
            create_dir("/dir1", 0o700),
            create_file("/dir1/f1", b"Hello", 0o644),
            create_dir("dir2", 0o700),
            create_file("dir2/f2", b"...", 0o644),
        ),
        apply_all(
            create_dir("/dir3", 0o700),
            create_file("/dir3/f1", b"Hello", 0o644),
            remove_all("/dir1"),
            link("dir2/f2", "dir3/f2"),
            remove_all("dir2/f2"),
        ),
    )


def check_rename(ctx: SuiteContext) -> None:
    changes: list[Applier] = []
    if ctx.name != "overlayfs":  # overlay renames directories only with redirect_dir
        changes.append(rename("/dir1", "/dir2"))
    changes += [
        create_file("/somefiles/f1-overwrite", b"new content 1", 0o644),
        rename("/somefiles/f1-overwrite", "/somefiles/f1"),
        rename("/somefiles/f2", "/somefiles/f3"),
    ]
    check_snapshots(
        ctx,
        apply_all(
            create_dir("/dir1", 0o700),
            create_dir("/somefiles", 0o700),
            create_file("/somefiles/f1", b"was here first!", 0o644),
            create_file("/somefiles/f2", b"nothing interesting", 0o644),
        ),
        apply_all(*changes),
    )


def check_view_readonly(ctx: SuiteContext) -> None:
    committed = str(ctx.work / "committed")
    prepare_mount_apply_commit(ctx, str(ctx.work / "preparing"), "", committed)
    view = str(ctx.work / "view")
    with mounted(ctx.sn.view(view, committed, OPT), Path(view)) as root:
        with pytest.raises(OSError) as info:
            (root / "testfile").write_bytes(b"testcontent")
        assert info.value.errno == errno.EROFS
        assert sorted(os.listdir(root)) == ["file-" + committed.replace("/", "_")]


def check_stat_in_walk(ctx: SuiteContext) -> None:
    sn, prefix = ctx.sn, "stats-in-walk-"
    sn.prepare(f"{prefix}c1-a", "", OPT)
    sn.commit(f"{prefix}c1", f"{prefix}c1-a", OPT)
    sn.prepare(f"{prefix}c2-a", f"{prefix}c1", OPT)
    sn.commit(f"{prefix}c2", f"{prefix}c2-a", OPT)
    sn.prepare(f"{prefix}a1", f"{prefix}c2", OPT)
    sn.view(f"{prefix}v1", f"{prefix}c2", OPT)
    seen = []
    for info in sn.walk():
        assert sn.stat(info.name) == info
        seen.append(info.name)
    assert sorted(seen) == [f"{prefix}{n}" for n in ("a1", "c1", "c2", "v1")]


def check_close_twice(ctx: SuiteContext) -> None:
    ctx.sn.prepare("before-close", "", OPT)
    ctx.sn.close()
    ctx.sn.close()
    with pytest.raises(errdefs.Unavailable):
        ctx.sn.stat("before-close")


def check_root_permission(ctx: SuiteContext) -> None:
    preparing = str(ctx.work / "preparing")
    with mounted(ctx.sn.prepare(preparing, "", OPT), Path(preparing)) as root:
        assert os.stat(root).st_mode & 0o777 == 0o755


def check_128_layers_mount(ctx: SuiteContext) -> None:
    sn, work = ctx.sn, ctx.work
    appliers = [
        apply_all(
            create_file("/bottom", b"way at the bottom\n", 0o777),
            create_file("/overwriteme", b"FIRST!\n", 0o777),
            create_dir("/ADDHERE", 0o755),
            create_dir("/ONLYME", 0o755),
            create_file("/ONLYME/bottom", b"bye!\n", 0o777),
        )
    ]
    for i in range(1, 128):
        appliers.append(
            apply_all(
                create_file("/overwriteme", f"{i} WAS HERE!\n".encode(), 0o777),
                create_file(f"/ADDHERE/file-{i}", b"same\n", 0o755),
                remove_all("/ONLYME"),
                create_dir("/ONLYME", 0o755),
                create_file(f"/ONLYME/file-{i}", b"only me!\n", 0o777),
            )
        )
    flat = work / "flat"
    flat.mkdir(mode=0o777)
    parent = ""
    for i, applier in enumerate(appliers):
        preparing = work / f"prepare-layer-{i}"
        with mounted(sn.prepare(str(preparing), parent, OPT), preparing) as root:
            check_directory_equal(flat, root)
            applier(flat)
            applier(root)
            check_directory_equal(flat, root)
        parent = str(work / f"committed-{i}")
        sn.commit(parent, str(preparing), OPT)
    view = work / "fullview"
    with mounted(sn.view(str(view), parent, OPT), view) as root:
        check_directory_equal(flat, root)


CASES: dict[str, Callable[[SuiteContext], None]] = {
    "Basic": check_basic,
    "StatActive": check_stat_active,
    "StatComitted": check_stat_committed,
    "TransitivityTest": check_transitivity,
    "PreareViewFailingtest": check_prepare_view_failing,
    "Update": check_update,
    "Remove": check_remove,
    "Walk": check_walk,
    "LayerFileupdate": check_layer_file_update,
    "RemoveDirectoryInLowerLayer": check_remove_directory_in_lower_layer,
    "Chown": check_chown,
    "DirectoryPermissionOnCommit": check_directory_permission_on_commit,
    "RemoveIntermediateSnapshot": check_remove_intermediate_snapshot,
    "DeletedFilesInChildSnapshot": check_deleted_files_in_child_snapshot,
    "MoveFileFromLowerLayer": check_move_file_from_lower_layer,
    "Rename": check_rename,
    "ViewReadonly": check_view_readonly,
    "StatInWalk": check_stat_in_walk,
    "CloseTwice": check_close_twice,
    "RootPermission": check_root_permission,
    "128LayersMount": check_128_layers_mount,
}


def check_snapshotter(name: str, sn: Snapshotter, work: Path, case: str) -> None:
    """Run one containerd conformance case against ``sn`` (containerd ``SnapshotterSuite``)."""
    CASES[case](SuiteContext(name=name, sn=sn, work=work))

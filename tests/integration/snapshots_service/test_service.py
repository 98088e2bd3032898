"""The ``snapshots.*`` service of a real daemon: containerd's suite through the
client (overlayfs and native), garbage collection, namespaces, pyctr, and bad
input over raw msgpack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from pycontainerd.api import errdefs
from pycontainerd.client import Client
from pycontainerd.metadata import Database, tables
from pycontainerd.snapshots import Kind, OverlaySnapshotter
from tests.integration.daemon import DaemonProcess, RawConnection, RemoteError
from tests.integration.snapshots.conformance import CASES, check_snapshotter

from .conftest import unmount_below

ROOT = {"containerd.io/gc.root": "2026-01-01T00:00:00Z"}
OVERLAY = "io.containerd.snapshotter.v1.overlayfs"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("pcdsn", numbered=True)).start()
    try:
        yield d
    finally:
        d.stop()
        unmount_below(d.base)


def _collect(c: Client) -> None:
    """A collection that started after this call, finished (a sync lease delete)."""
    lease = c.leases.create().id
    c.leases.delete(lease, sync=True)


def _directory(mount_source: str) -> Path:
    """``<root>/snapshots/<id>`` of a snapshot with no parent (bound ``<id>/fs``)."""
    return Path(mount_source).parent


@pytest.mark.usefixtures("umask0")
@pytest.mark.parametrize("snapshotter", ["overlayfs", "native"])
@pytest.mark.parametrize("case", list(CASES))
def test_suite_over_the_wire(
    case: str, snapshotter: str, shared: DaemonProcess, scratch: Path
) -> None:
    work = scratch / "work"
    work.mkdir()
    with Client(shared.address, namespace=f"suite-{snapshotter}-{case.lower()}") as c:
        check_snapshotter(snapshotter, c.snapshots(snapshotter), work, case)


def test_btrfs_is_skipped_and_the_service_is_loaded(shared: DaemonProcess) -> None:
    with Client(shared.address) as c:
        plugins = {(p.type, p.id): p for p in c.plugins()}
    btrfs = plugins[("io.containerd.snapshotter.v1", "btrfs")]
    assert btrfs.init_err is not None and btrfs.init_err.code == "FailedPrecondition"
    assert "btrfs" in btrfs.init_err.message
    for key in [
        ("io.containerd.snapshotter.v1", "overlayfs"),
        ("io.containerd.grpc.v1", "snapshots"),
    ]:
        assert plugins[key].init_err is None, key
    assert plugins[("io.containerd.snapshotter.v1", "overlayfs")].exports["root"].endswith(OVERLAY)


def test_gc_removes_unreferenced_and_keeps_roots_leases_and_parents(
    shared: DaemonProcess,
) -> None:
    with Client(shared.address, namespace="gc-snapshots") as c:
        sn = c.snapshots()
        lonely = _directory(sn.prepare("lonely", "")[0].source)
        rooted = _directory(sn.prepare("rooted", "", ROOT)[0].source)
        building = c.leases.create().id  # keeps "base" until its child exists
        with_lease = c.snapshots()
        with_lease.lease = building
        with_lease.prepare("base-tmp", "")
        with_lease.commit("base", "base-tmp")  # no root: its rooted child keeps it
        sn.prepare("child", "base", ROOT)
        c.leases.delete(building)
        lease = c.leases.create().id
        leased = c.snapshots()
        leased.lease = lease
        held = _directory(leased.prepare("leased", "")[0].source)
        _collect(c)
        with pytest.raises(errdefs.NotFound):
            sn.stat("lonely")
        assert not lonely.exists()  # removed from the backend, and cleaned up
        assert {i.name for i in sn.walk()} == {"rooted", "base", "child", "leased"}
        assert rooted.is_dir() and held.is_dir()
        res = c.leases.list_resources(lease)
        assert [(r.type, r.id) for r in res] == [("snapshots/overlayfs", "leased")]

        c.leases.delete(lease, sync=True)  # releases "leased"
        assert {i.name for i in sn.walk()} == {"rooted", "base", "child"}
        assert not held.exists()

        sn.remove("child")
        _collect(c)
        assert {i.name for i in sn.walk()} == {"rooted"}

        with c.with_lease(sync_delete=True):
            inside = c.snapshots()
            inside.prepare("in-block", "")
            _collect(c)
            assert inside.stat("in-block").kind.value == "active"
        with pytest.raises(errdefs.NotFound):
            sn.stat("in-block")


def test_namespaces_are_isolated_and_hold_their_snapshots(shared: DaemonProcess) -> None:
    with (
        Client(shared.address, namespace="iso-a") as a,
        Client(shared.address, namespace="iso-b") as b,
    ):
        a.snapshots().prepare("same", "", ROOT)
        a.snapshots().commit("shared-name", "same", ROOT)
        with pytest.raises(errdefs.NotFound):
            b.snapshots().stat("shared-name")
        with pytest.raises(errdefs.NotFound):
            b.snapshots().prepare("x", "shared-name", ROOT)
        b.snapshots().prepare("shared-name", "", ROOT)
        assert a.snapshots().stat("shared-name").kind.value == "committed"
        assert b.snapshots().stat("shared-name").kind.value == "active"
        assert [i.name for i in b.snapshots().walk()] == ["shared-name"]
        with pytest.raises(errdefs.FailedPrecondition, match="still has snapshots"):
            a.namespaces.delete("iso-a")
        a.snapshots().remove("shared-name")
        a.namespaces.delete("iso-a")


def _raw_error(c: RawConnection, method: str, req: Mapping[str, object], ns: str) -> RemoteError:
    with pytest.raises(RemoteError) as err:
        c.call(method, req, ns)
    return err.value


def test_bad_input_over_the_wire(shared: DaemonProcess) -> None:
    ns = "bad-snapshots"
    with RawConnection(shared.address) as c:
        for name, code_msg in (("", "snapshotter argument missing"), ("nope", "not loaded")):
            for method in ("snapshots.prepare", "snapshots.list", "snapshots.cleanup"):
                err = _raw_error(c, method, {"snapshotter": name, "key": "k"}, ns)
                assert err.code == "InvalidArgument" and code_msg in (err.message or "")
        sn = {"snapshotter": "overlayfs"}
        err = _raw_error(c, "snapshots.prepare", {**sn, "key": "k", "parent": "missing"}, ns)
        assert err.code == "NotFound"
        c.call("snapshots.prepare", {**sn, "key": "active", "labels": ROOT}, ns)
        err = _raw_error(c, "snapshots.prepare", {**sn, "key": "k", "parent": "active"}, ns)
        assert err.code == "InvalidArgument" and f"{ns}/" not in (err.message or "")
        err = _raw_error(c, "snapshots.view", {**sn, "key": "active"}, ns)
        assert err.code == "AlreadyExists"
        c.call("snapshots.commit", {**sn, "name": "base", "key": "active", "labels": ROOT}, ns)
        c.call("snapshots.view", {**sn, "key": "ro", "parent": "base", "labels": ROOT}, ns)
        err = _raw_error(c, "snapshots.remove", {**sn, "key": "base"}, ns)
        assert err.code == "FailedPrecondition" and "child" in (err.message or "")
        err = _raw_error(c, "snapshots.commit", {**sn, "name": "x", "key": "ro"}, ns)
        assert err.code == "FailedPrecondition"
        err = _raw_error(c, "snapshots.mounts", {**sn, "key": "base"}, ns)
        assert err.code == "FailedPrecondition"
        err = _raw_error(c, "snapshots.stat", {**sn, "key": "x"}, ns)
        assert err.code == "NotFound"
        update = {**sn, "info": {"name": "base"}, "update_mask": {"paths": ["parent"]}}
        assert _raw_error(c, "snapshots.update", update, ns).code == "InvalidArgument"
        update = {**sn, "info": {"name": "base", "kind": "sideways"}}
        assert _raw_error(c, "snapshots.update", update, ns).code == "InvalidArgument"

        before = sorted(os.listdir(shared.root))
        keys = ["../../../escape", "/etc/escape", "a/../../escape", "..", "./x/../.."]
        for key in keys:
            mounts = c.call("snapshots.prepare", {**sn, "key": key, "labels": ROOT}, ns)["mounts"]
            assert mounts[0]["source"].startswith(str(shared.root / OVERLAY / "snapshots") + "/")
            assert c.call("snapshots.stat", {**sn, "key": key}, ns)["info"]["name"] == key
        listed = c.call("snapshots.list", {**sn, "filters": ["kind==active"]}, ns)["info"]
        assert {i["name"] for i in listed} >= set(keys)
        for key in keys:
            c.call("snapshots.remove", {**sn, "key": key}, ns)
        assert sorted(os.listdir(shared.root)) == before
        for top in (shared.base, Path("/etc"), Path("/tmp")):
            assert not (top / "escape").exists()
        assert all(p.isdigit() for p in os.listdir(shared.root / OVERLAY / "snapshots"))


def pyctr(d: DaemonProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYCONTAINERD_ADDRESS=d.address, PYCONTAINERD_NAMESPACE="pyctr-sn")
    return subprocess.run(
        [sys.executable, "-m", "pycontainerd.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=check,
    )


def test_pyctr_snapshots(shared: DaemonProcess) -> None:
    assert pyctr(shared, "snapshots", "prepare", "layer-1-tmp").stdout == ""
    pyctr(shared, "snapshots", "commit", "layer-1", "layer-1-tmp")
    out = pyctr(shared, "snapshots", "prepare", "--mounts", "ctr-1", "layer-1").stdout
    assert out.startswith("mount -t overlay overlay  -o ") and "lowerdir=" in out
    pyctr(shared, "snapshot", "view", "ro-1", "layer-1")
    lines = pyctr(shared, "snapshots", "ls").stdout.splitlines()
    assert lines[0].split() == ["KEY", "PARENT", "KIND"]
    assert [line.split() for line in lines[1:]] == [
        ["ctr-1", "layer-1", "Active"],
        ["layer-1", "Committed"],
        ["ro-1", "layer-1", "View"],
    ]
    assert pyctr(shared, "snapshots", "tree").stdout.splitlines() == [
        " layer-1",
        "  \\_ ctr-1",
        "  \\_ ro-1",
    ]
    mounts = pyctr(shared, "snapshots", "mounts", "/mnt/x", "ro-1").stdout.strip()
    assert mounts.startswith("mount -t bind ") and " /mnt/x -o ro,rbind" in mounts
    info = json.loads(pyctr(shared, "snapshots", "info", "ctr-1").stdout)
    assert info["kind"] == "active" and info["parent"] == "layer-1"
    assert "containerd.io/gc.root" in info["labels"]  # pyctr's snapshots survive GC
    labelled = pyctr(shared, "snapshots", "label", "ctr-1", "team=a").stdout.strip()
    assert labelled.startswith("containerd.io/gc.root=") and labelled.endswith(",team=a")
    unlabelled = pyctr(shared, "snapshots", "label", "ctr-1", "team=").stdout.strip()
    assert unlabelled.startswith("containerd.io/gc.root=") and "team" not in unlabelled
    usage = pyctr(shared, "snapshots", "usage", "-b", "ctr-1").stdout.splitlines()
    assert usage[0].split() == ["KEY", "SIZE", "INODES"] and usage[1].split()[0] == "ctr-1"
    failed = pyctr(shared, "snapshots", "rm", "layer-1", check=False)
    assert failed.returncode == 1 and "FailedPrecondition" in failed.stderr
    pyctr(shared, "snapshots", "rm", "ctr-1", "ro-1", "layer-1")
    assert pyctr(shared, "snapshots", "ls").stdout.splitlines()[1:] == []
    bad = pyctr(shared, "snapshots", "--snapshotter", "nope", "ls", check=False)
    assert bad.returncode == 1 and "InvalidArgument" in bad.stderr
    native = pyctr(shared, "snapshots", "--snapshotter", "native", "prepare", "n", "--mounts")
    assert "native" in native.stdout
    pyctr(shared, "snapshots", "--snapshotter", "native", "rm", "n")


def test_concurrent_calls_on_one_key_and_one_name(shared: DaemonProcess) -> None:
    results: dict[str, list[str]] = {"prepare": [], "commit": []}
    lock = threading.Lock()

    def attempt(kind: str, fn: Callable[[], object]) -> None:
        try:
            fn()
            outcome = "ok"
        except errdefs.ErrdefsError as exc:
            outcome = exc.code
        with lock:
            results[kind].append(outcome)

    with Client(shared.address, namespace="racing") as c:
        clients = [Client(shared.address, namespace="racing") for _ in range(6)]
        try:
            threads = [
                threading.Thread(
                    target=attempt,
                    args=("prepare", lambda s=cl: s.snapshots().prepare("same", "", ROOT)),
                )
                for cl in clients
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(results["prepare"]) == ["AlreadyExists"] * 5 + ["ok"]
            for i, cl in enumerate(clients):
                cl.snapshots().prepare(f"k{i}", "", ROOT)
            threads = [
                threading.Thread(
                    target=attempt,
                    args=(
                        "commit",
                        lambda s=cl, i=i: s.snapshots().commit("one-name", f"k{i}", ROOT),
                    ),
                )
                for i, cl in enumerate(clients)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(results["commit"]) == ["AlreadyExists"] * 5 + ["ok"]
        finally:
            for cl in clients:
                cl.close()
        sn = c.snapshots()
        names = {i.name: i.kind.value for i in sn.walk()}
        assert names.pop("one-name") == "committed" and names.pop("same") == "active"
        assert sorted(names.values()) == ["active"] * 5  # the losers' keys are intact


def test_restart_keeps_snapshots_and_collects_crash_leftovers(base: Path) -> None:
    d = DaemonProcess(base).start()
    try:
        with Client(d.address, namespace="restart") as c:
            c.snapshots().prepare("kept-tmp", "", ROOT)
            c.snapshots().commit("kept", "kept-tmp", ROOT)
        d.kill()
        # as if the daemon had died between the backend step and the metadata one
        backend = OverlaySnapshotter(d.root / OVERLAY)
        try:
            crashed = _directory(backend.prepare("restart/999/crashed", "")[0].source)
        finally:
            backend.close()
        # and as if it had died after reserving a key, before the backend step
        db = Database.open(d.root / "io.containerd.metadata.v1.sqlite" / "meta.db")
        try:
            with db.transaction() as tx:
                tables.snapshots.insert(
                    tx, "restart", "overlayfs", "reserved", "restart/998/x", "", ROOT, None
                )
        finally:
            db.close()
        d.start()
        with Client(d.address, namespace="restart") as c:
            sn = c.snapshots()
            assert sn.stat("kept").kind is Kind.COMMITTED
            assert crashed.is_dir()  # nothing swept yet: the orphan is still there
            sn.prepare("reserved", "", ROOT)  # the leftover row was dropped at start-up
            sn.remove("reserved")
            sn.prepare("unrooted", "")  # gives the collector something to sweep
            _collect(c)
            assert not crashed.exists()
            assert [i.name for i in sn.walk()] == ["kept"]
    finally:
        d.stop()
        unmount_below(base)


def test_overlayfs_plugin_config(base: Path) -> None:
    d = DaemonProcess(base)
    elsewhere = base / "elsewhere"
    d.config_path.write_text(
        '[plugins."io.containerd.snapshotter.v1.overlayfs"]\n'
        f'root_path = "{elsewhere}"\n'
        'mount_options = ["volatile"]\n'
        "sync_remove = true\n"
        "upperdir_label = true\n"
        '[plugins."io.containerd.snapshotter.v1.native"]\n'
        'root_path = ["not", "a", "path"]\n'
    )
    d.start()
    try:
        with Client(d.address, namespace="config") as c:
            plugins = {(p.type, p.id): p for p in c.plugins()}
            overlay = plugins[("io.containerd.snapshotter.v1", "overlayfs")]
            assert overlay.init_err is None and overlay.exports["root"] == str(elsewhere)
            native = plugins[("io.containerd.snapshotter.v1", "native")].init_err
            assert native is not None and "root_path" in native.message
            sn = c.snapshots()
            first = _directory(sn.prepare("base-tmp", "", ROOT)[0].source)
            assert first.parent == elsewhere / "snapshots"
            sn.commit("base", "base-tmp", ROOT)
            upper = sn.stat("base").labels["containerd.io/snapshot/overlay.upperdir"]
            assert upper == str(first / "fs")
            (mounts,) = sn.prepare("child", "base", ROOT)
            assert mounts.type == "overlay" and mounts.options[0] == "volatile"
            view = _directory(sn.view("ro", "", ROOT)[0].source)
            sn.remove("ro")
            assert not view.exists()  # sync_remove: gone before any cleanup
            with pytest.raises(errdefs.InvalidArgument, match="not loaded: native"):
                c.snapshots("native").walk()
    finally:
        d.stop()
        unmount_below(base)

"""The namespaced (metadata) snapshotter over a real overlayfs backend, in process:
containerd's suite, namespaces, labels passed down, events, leases, and the
collector removing what the metadata no longer maps."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycontainerd.api import errdefs
from pycontainerd.content import LocalStore
from pycontainerd.metadata import (
    Database,
    DirectRunner,
    NamespacedSnapshotter,
    collect_garbage,
    collect_snapshots,
    events,
)
from pycontainerd.metadata.tables import leases, namespaces
from pycontainerd.snapshots import Info, Kind, OverlaySnapshotter
from tests.integration.snapshots.conformance import CASES, check_snapshotter

ROOT = {"containerd.io/gc.root": "2026-01-01T00:00:00Z"}


class Env:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.db = Database.open(base / "meta.db")
        self.runner = DirectRunner(self.db)
        self.backend_root = base / "io.containerd.snapshotter.v1.overlayfs"
        self.backend = OverlaySnapshotter(self.backend_root)
        self.content = LocalStore(base / "content")

    def sn(self, namespace: str, lease: str | None = None) -> NamespacedSnapshotter:
        return NamespacedSnapshotter(self.runner, self.backend, "overlayfs", namespace, lease=lease)

    def collect(self) -> None:
        def remove(removed: list[tuple[str, str, str, str]]) -> None:
            collect_snapshots(self.runner, {"overlayfs": self.backend}, removed)

        collect_garbage(self.runner, self.content, remove)

    def backend_keys(self) -> set[str]:
        return {i.name for i in self.backend.walk()}

    def close(self) -> None:
        self.backend.close()
        self.db.close()


@pytest.fixture
def env(scratch: Path) -> Iterator[Env]:
    e = Env(scratch)
    try:
        yield e
    finally:
        e.close()


@pytest.mark.usefixtures("umask0")
@pytest.mark.parametrize("case", list(CASES))
def test_suite_on_the_metadata_snapshotter(case: str, env: Env) -> None:
    work = env.base / "work"
    work.mkdir()
    check_snapshotter("overlayfs", env.sn("testsuite"), work, case)


def test_namespaces_are_isolated_and_backend_keys_are_namespaced(env: Env) -> None:
    a, b = env.sn("ns-a"), env.sn("ns-b")
    a.prepare("k-tmp", "", ROOT)
    a.commit("base", "k-tmp", ROOT)
    with pytest.raises(errdefs.NotFound):
        b.stat("base")
    with pytest.raises(errdefs.NotFound, match="parent snapshot base does not exist"):
        b.prepare("child", "base", ROOT)
    b.prepare("base", "", ROOT)  # the same key in another namespace is fine
    assert a.stat("base").kind is Kind.COMMITTED
    assert b.stat("base").kind is Kind.ACTIVE
    assert [i.name for i in a.walk()] == ["base"]
    assert [i.name for i in b.walk()] == ["base"]
    keys = env.backend_keys()
    assert len(keys) == 2
    assert {k.split("/", 2)[0] for k in keys} == {"ns-a", "ns-b"}
    assert all(k.split("/", 2)[2] == "base" and k.split("/")[1].isdigit() for k in keys)


def test_only_snapshot_labels_reach_the_backend(env: Env) -> None:
    sn = env.sn("labels")
    labels = {
        **ROOT,
        "containerd.io/snapshot/remote": "yes",
        "containerd.io/snapshot.ref": "sha256:target",
        "team": "a",
    }
    sn.prepare("active", "", labels)
    (backend,) = list(env.backend.walk())
    assert backend.labels == {
        "containerd.io/snapshot/remote": "yes",
        "containerd.io/snapshot.ref": "sha256:target",
    }
    assert sn.stat("active").labels == labels
    updated = sn.update(
        Info(
            kind=Kind.ACTIVE,
            name="active",
            created_at=backend.created_at,
            updated_at=backend.updated_at,
            labels={"containerd.io/snapshot/remote": ""},
        ),
        ["labels.containerd.io/snapshot/remote"],
    )
    assert "containerd.io/snapshot/remote" not in updated.labels
    assert env.backend.stat(backend.name).labels == {"containerd.io/snapshot.ref": "sha256:target"}
    assert [i.name for i in sn.walk(["labels.team==a"])] == ["active"]


def test_snapshot_ref_target_that_exists_is_already_exists(env: Env) -> None:
    sn = env.sn("refs")
    sn.prepare("extract", "", ROOT)
    sn.commit("sha256:layer", "extract", ROOT)
    with pytest.raises(errdefs.AlreadyExists, match="target snapshot"):
        sn.prepare("extract-2", "", {"containerd.io/snapshot.ref": "sha256:layer"})
    with pytest.raises(errdefs.NotFound):
        sn.stat("extract-2")
    sn.prepare("extract-3", "", {"containerd.io/snapshot.ref": "sha256:other", **ROOT})


def test_events_leases_and_namespace_delete(env: Env) -> None:
    with env.db.transaction() as tx:
        leases.create(tx, "evt", "l1", {})
    sn = env.sn("evt", lease="l1")
    sn.prepare("a", "")
    sn.commit("c", "a")
    sn.view("v", "c")
    sn.remove("v")
    topics = [(r.topic, r.event) for r in events.read_after(env.db, 0, 100) if r.namespace == "evt"]
    assert topics[-3:] == [  # a view publishes nothing, as in containerd
        ("/snapshot/prepare", {"key": "a", "parent": "", "snapshotter": "overlayfs"}),
        ("/snapshot/commit", {"key": "a", "name": "c", "snapshotter": "overlayfs"}),
        ("/snapshot/remove", {"key": "v", "snapshotter": "overlayfs"}),
    ]
    held = [(r.type, r.id) for r in leases.list_resources(env.db, "evt", "l1")]
    assert held == [("snapshots/overlayfs", "c")]
    with pytest.raises(errdefs.NotFound, match="lease"):
        env.sn("evt", lease="missing").prepare("b", "")
    with pytest.raises(errdefs.NotFound):
        sn.stat("b")  # the reservation was undone
    with (
        pytest.raises(errdefs.FailedPrecondition, match="still has snapshots"),
        env.db.transaction() as tx,
    ):
        namespaces.delete(tx, "evt")


def test_bad_input_is_rejected_and_leaves_nothing(env: Env) -> None:
    sn = env.sn("bad")
    with pytest.raises(errdefs.NotFound, match="parent snapshot nope does not exist"):
        sn.prepare("k", "nope")
    sn.prepare("active", "", ROOT)
    with pytest.raises(errdefs.InvalidArgument) as err:
        sn.prepare("k", "active")
    assert "bad/" not in err.value.message  # no backend key leaks
    with pytest.raises(errdefs.NotFound):
        sn.stat("k")
    with pytest.raises(errdefs.AlreadyExists):
        sn.view("active", "")
    sn.commit("base", "active", ROOT)
    sn.prepare("child", "base", ROOT)
    with pytest.raises(errdefs.FailedPrecondition, match="cannot remove snapshot with child"):
        sn.remove("base")
    sn.view("ro", "base", ROOT)
    with pytest.raises(errdefs.FailedPrecondition):
        sn.commit("x", "ro")
    with pytest.raises(errdefs.NotFound):
        sn.stat("x")
    with pytest.raises(errdefs.FailedPrecondition):
        sn.mounts("base")
    with pytest.raises(errdefs.InvalidArgument):
        sn.prepare("", "")
    with pytest.raises(errdefs.InvalidArgument):
        sn.update(sn.stat("child"), ["parent"])
    before = set(os.listdir(env.base))
    for key in ("../../escape", "/abs/path", "a/../../b", "..", "."):
        sn.prepare(key, "", ROOT)
        assert sn.stat(key).name == key
        sn.remove(key)
    assert set(os.listdir(env.base)) == before
    assert not (env.base.parent / "escape").exists()
    assert all(p.isdigit() for p in os.listdir(env.backend_root / "snapshots"))


def test_collector_removes_unreferenced_snapshots_and_orphans(env: Env) -> None:
    sn = env.sn("gc")
    sn.prepare("base-tmp", "", ROOT)
    sn.commit("base", "base-tmp")  # no root: kept only by its rooted child
    sn.prepare("child", "base", ROOT)
    sn.prepare("lonely", "")
    orphan = "gc/999/orphan"
    env.backend.prepare(orphan, "")
    env.collect()
    assert [i.name for i in sn.walk()] == ["base", "child"]
    assert len(env.backend_keys()) == 2
    assert orphan not in env.backend_keys()
    snapshots_dir = env.backend_root / "snapshots"
    assert len(os.listdir(snapshots_dir)) == 2  # cleanup() deleted the directories
    sn.update(
        Info(
            kind=Kind.ACTIVE,
            name="child",
            created_at=sn.stat("child").created_at,
            updated_at=sn.stat("child").updated_at,
        ),
        ["labels"],
    )
    env.collect()
    assert list(sn.walk()) == []
    assert env.backend_keys() == set()
    assert os.listdir(snapshots_dir) == []

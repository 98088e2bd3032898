"""The namespaced snapshotter over the native backend (no mounts, no root): backend
keys, containerd's error order, undoing a failed backend step, events, leases, and
the snapshot half of garbage collection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from pycontainerd.api import errdefs
from pycontainerd.metadata import (
    Database,
    DirectRunner,
    NamespacedSnapshotter,
    collect_snapshots,
    events,
    gc,
    inherited_labels,
    repair_snapshots,
    tables,
)
from pycontainerd.metadata.tables import leases, namespaces
from pycontainerd.snapshots import Kind, NativeSnapshotter

ROOT = {"containerd.io/gc.root": "2026-01-01T00:00:00Z"}


@attrs.define
class Env:
    db: Database
    runner: DirectRunner
    backend: NativeSnapshotter

    def sn(self, ns: str = "ns", lease: str | None = None) -> NamespacedSnapshotter:
        return NamespacedSnapshotter(self.runner, self.backend, "native", ns, lease=lease)

    def backend_keys(self) -> list[str]:
        return sorted(i.name for i in self.backend.walk())

    def topics(self, ns: str) -> list[str]:
        return [r.topic for r in events.read_after(self.db, 0, 1000) if r.namespace == ns]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    db = Database.open(tmp_path / "meta.db")
    backend = NativeSnapshotter(tmp_path / "native")
    try:
        yield Env(db, DirectRunner(db), backend)
    finally:
        backend.close()
        db.close()


def test_inherited_labels_are_the_snapshot_ones() -> None:
    labels = {
        "containerd.io/snapshot/x": "1",
        "containerd.io/snapshot.ref": "t",
        "containerd.io/snapshotter": "no",
        "containerd.io/gc.root": "no",
        "other": "no",
    }
    assert inherited_labels(labels) == {
        "containerd.io/snapshot/x": "1",
        "containerd.io/snapshot.ref": "t",
    }


def test_backend_keys_use_a_sequence_that_never_goes_back(env: Env) -> None:
    sn = env.sn()
    sn.prepare("a/../b", "", ROOT)
    sn.remove("a/../b")
    sn.prepare("a/../b", "", ROOT)
    sn.commit("c", "a/../b", ROOT)
    assert env.backend_keys() == ["ns/3/c"]
    assert env.sn("other").prepare("x", "", ROOT)
    assert env.backend_keys() == ["ns/3/c", "other/4/x"]
    rec = tables.snapshots.get(env.db, "ns", "native", "c")
    assert rec is not None and rec.backend_key == "ns/3/c"


def test_containerd_error_order(env: Env) -> None:
    sn = env.sn()
    sn.prepare("a", "", ROOT)
    with pytest.raises(errdefs.AlreadyExists, match='snapshot "a": already exists'):
        sn.prepare("a", "missing-parent")  # the key before the parent
    with pytest.raises(errdefs.AlreadyExists):
        sn.commit("a", "missing-key")  # the name before the key
    with pytest.raises(errdefs.NotFound, match="snapshot missing-key does not exist"):
        sn.commit("free", "missing-key")
    with pytest.raises(errdefs.NotFound, match="snapshot nope does not exist"):
        sn.remove("nope")
    with pytest.raises(errdefs.InvalidArgument):
        sn.commit("", "a")


def test_a_failed_backend_step_is_undone(env: Env) -> None:
    with env.db.transaction() as tx:
        leases.create(tx, "ns", "l", {})
    sn = env.sn(lease="l")
    sn.prepare("active", "", ROOT)
    sn.view("view-base", "", ROOT)
    before = env.topics("ns")
    with pytest.raises(errdefs.InvalidArgument) as err:
        sn.prepare("child", "active")  # the parent is not committed: the backend says so
    assert "ns/" not in err.value.message
    with pytest.raises(errdefs.FailedPrecondition):
        sn.commit("named", "view-base")  # a view cannot be committed
    with pytest.raises(errdefs.NotFound):
        sn.stat("child")
    with pytest.raises(errdefs.NotFound):
        sn.stat("named")
    assert env.topics("ns") == before
    held = sorted(r.id for r in leases.list_resources(env.db, "ns", "l"))
    assert held == ["active", "view-base"]
    assert len(env.backend_keys()) == 2


def test_commit_moves_the_lease_and_publishes(env: Env) -> None:
    with env.db.transaction() as tx:
        leases.create(tx, "ns", "l", {})
    sn = env.sn(lease="l")
    sn.prepare("k", "")
    sn.commit("n", "k", {"containerd.io/snapshot/x": "y", "team": "a"})
    assert [(r.type, r.id) for r in leases.list_resources(env.db, "ns", "l")] == [
        ("snapshots/native", "n")
    ]
    assert env.topics("ns")[-2:] == ["/snapshot/prepare", "/snapshot/commit"]
    info = sn.stat("n")
    assert (info.kind, info.parent, dict(info.labels)) == (
        Kind.COMMITTED,
        "",
        {"containerd.io/snapshot/x": "y", "team": "a"},
    )
    (backend,) = env.backend.walk()
    assert dict(backend.labels) == {"containerd.io/snapshot/x": "y"}


def test_update_bumps_time_and_syncs_inherited_labels(env: Env) -> None:
    sn = env.sn()
    sn.prepare("k", "", ROOT)
    first = sn.stat("k")
    second = sn.update(attrs.evolve(first, labels={"containerd.io/snapshot/a": "1"}), ["labels"])
    assert second.updated_at > first.updated_at
    assert second.created_at == first.created_at
    (backend,) = env.backend.walk()
    assert dict(backend.labels) == {"containerd.io/snapshot/a": "1"}
    third = sn.update(attrs.evolve(second, labels={"plain": "x"}), ["labels.plain"])
    assert third.updated_at > second.updated_at
    assert dict(third.labels) == {"containerd.io/snapshot/a": "1", "plain": "x"}
    with pytest.raises(errdefs.InvalidArgument):
        sn.update(attrs.evolve(third, name=""))


def test_namespace_delete_and_close(env: Env) -> None:
    sn = env.sn("busy")
    sn.prepare("k", "", ROOT)
    assert "snapshots" in namespaces.namespace_users()
    with (
        pytest.raises(errdefs.FailedPrecondition, match="still has snapshots"),
        env.db.transaction() as tx,
    ):
        namespaces.delete(tx, "busy")
    sn.close()
    sn.close()
    with pytest.raises(errdefs.Unavailable):
        sn.stat("k")
    with pytest.raises(errdefs.Unavailable):
        sn.prepare("other", "")


def test_collection_removes_children_first_orphans_too(env: Env) -> None:
    sn = env.sn()
    sn.prepare("base-tmp", "")
    sn.commit("base", "base-tmp")
    sn.prepare("mid-tmp", "base")
    sn.commit("mid", "mid-tmp")
    sn.prepare("top", "mid")
    sn.prepare("kept", "", ROOT)
    env.backend.prepare("ns/99/orphan", "")  # a crash between backend and metadata
    env.backend.prepare("not-ours", "")  # not a backend key of the metadata: left alone
    with env.db.transaction() as tx:
        result = gc.collect(tx)
    assert sorted(k for _, _, k, _ in result.snapshots) == ["base", "mid", "top"]
    stuck = collect_snapshots(env.runner, {"native": env.backend}, result.snapshots)
    assert stuck == []
    assert [i.name for i in sn.walk()] == ["kept"]
    kept = tables.snapshots.require(env.db, "ns", "native", "kept").backend_key
    assert env.backend_keys() == sorted([kept, "not-ours"])
    assert env.topics("ns").count("/snapshot/remove") == 3


def test_repair_drops_rows_whose_backend_step_never_ran(env: Env) -> None:
    sn = env.sn()
    sn.prepare("real", "", ROOT)
    with env.db.transaction() as tx:  # a crash right after a prepare's first transaction
        tables.snapshots.insert(tx, "ns", "native", "ghost", "ns/77/ghost", "", ROOT, None)
    with pytest.raises(errdefs.AlreadyExists):
        sn.prepare("ghost", "", ROOT)
    assert [i.name for i in sn.walk()] == ["real"]  # never listed: no backend snapshot
    assert repair_snapshots(env.runner, {"native": env.backend}) == [("ns", "ghost")]
    assert repair_snapshots(env.runner, {"native": env.backend}) == []
    sn.prepare("ghost", "", ROOT)
    assert sorted(i.name for i in sn.walk()) == ["ghost", "real"]

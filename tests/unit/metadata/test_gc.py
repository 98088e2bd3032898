"""Garbage collection: mark and sweep over the metadata, then the bytes."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

from pycontainerd.api.types import Descriptor
from pycontainerd.content import LocalStore
from pycontainerd.metadata import ContentStore, Database, DirectRunner, collect_garbage, events, gc
from pycontainerd.metadata.tables import images, leases

NS = "gc"
ROOT = {"containerd.io/gc.root": "2026-01-01T00:00:00Z"}


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@attrs.define
class Env:
    db: Database
    runner: DirectRunner
    backend: LocalStore
    store: ContentStore

    def put(self, data: bytes, labels: dict[str, str] | None = None, lease: str = "") -> str:
        store = ContentStore(self.runner, self.backend, NS, lease=lease or None)
        with store.writer(f"ref-{digest(data)}", total=len(data)) as w:
            w.write(data)
            return w.commit(len(data), "", labels)

    def alive(self, d: str) -> bool:
        return self.backend.exists(d) and any(i.digest == d for i in self.store.walk())

    def collect(self) -> gc.GcResult:
        return collect_garbage(self.runner, self.backend)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    db = Database.open(tmp_path / "meta.db")
    runner = DirectRunner(db)
    backend = LocalStore(tmp_path / "content")
    yield Env(db, runner, backend, ContentStore(runner, backend, NS))
    db.close()


def test_unreferenced_content_is_collected_and_its_bytes_removed(env: Env) -> None:
    kept = env.put(b"kept", ROOT)
    lost = env.put(b"lost")
    result = env.collect()
    assert result.content == [(NS, lost)]
    assert env.alive(kept)
    assert not env.alive(lost)
    assert not env.backend.exists(lost)
    deleted = [r for r in events.read_after(env.db, 0, 100) if r.topic == "/content/delete"]
    assert [r.event for r in deleted] == [{"digest": lost}]


def test_gc_ref_labels_chain_from_a_root(env: Env) -> None:
    layer = env.put(b"layer")
    config = env.put(b"config")
    manifest = env.put(
        b"manifest",
        {
            **ROOT,
            "containerd.io/gc.ref.content.config": config,
            "containerd.io/gc.ref.content.l.0": layer,
        },
    )
    stray = env.put(b"stray", {"containerd.io/gc.ref.content": layer})
    env.collect()
    assert all(env.alive(d) for d in (manifest, config, layer))
    assert not env.alive(stray)


def test_content_under_an_image_survives_until_the_image_is_deleted(env: Env) -> None:
    config = env.put(b"image config")
    manifest = env.put(b"image manifest", {"containerd.io/gc.ref.content.config": config})
    target = Descriptor(media_type="application/vnd.oci.image.manifest.v1+json", digest=manifest)
    target = attrs.evolve(target, size=len(b"image manifest"))
    env.runner.update(lambda tx: images.create(tx, NS, "example.com/app:1", target, {}))
    env.collect()
    assert env.alive(manifest) and env.alive(config)
    env.runner.update(lambda tx: images.delete(tx, NS, "example.com/app:1"))
    env.collect()
    assert not env.alive(manifest) and not env.alive(config)


def test_a_lease_protects_until_it_expires_or_is_deleted(env: Env) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    gone = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    env.runner.update(lambda tx: leases.create(tx, NS, "live", {gc.EXPIRE_LABEL: soon}))
    env.runner.update(lambda tx: leases.create(tx, NS, "expired", {gc.EXPIRE_LABEL: gone}))
    held = env.put(b"held by a live lease", lease="live")
    expired = env.put(b"held by an expired lease", lease="expired")
    result = env.collect()
    assert result.leases == [(NS, "expired")]
    assert env.alive(held)
    assert not env.alive(expired)
    env.runner.update(lambda tx: leases.delete(tx, NS, "live"))
    env.collect()
    assert not env.alive(held)


def test_a_flat_lease_keeps_its_objects_but_not_what_they_reference(env: Env) -> None:
    env.runner.update(lambda tx: leases.create(tx, NS, "flat", {gc.FLAT_LABEL: "1"}))
    child = env.put(b"child")
    parent = env.put(b"parent", {"containerd.io/gc.ref.content": child}, lease="flat")
    env.collect()
    assert env.alive(parent)
    assert not env.alive(child)


def test_a_lease_protects_every_step_of_a_pull_like_sequence(env: Env) -> None:
    env.runner.update(lambda tx: leases.create(tx, NS, "pull", {}))
    layers = []
    for i in range(3):
        layers.append(env.put(f"layer {i}".encode(), lease="pull"))
        env.collect()  # a collection between every step loses nothing
        assert all(env.alive(d) for d in layers)
    config = env.put(b"pulled config", lease="pull")
    refs = {f"containerd.io/gc.ref.content.l.{i}": d for i, d in enumerate(layers)}
    refs["containerd.io/gc.ref.content.config"] = config
    manifest = env.put(b"pulled manifest", refs, lease="pull")
    env.collect()
    target = Descriptor(
        media_type="application/vnd.oci.image.manifest.v1+json",
        digest=manifest,
        size=len(b"pulled manifest"),
    )
    env.runner.update(lambda tx: images.create(tx, NS, "pulled:latest", target, {}))
    env.runner.update(lambda tx: leases.delete(tx, NS, "pull"))
    env.collect()
    assert all(env.alive(d) for d in [*layers, config, manifest])


def test_ingests_expire_unless_leased(env: Env) -> None:
    w = env.store.writer("fresh")
    w.write(b"partial")
    w.close()
    env.runner.update(
        lambda tx: tx.execute(
            "INSERT INTO content_ingests (namespace, ref, backend_ref, expected, expire_at)"
            " VALUES (?, 'stale', 'gc/999/stale', '', 0)",
            (NS,),
        )
    )
    stale = env.backend.writer("gc/999/stale")
    stale.write(b"stale bytes")
    stale.close()
    result = env.collect()
    assert result.ingests == ["gc/999/stale"]
    assert env.store.status("fresh").offset == len(b"partial")
    assert [s.ref for s in env.backend.list_statuses()] == [
        env.runner.view(
            lambda q: q.execute("SELECT backend_ref FROM content_ingests").fetchone()[0]
        )
    ]


def test_snapshot_edges_parents_and_labels(env: Env) -> None:
    def snap(key: str, parent: str, labels: dict[str, str]) -> None:
        from pycontainerd.metadata import _schema

        env.runner.update(
            lambda tx: tx.execute(
                "INSERT INTO namespaces (name, labels, created_at, updated_at)"
                " VALUES (?, ?, 0, 0) ON CONFLICT DO NOTHING",
                (NS, _schema.pack_labels({})),
            )
        )
        env.runner.update(
            lambda tx: tx.execute(
                "INSERT INTO snapshots VALUES (?, 'overlayfs', ?, ?, ?, ?, 0, 0)",
                (NS, key, f"{NS}/1/{key}", parent, _schema.pack_labels(labels)),
            )
        )

    blob = env.put(b"referenced by a snapshot")
    snap("base", "", {})
    snap("mid", "base", {"containerd.io/gc.ref.content": blob})
    snap("top", "mid", ROOT)
    snap("orphan", "", {})
    config = env.put(
        b"config with snapshot", {**ROOT, "containerd.io/gc.ref.snapshot.overlayfs": "x"}
    )
    removed: list[tuple[str, str, str, str]] = []
    result = collect_garbage(env.runner, env.backend, removed.extend)
    assert [(s[1], s[2]) for s in result.snapshots] == [("overlayfs", "orphan")]
    assert removed == result.snapshots
    assert env.alive(blob) and env.alive(config)
    topics = [r.topic for r in events.read_after(env.db, 0, 100)]
    assert "/snapshot/remove" in topics


def test_collection_concurrent_with_writes_keeps_every_leased_blob(env: Env) -> None:
    env.runner.update(lambda tx: leases.create(tx, NS, "busy", {}))
    written: list[str] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def collector() -> None:
        try:
            while not stop.is_set():
                env.collect()
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=collector)
    t.start()
    try:
        for i in range(60):
            written.append(env.put(f"concurrent {i}".encode() * 100, lease="busy"))
    finally:
        stop.set()
        t.join()
    assert errors == []
    env.collect()
    for d in written:
        assert env.alive(d)
        assert digest(env.backend.read_at(d, 0, 1 << 20)) == d

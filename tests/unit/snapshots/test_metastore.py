"""The snapshotters' sqlite metastore (containerd ``snapshots/storage``), no mounts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import attrs
import pytest

from pycontainerd.api import errdefs
from pycontainerd.snapshots import Kind, MetaStore, Usage


@pytest.fixture
def ms(tmp_path: Path) -> Iterator[MetaStore]:
    store = MetaStore.open(tmp_path / "metadata.db")
    yield store
    store.close()


def _chain(ms: MetaStore, depth: int) -> list[str]:
    """Commit ``depth`` stacked snapshots c0 <- c1 <- ...; their ids, base first."""
    ids = []
    parent = ""
    with ms.transaction(writable=True) as st:
        for i in range(depth):
            s = st.create_snapshot(Kind.ACTIVE, f"a{i}", parent)
            ids.append(st.commit_active(f"a{i}", f"c{i}", Usage(i, i)))
            assert ids[-1] == s.id
            parent = f"c{i}"
    return ids


def test_ids_from_a_sequence_and_parent_ids_immediate_first(ms: MetaStore) -> None:
    ids = _chain(ms, 3)
    assert ids == ["1", "2", "3"]
    with ms.transaction(writable=True) as st:
        s = st.create_snapshot(Kind.VIEW, "v", "c2")
    assert s == attrs.evolve(s, id="4", kind=Kind.VIEW, parent_ids=("3", "2", "1"))
    with ms.transaction(writable=False) as st:
        assert st.get_snapshot("v").parent_ids == ("3", "2", "1")
        assert st.id_map() == {"1": "c0", "2": "c1", "3": "c2", "4": "v"}


def test_ids_are_never_reused(ms: MetaStore) -> None:
    with ms.transaction(writable=True) as st:
        st.create_snapshot(Kind.ACTIVE, "a")
        st.remove("a")
        assert st.create_snapshot(Kind.ACTIVE, "a").id == "2"


def test_commit_keeps_id_parent_and_replaces_labels(ms: MetaStore) -> None:
    _chain(ms, 1)
    with ms.transaction(writable=True) as st:
        st.create_snapshot(Kind.ACTIVE, "k", "c0", {"from": "prepare"})
        _, before, _ = st.get_info("k")
        snapshot_id = st.commit_active("k", "n", Usage(10, 2), {"from": "commit"})
        got_id, info, usage = st.get_info("n")
    assert got_id == snapshot_id == "2"
    assert (info.kind, info.parent, dict(info.labels)) == (Kind.COMMITTED, "c0", {"from": "commit"})
    assert info.created_at >= before.created_at
    assert info.created_at.tzinfo is UTC
    assert usage == Usage(10, 2)


def test_errors(ms: MetaStore) -> None:
    _chain(ms, 1)
    with ms.transaction(writable=True) as st:
        st.create_snapshot(Kind.ACTIVE, "a")
        st.create_snapshot(Kind.VIEW, "v")
        with pytest.raises(errdefs.InvalidArgument):
            st.create_snapshot(Kind.COMMITTED, "x")
        with pytest.raises(errdefs.NotFound):
            st.create_snapshot(Kind.ACTIVE, "x", "nope")
        with pytest.raises(errdefs.InvalidArgument):
            st.create_snapshot(Kind.ACTIVE, "x", "a")
        with pytest.raises(errdefs.AlreadyExists):
            st.create_snapshot(Kind.VIEW, "c0")
        with pytest.raises(errdefs.FailedPrecondition):
            st.commit_active("v", "x", Usage())
        with pytest.raises(errdefs.AlreadyExists):
            st.commit_active("a", "v", Usage())
        with pytest.raises(errdefs.NotFound):
            st.commit_active("nope", "x", Usage())
        # containerd checks the name first: a taken name wins over a bad key.
        with pytest.raises(errdefs.AlreadyExists):
            st.commit_active("nope", "c0", Usage())
        with pytest.raises(errdefs.AlreadyExists):
            st.commit_active("v", "c0", Usage())
        with pytest.raises(errdefs.FailedPrecondition, match="not active or view"):
            st.get_snapshot("c0")
        st.create_snapshot(Kind.ACTIVE, "child", "c0")
        with pytest.raises(errdefs.FailedPrecondition, match="cannot remove snapshot with child"):
            st.remove("c0")
        assert st.remove("child") == ("4", Kind.ACTIVE)
        assert st.remove("c0") == ("1", Kind.COMMITTED)
        with pytest.raises(errdefs.NotFound):
            st.remove("c0")


def test_failed_transaction_rolls_back(ms: MetaStore) -> None:
    with pytest.raises(RuntimeError), ms.transaction(writable=True) as st:
        st.create_snapshot(Kind.ACTIVE, "a")
        raise RuntimeError("backend failed")
    with ms.transaction(writable=False) as st:
        assert st.id_map() == {}


def test_update_info_paths(ms: MetaStore) -> None:
    with ms.transaction(writable=True) as st:
        st.create_snapshot(Kind.ACTIVE, "a", labels={"l1": "v1", "l2": "v2"})
        _, info, _ = st.get_info("a")
        assert info.created_at == info.updated_at
        changed = attrs.evolve(info, labels={"l1": "x", "l3": "y"})
        new = st.update_info(changed, ["labels.l1", "labels.l2"])
        assert dict(new.labels) == {"l1": "x"}
        assert new.updated_at >= info.updated_at
        assert st.get_info("a")[1] == new
        replaced = st.update_info(attrs.evolve(info, labels={"only": "1"}))
        assert dict(replaced.labels) == {"only": "1"}
        with pytest.raises(errdefs.InvalidArgument, match="parent"):
            st.update_info(info, ["parent"])
        with pytest.raises(errdefs.InvalidArgument):
            st.update_info(attrs.evolve(info, labels={"k" * 5000: "v"}))
        with pytest.raises(errdefs.NotFound):
            st.update_info(attrs.evolve(info, name="nope"))


def test_walk_filters(ms: MetaStore) -> None:
    _chain(ms, 1)
    with ms.transaction(writable=True) as st:
        st.create_snapshot(Kind.ACTIVE, "a", "c0", {"team": "x"})
        st.create_snapshot(Kind.VIEW, "v", "", {"team.sub": "y"})
    with ms.transaction(writable=False) as st:
        assert [i.name for i in st.walk_info()] == ["a", "c0", "v"]
        assert [i.name for i in st.walk_info(["kind==view"])] == ["v"]
        assert [i.name for i in st.walk_info(["parent==c0", "name==v"])] == ["a", "v"]
        assert [i.name for i in st.walk_info(["labels.team.sub==y"])] == ["v"]
        assert [i.name for i in st.walk_info(['parent==""'])] == ["c0", "v"]
        with pytest.raises(errdefs.InvalidArgument):
            st.walk_info(["kind=="])


def test_survives_reopen(tmp_path: Path) -> None:
    store = MetaStore.open(tmp_path / "metadata.db")
    _chain(store, 2)
    store.close()
    store.close()
    with pytest.raises(errdefs.Unavailable):
        store.transaction(writable=False).__enter__()
    again = MetaStore.open(tmp_path / "metadata.db")
    try:
        with again.transaction(writable=True) as st:
            assert st.get_info("c1")[1].parent == "c0"
            assert st.create_snapshot(Kind.ACTIVE, "x", "c1").id == "3"
    finally:
        again.close()


def test_transactions_from_threads_are_serialised(ms: MetaStore) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                with ms.transaction(writable=True) as st:
                    st.create_snapshot(Kind.ACTIVE, f"t{n}-{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with ms.transaction(writable=False) as st:
        assert sorted(map(int, st.id_map())) == list(range(1, 81))


def test_kind_parse() -> None:
    assert Kind.parse("Committed") is Kind.COMMITTED
    assert Kind.parse("view") is Kind.VIEW
    assert Kind.ACTIVE.value == "active"
    with pytest.raises(errdefs.InvalidArgument):
        Kind.parse("unknown")

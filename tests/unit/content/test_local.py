"""The local store, with containerd's content test suite cases that need no metadata."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from pycontainerd.api import errdefs
from pycontainerd.content import LocalStore


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "io.containerd.content.v1.content")


def test_writer_commit_info_read(store: LocalStore) -> None:
    data = b"hello content" * 1000
    with store.writer("ref-1", total=len(data), expected=digest(data)) as w:
        w.write(data[:100])
        w.write(data[100:])
        assert w.status().offset == len(data)
        assert w.commit(len(data), digest(data)) == digest(data)
    info = store.info(digest(data))
    assert info.size == len(data)
    assert store.read_at(digest(data), 5, 8) == data[5:13]
    path = store.blob_path(digest(data))
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert path == store.root / "blobs" / "sha256" / digest(data)[7:]
    assert [i.digest for i in store.walk()] == [digest(data)]
    assert store.list_statuses() == []


def test_commit_exists(store: LocalStore) -> None:
    data = b"x"
    with store.writer("a") as w:
        w.write(data)
        w.commit()
    with pytest.raises(errdefs.AlreadyExists):
        store.writer("b", expected=digest(data))
    with store.writer("c") as w:
        w.write(data)
        with pytest.raises(errdefs.AlreadyExists):
            w.commit()
    assert not store.ingest_path("c").exists()


def test_commit_error_state(store: LocalStore) -> None:
    with store.writer("bad") as w:
        w.write(b"abc")
        with pytest.raises(errdefs.FailedPrecondition, match="unexpected commit size"):
            w.commit(size=4)
    with store.writer("bad") as w:
        assert w.status().offset == 3
        with pytest.raises(errdefs.FailedPrecondition, match="unexpected commit digest"):
            w.commit(expected=digest(b"abd"))


def test_resume_after_close_and_after_a_crash(store: LocalStore) -> None:
    data = os.urandom(3 << 20)
    with store.writer("resume", total=len(data)) as w:
        w.write(data[: 1 << 20])
    # a crash: a fresh store object over the same directory, as after a daemon restart
    again = LocalStore(store.root)
    st = again.status("resume")
    assert (st.ref, st.offset, st.total) == ("resume", 1 << 20, len(data))
    with again.writer("resume") as w:
        assert w.offset == 1 << 20
        w.write(data[1 << 20 :])
        assert w.commit(len(data), digest(data)) == digest(data)


def test_resume_truncate(store: LocalStore) -> None:
    with store.writer("t") as w:
        w.write(b"garbage")
    with store.writer("t") as w:
        w.truncate(0)
        w.write(b"good")
        assert w.commit(expected=digest(b"good")) == digest(b"good")
        with pytest.raises(errdefs.FailedPrecondition, match="closed"):
            w.write(b"more")


def test_second_writer_of_a_ref_is_unavailable(store: LocalStore) -> None:
    w = store.writer("locked")
    with pytest.raises(errdefs.Unavailable, match="locked"):
        store.writer("locked")
    w.close()
    store.writer("locked").close()


def test_total_mismatch_is_refused(store: LocalStore) -> None:
    store.writer("tot", total=10).close()
    with pytest.raises(errdefs.FailedPrecondition, match="total 11"):
        store.writer("tot", total=11)
    store.writer("tot", total=10).close()


def test_small_blob_and_abort(store: LocalStore) -> None:
    with store.writer("small") as w:
        w.write(b"")
        assert w.commit(0, digest(b"")) == digest(b"")
    store.writer("gone").close()
    store.abort("gone")
    with pytest.raises(errdefs.NotFound):
        store.abort("gone")
    with pytest.raises(errdefs.NotFound):
        store.status("gone")


def test_missing_blob_and_bad_digest(store: LocalStore) -> None:
    missing = digest(b"missing")
    for op in (store.info, store.delete):
        with pytest.raises(errdefs.NotFound):
            op(missing)
    with pytest.raises(errdefs.NotFound):
        store.read_at(missing, 0, 1)
    for bad in ("sha256:../../etc/passwd", "md5:abc", "sha256:" + "A" * 64, ""):
        with pytest.raises(errdefs.InvalidArgument):
            store.info(bad)
    with pytest.raises(errdefs.InvalidArgument):
        store.writer("")


def test_delete(store: LocalStore) -> None:
    with store.writer("d") as w:
        w.write(b"bye")
        dg = w.commit()
    store.delete(dg)
    assert list(store.walk()) == []

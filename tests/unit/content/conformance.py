"""containerd's content test suite (``content/testsuite/testsuite.go``), ported.

One suite, run against every :class:`~pycontainerd.content.Store`: the local
store (``test_local.py``), the namespaced metadata store
(``tests/unit/metadata/test_content_store.py``) and the store over the wire
through the client (``tests/integration/test_content.py``). A test module
parametrizes over :data:`CASES` (and :data:`NAMESPACE_CASES` where the store
has namespaces) and hands each case a :class:`Fixture`.
"""

from __future__ import annotations

import hashlib
import io
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from pycontainerd.api import errdefs
from pycontainerd.content import Info, Store, copy

GC_ROOT = "containerd.io/gc.root"
EMPTY = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
# Timestamps may come from another clock source (file times, another process):
# allow this much slack around a window.
SLACK = timedelta(milliseconds=50)


@attrs.define
class Fixture:
    """What a case gets: the store, and a way to reach other namespaces."""

    store: Store
    namespaced: Callable[[str], Store] | None = None
    """The same store in another namespace (metadata and wire stores)."""
    isolated: Callable[[str], Store] | None = None
    """Same, with containerd's ``content_sharing_policy = "isolated"``."""
    label_namespace: Callable[[str, dict[str, str]], None] | None = None
    """Set labels on a namespace (``containerd.io/namespace.shareable``)."""


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def now() -> datetime:
    return datetime.now(UTC)


def root_labels() -> dict[str, str]:
    return {GC_ROOT: now().isoformat()}


def check_window(value: datetime, start: datetime, end: datetime) -> None:
    assert start - SLACK <= value <= end + SLACK, (value, start, end)


def write_blob(store: Store, ref: str, data: bytes, labels: dict[str, str] | None = None) -> str:
    with store.writer(ref, total=len(data), expected=digest(data)) as w:
        w.write(data)
        return w.commit(len(data), digest(data), labels or root_labels())


def check_info(store: Store, data: bytes, labels: dict[str, str] | None = None) -> Info:
    info = store.info(digest(data))
    assert info.digest == digest(data)
    assert info.size == len(data)
    if labels is not None:
        assert dict(info.labels) == labels
    with store.reader_at(digest(data)) as r:
        assert r.size == len(data)
        assert r.read_at(0, len(data) + 10) == data
    return info


# -- cases --------------------------------------------------------------------


def case_writer(f: Fixture) -> None:
    data = [blob(256 + i, seed=i) for i in range(4)]
    for i, (with_size, with_digest) in enumerate(
        [(False, False), (True, False), (False, True), (True, True)]
    ):
        content = data[i]
        labels = {"name": f"writer-{i}", GC_ROOT: now().isoformat()}
        w = f.store.writer(
            f"writer-{i}",
            total=len(content) if with_size else 0,
            expected=digest(content) if with_digest else "",
        )
        for at in range(0, len(content), 32):  # containerd copies with a 32-byte buffer
            w.write(content[at : at + 32])
        start = now()
        w.commit(0, "", labels)
        end = now()
        assert w.digest() == digest(content)
        info = check_info(f.store, content, labels)
        check_window(info.created_at, start, end)
        check_window(info.updated_at, start, end)
    assert f.store.list_statuses() == []


def case_update_status(f: Fixture) -> None:
    content = blob(256, seed=10)
    w = f.store.writer("update-status", total=256, expected=digest(content))
    st = w.status()
    assert (st.ref, st.offset, st.total) == ("update-status", 0, 256)
    assert w.digest() == EMPTY
    started = st.started_at
    for upto in (64, 192, 256):
        before = now()
        w.write(content[w.status().offset : upto])
        after = now()
        st = w.status()
        assert st.offset == upto
        assert st.total == 256
        assert st.started_at == started
        check_window(st.updated_at, before, after)
        assert w.digest() == digest(content[:upto])
    w.commit(256, digest(content), root_labels())
    check_info(f.store, content)


def case_commit_exists(f: Fixture) -> None:
    content = blob(1024, seed=20)
    write_blob(f.store, "commit-exists-0", content)
    for i, expected in enumerate([digest(content), ""]):
        w = f.store.writer(f"commit-exists-{i + 1}")
        w.write(content)
        with pytest.raises(errdefs.AlreadyExists):
            w.commit(len(content), expected)
        w.close()
    with pytest.raises(errdefs.AlreadyExists):
        f.store.writer("commit-exists-3", expected=digest(content))


def case_resume(f: Fixture) -> None:
    content = blob(256, seed=30)
    w = f.store.writer("resume", total=256, expected=digest(content))
    w.write(content[:128])
    first = w.status()
    first_digest = w.digest()
    w.close()
    w = f.store.writer("resume", total=256, expected=digest(content))
    st = w.status()
    assert (st.ref, st.offset, st.total) == ("resume", 128, 256)
    assert st.started_at == first.started_at
    assert w.digest() == first_digest
    assert f.store.status("resume").offset == 128
    w.write(content[128:])
    assert w.status().offset == w.status().total == 256
    w.commit(0, "", root_labels())
    check_info(f.store, content)


def _resume_case(finish: str) -> Callable[[Fixture], None]:
    def case(f: Fixture) -> None:
        for size in (500, 5000, 50000):
            for percent in (0, 10, 50, 90, 100):
                # distinct bytes per variant: a daemon shares blobs across namespaces
                content = blob(size, seed=size + percent + 1000 * len(finish))
                prefix = size * percent // 100
                ref = f"resume-{finish}-{size}-{percent}"
                w = f.store.writer(ref, total=size, expected=digest(content))
                w.write(content[:prefix])
                w.close()
                w = f.store.writer(ref, total=size, expected=digest(content))
                assert w.status().offset == prefix
                if finish == "truncate":
                    w.truncate(0)
                    assert w.status().offset == 0
                    w.write(content)
                    w.commit(size, digest(content), root_labels())
                elif finish == "discard":
                    w.write(content[prefix:])
                    w.commit(size, digest(content), root_labels())
                elif finish == "copy":
                    copy(w, _PlainReader(content), size, digest(content), root_labels())  # type: ignore[arg-type]
                elif finish == "copy-seeker":
                    copy(w, io.BytesIO(content), size, digest(content), root_labels())
                else:  # a source read only with pread-style calls
                    copy(w, _ReaderAtSource(content), size, digest(content), root_labels())  # type: ignore[arg-type]
                check_info(f.store, content)

    return case


class _PlainReader(io.RawIOBase):
    """A reader that cannot seek: ``copy`` must skip by reading."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self._data.read(len(buf))
        buf[: len(chunk)] = chunk
        return len(chunk)

    def seekable(self) -> bool:
        return False

    def seek(self, offset: int, whence: int = 0) -> int:
        raise OSError("not seekable")


class _ReaderAtSource:
    """A source read at explicit offsets, like ``io.NewSectionReader(readerAt)``."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._offset = 0

    def read_at(self, offset: int, size: int) -> bytes:
        return self._data[offset : offset + size]

    def seek(self, offset: int, whence: int = 0) -> int:
        self._offset = offset
        return offset

    def read(self, size: int = -1) -> bytes:
        chunk = self.read_at(self._offset, len(self._data) if size < 0 else size)
        self._offset += len(chunk)
        return chunk


def case_small_blob(f: Fixture) -> None:
    content = b"small!"
    write_blob(f.store, "small-blob", content)
    with f.store.reader_at(digest(content)) as r:
        assert r.read_at(0, len(content) + 1) == content
        assert r.read_at(2, 2) == b"al"


def case_labels(f: Fixture) -> None:
    content = blob(64, seed=40)
    root = now().isoformat()
    write_blob(f.store, "labels", content, {"k1": "v1", "k2": "v2", GC_ROOT: root})
    info = check_info(f.store, content, {"k1": "v1", "k2": "v2", GC_ROOT: root})
    time.sleep(0.01)
    replaced = {"k1": "newvalue", "k3": "v3", GC_ROOT: root}
    updated = f.store.update(attrs.evolve(info, labels=replaced))
    assert dict(updated.labels) == replaced
    assert updated.created_at == info.created_at
    assert updated.updated_at > info.updated_at
    assert dict(f.store.info(digest(content)).labels) == replaced
    updated = f.store.update(
        attrs.evolve(info, labels={"k1": "v1", GC_ROOT: root}), ["labels.k3", "labels.k1"]
    )
    assert dict(updated.labels) == {"k1": "v1", GC_ROOT: root}
    with pytest.raises(errdefs.InvalidArgument):
        f.store.update(info, ["size"])


def case_commit_error_state(f: Fixture) -> None:
    content = blob(4096, seed=50)
    other = blob(4096, seed=51)
    write_blob(f.store, "ces-existing", other)
    ref = "commit-error-state"
    w = f.store.writer(ref, total=0)
    w.write(content)
    with pytest.raises(errdefs.Unavailable):
        f.store.writer(ref)
    w.close()
    # committed content: AlreadyExists, with and without an expected digest
    for expected in (digest(other), ""):
        w2 = f.store.writer("ces-other-" + (expected[-4:] or "none"))
        w2.write(other)
        with pytest.raises(errdefs.AlreadyExists):
            w2.commit(len(other), expected)
        w2.close()
    w = f.store.writer(ref)
    assert w.status().offset == len(content)
    with pytest.raises(errdefs.FailedPrecondition):
        w.commit(len(content), digest(b"not the content"))
    w.close()
    w = f.store.writer(ref)
    assert w.status().offset == len(content)  # the data survived
    with pytest.raises(errdefs.FailedPrecondition):
        w.commit(len(content) + 1, "")
    w.close()
    w = f.store.writer(ref)
    w.write(b"more")
    w.commit(len(content) + 4, "", root_labels())
    check_info(f.store, content + b"more")
    w = f.store.writer("ces-truncate")
    w.write(b"abc")
    w.truncate(0)
    w.close()
    w = f.store.writer("ces-truncate")
    assert w.status().offset == 0
    w.write(b"xyz")
    w.commit(3, digest(b"xyz"), root_labels())
    assert f.store.info(digest(b"xyz")).size == 3


def case_abort_and_statuses(f: Fixture) -> None:
    w = f.store.writer("abort-me", total=10)
    w.write(b"12345")
    w.close()
    assert [s.ref for s in f.store.list_statuses(['ref=="abort-me"'])] == ["abort-me"]
    assert f.store.list_statuses(['ref=="other"']) == []
    f.store.abort("abort-me")
    with pytest.raises(errdefs.NotFound):
        f.store.status("abort-me")
    with pytest.raises(errdefs.NotFound):
        f.store.abort("abort-me")
    w = f.store.writer("abort-me")
    assert w.status().offset == 0
    w.close()
    f.store.abort("abort-me")


def case_walk_and_delete(f: Fixture) -> None:
    a, b = blob(10, seed=60), blob(20, seed=61)
    write_blob(f.store, "walk-a", a, {"team": "x", GC_ROOT: "1"})
    write_blob(f.store, "walk-b", b, {"team": "y", GC_ROOT: "1"})
    assert {i.digest for i in f.store.walk()} >= {digest(a), digest(b)}
    assert [i.digest for i in f.store.walk(["labels.team==x"])] == [digest(a)]
    assert [i.digest for i in f.store.walk([f"digest=={digest(b)}"])] == [digest(b)]
    f.store.delete(digest(a))
    with pytest.raises(errdefs.NotFound):
        f.store.info(digest(a))
    with pytest.raises(errdefs.NotFound):
        f.store.delete(digest(a))
    with pytest.raises(errdefs.InvalidArgument):
        f.store.info("sha256:xyz")
    with pytest.raises(errdefs.InvalidArgument):
        f.store.info("md5")


CASES: dict[str, Callable[[Fixture], None]] = {
    "Writer": case_writer,
    "UpdateStatus": case_update_status,
    "CommitExists": case_commit_exists,
    "Resume": case_resume,
    "ResumeTruncate": _resume_case("truncate"),
    "ResumeDiscard": _resume_case("discard"),
    "ResumeCopy": _resume_case("copy"),
    "ResumeCopySeeker": _resume_case("copy-seeker"),
    "ResumeCopyReaderAt": _resume_case("copy-reader-at"),
    "SmallBlob": case_small_blob,
    "Labels": case_labels,
    "CommitErrorState": case_commit_error_state,
    "AbortAndStatuses": case_abort_and_statuses,
    "WalkAndDelete": case_walk_and_delete,
}


# -- namespaces (metadata and wire stores) ------------------------------------------


def case_cross_namespace_append(f: Fixture) -> None:
    assert f.namespaced is not None
    content = blob(1000, seed=70)
    write_blob(f.store, "cna-1", content)
    ns2 = f.namespaced("cross-append")
    w = ns2.writer("cna-2", total=len(content), expected=digest(content))
    st = w.status()
    assert (st.offset, st.total) == (len(content), len(content))
    extra = content + b"appended"
    w.write(b"appended")
    w.commit(len(extra), digest(extra), root_labels())
    check_info(ns2, extra)
    check_info(f.store, content)
    with pytest.raises(errdefs.NotFound):
        ns2.info(digest(content))


def case_cross_namespace_share(f: Fixture) -> None:
    assert f.namespaced is not None
    content = blob(1000, seed=71)
    write_blob(f.store, "cns-1", content)
    ns2 = f.namespaced("cross-share")
    with pytest.raises(errdefs.NotFound):
        ns2.info(digest(content))
    w = ns2.writer("cns-2", total=len(content), expected=digest(content))
    assert w.status().offset == len(content)
    w.commit(len(content), digest(content), root_labels())
    check_info(ns2, content)
    check_info(f.store, content)


def case_cross_namespace_isolate(f: Fixture) -> None:
    assert f.isolated is not None
    content = blob(1000, seed=72)
    write_blob(f.store, "cni-1", content)
    ns2 = f.isolated("cross-isolate")
    w = ns2.writer("cni-2", total=len(content), expected=digest(content))
    assert w.status().offset == 0
    assert w.digest() == EMPTY
    w.write(content)
    w.commit(len(content), digest(content), root_labels())
    check_info(ns2, content)


def case_shared_namespace_isolate(f: Fixture) -> None:
    assert f.isolated is not None and f.label_namespace is not None
    shareable = f.isolated("shareable-ns")
    content = blob(1000, seed=73)
    write_blob(shareable, "sni-1", content)
    f.label_namespace("shareable-ns", {"containerd.io/namespace.shareable": "true"})
    ns2 = f.isolated("shared-isolate")
    w = ns2.writer("sni-2", total=len(content), expected=digest(content))
    assert w.status().offset == len(content)
    w.commit(len(content), digest(content), root_labels())
    check_info(ns2, content)


NAMESPACE_CASES: dict[str, Callable[[Fixture], None]] = {
    "CrossNamespaceAppend": case_cross_namespace_append,
    "CrossNamespaceShare": case_cross_namespace_share,
    "CrossNamespaceIsolate": case_cross_namespace_isolate,
    "SharedNamespaceIsolate": case_shared_namespace_isolate,
}

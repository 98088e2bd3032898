"""The content store over the wire: containerd's suite through the client, leases
and garbage collection in the daemon, and bad input (wrong digests and sizes,
locked refs, clients and daemons killed mid-write, a full disk)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

from pycontainerd.api import errdefs
from pycontainerd.client import Client
from tests.unit.content import conformance

from .daemon import REPO, DaemonProcess, RawConnection, RemoteError

ROOT = {"containerd.io/gc.root": "2026-01-01T00:00:00Z"}


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _start(base: Path, config: str = "") -> DaemonProcess:
    d = DaemonProcess(base)
    if config:
        d.config_path.write_text(config)
    return d.start()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = _start(tmp_path_factory.mktemp("pcdc", numbered=True))
    yield d
    d.stop()


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    config = '[plugins."io.containerd.metadata.v1.sqlite"]\ncontent_sharing_policy = "isolated"\n'
    d = _start(tmp_path_factory.mktemp("pcdi", numbered=True), config)
    yield d
    d.stop()


def _fixture(d: DaemonProcess, ns: str, clients: list[Client]) -> conformance.Fixture:
    def client(namespace: str) -> Client:
        c = Client(d.address, namespace=namespace)
        clients.append(c)
        return c

    def label(namespace: str, labels: dict[str, str]) -> None:
        client(namespace).namespaces.label(namespace, labels)

    return conformance.Fixture(
        store=client(ns).content,
        namespaced=lambda n: client(n).content,
        isolated=lambda n: client(n).content,
        label_namespace=label,
    )


@pytest.mark.parametrize(
    "case", [*conformance.CASES, "CrossNamespaceAppend", "CrossNamespaceShare"]
)
def test_conformance_over_the_wire(case: str, shared: DaemonProcess) -> None:
    clients: list[Client] = []
    cases = {**conformance.CASES, **conformance.NAMESPACE_CASES}
    try:
        cases[case](_fixture(shared, f"suite-{case.lower()}", clients))
    finally:
        for c in clients:
            c.close()


@pytest.mark.parametrize("case", ["CrossNamespaceIsolate", "SharedNamespaceIsolate"])
def test_conformance_isolated_over_the_wire(case: str, isolated: DaemonProcess) -> None:
    clients: list[Client] = []
    try:
        conformance.NAMESPACE_CASES[case](_fixture(isolated, f"suite-{case.lower()}", clients))
    finally:
        for c in clients:
            c.close()


# -- bad input -----------------------------------------------------------------------


def _blob_files(d: DaemonProcess) -> dict[str, bytes]:
    blobs = d.root / "io.containerd.content.v1.content" / "blobs" / "sha256"
    return {p.name: p.read_bytes() for p in blobs.iterdir()} if blobs.exists() else {}


def _assert_blobs_verified(d: DaemonProcess) -> None:
    for name, data in _blob_files(d).items():
        assert hashlib.sha256(data).hexdigest() == name, f"corrupt blob {name}"


def test_wrong_digest_or_size_at_commit_commits_nothing(shared: DaemonProcess) -> None:
    data = os.urandom(100_000)
    with Client(shared.address, namespace="bad-commit") as c:
        w = c.content.writer("bad", total=len(data))
        w.write(data)
        with pytest.raises(errdefs.FailedPrecondition, match="digest"):
            w.commit(len(data), digest(b"something else"))
        assert c.content.status("bad").offset == len(data)  # resumable
        w = c.content.writer("bad")
        with pytest.raises(errdefs.FailedPrecondition, match="size"):
            w.commit(len(data) + 1, "")
        with pytest.raises(errdefs.NotFound):
            c.content.info(digest(data))
        assert c.content.walk() == []
        w = c.content.writer("bad")
        assert w.commit(len(data), digest(data), ROOT) == digest(data)
    _assert_blobs_verified(shared)


def test_offsets_digests_and_refs_are_checked(shared: DaemonProcess) -> None:
    with RawConnection(shared.address) as c:
        ns = "bad-offsets"
        c.call("content.write", {"action": "write", "ref": "o", "offset": 0, "data": b"abc"}, ns)
        with pytest.raises(RemoteError) as err:
            c.call("content.write", {"action": "write", "ref": "o", "offset": 10, "data": b"x"}, ns)
        assert err.value.code == "OutOfRange"
        for bad in ("md5:abc", "sha256:XYZ", "sha256", "", "../../etc/passwd"):
            with pytest.raises(RemoteError) as err:
                c.call("content.info", {"digest": bad}, ns)
            assert err.value.code == "InvalidArgument", bad
        with pytest.raises(RemoteError) as err:
            c.call("content.write", {"action": "stat", "ref": "e", "expected": "sha1:00"}, ns)
        assert err.value.code == "InvalidArgument"
        with pytest.raises(RemoteError) as err:
            c.call("content.write", {"action": "write", "offset": 0}, ns)
        assert err.value.code == "InvalidArgument"
        with pytest.raises(RemoteError) as err:
            c.call("content.write", {"action": "flush", "ref": "o"}, ns)
        assert err.value.code == "InvalidArgument"
        with RawConnection(shared.address) as other:
            with pytest.raises(RemoteError) as err:
                other.call("content.write", {"action": "stat", "ref": "o"}, ns)
            assert err.value.code == "Unavailable"
        st = c.call("content.write", {"action": "stat", "ref": "o"}, ns)
        assert st["offset"] == 3 and st["digest"] == digest(b"abc")
        with pytest.raises(RemoteError) as err:
            c.call("content.read", {"digest": digest(b"abc")}, ns)
        assert err.value.code == "NotFound"
    with RawConnection(shared.address) as c:  # the first connection closed: unlocked
        assert c.call("content.status", {"ref": "o"}, "bad-offsets")["status"]["offset"] == 3


def test_read_ranges(shared: DaemonProcess) -> None:
    data = os.urandom(3 * (1 << 20) + 5)
    with Client(shared.address, namespace="reads") as c:
        with c.content.writer("r", total=len(data)) as w:
            w.write(data)
            w.commit(len(data), digest(data), ROOT)
        assert b"".join(c.content.read(digest(data))) == data
        assert b"".join(c.content.read(digest(data), 10, 20)) == data[10:30]
        assert b"".join(c.content.read(digest(data), -5, 3)) == data[:3]
        assert b"".join(c.content.read(digest(data), len(data) - 2, 100)) == data[-2:]
        with pytest.raises(errdefs.OutOfRange):
            list(c.content.read(digest(data), len(data) + 1))


_WRITER = """
import os, sys
from pycontainerd.client import Client
c = Client(sys.argv[1], namespace="killed")
w = c.content.writer("victim", total=int(sys.argv[2]))
w.write(os.urandom(4 << 20))
print("written", flush=True)
sys.stdin.read()
"""


def test_a_client_killed_mid_write_leaves_the_ingest_resumable(shared: DaemonProcess) -> None:
    total = 8 << 20
    with subprocess.Popen(
        [sys.executable, "-c", _WRITER, shared.address, str(total)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"written"
        proc.kill()
        proc.wait()
    with Client(shared.address, namespace="killed") as c:
        w = c.content.writer("victim")  # the dead client's lock is released
        st = w.status()
        assert st.offset == 4 << 20 and st.total == total
        rest = os.urandom(total - st.offset)
        w.write(rest)
        committed = w.commit(total, "", ROOT)
        assert c.content.info(committed).size == total
    _assert_blobs_verified(shared)


def test_daemon_killed_mid_write_and_mid_commit(tmp_path: Path) -> None:
    d = _start(tmp_path)
    try:
        data = os.urandom(24 << 20)
        with Client(d.address, namespace="crash") as c:
            w = c.content.writer("mid-write", total=len(data))
            w.write(data[: 8 << 20])
            w.status()  # everything written so far has landed
            d.kill()
            w.close()
        d.start()
        with Client(d.address, namespace="crash") as c:
            w = c.content.writer("mid-write")
            assert w.status().offset == 8 << 20  # resumes after the crash
            w.write(data[8 << 20 :])
            assert w.commit(len(data), digest(data), ROOT) == digest(data)
        _assert_blobs_verified(d)

        # mid-commit: kill right after the commit is sent, at a few delays
        for i, delay in enumerate((0.0, 0.005, 0.02, 0.05)):
            blob = os.urandom(16 << 20)
            ref = f"commit-{i}"
            ns = {"namespace": "crash"}
            with RawConnection(d.address) as conn:
                for at in range(0, len(blob), 1 << 20):
                    chunk = blob[at : at + (1 << 20)]
                    req = {"action": "write", "ref": ref, "offset": at, "data": chunk}
                    conn.response(conn.send_request("content.write", req, ns))
                commit = {
                    "action": "commit",
                    "ref": ref,
                    "offset": len(blob),
                    "total": len(blob),
                    "expected": digest(blob),
                    "labels": ROOT,
                }
                conn.send_request("content.write", commit, ns)
                time.sleep(delay)
                d.kill()
            _assert_blobs_verified(d)  # never a partial or unverified blob
            d.start()
            with Client(d.address, namespace="crash") as c:
                try:
                    info = c.content.info(digest(blob))
                except errdefs.NotFound:
                    st = c.content.status(ref)  # not committed: the ingest resumes
                    assert st.offset <= len(blob)
                    with c.content.writer(ref) as w:
                        w.truncate(0) if st.offset != len(blob) else None
                        if w.status().offset == 0:
                            w.write(blob)
                        assert w.commit(len(blob), digest(blob), ROOT) == digest(blob)
                    info = c.content.info(digest(blob))
                assert info.size == len(blob)
                assert b"".join(c.content.read(digest(blob))) == blob
            _assert_blobs_verified(d)
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.stop()


def test_a_full_disk_is_resource_exhausted_and_the_ingest_resumes(tmp_path: Path) -> None:
    root = tmp_path / "small"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(root)], check=True)
    try:
        d = DaemonProcess(tmp_path)
        d.root = root / "root"
        d.start()
        try:
            filler = root / "filler"
            filler.write_bytes(b"\0" * (12 << 20))
            data = os.urandom(16 << 20)
            with Client(d.address, namespace="full") as c:
                w = c.content.writer("big", total=len(data))
                with pytest.raises(errdefs.ResourceExhausted, match="no space left"):
                    w.write(data)
                    w.status()
                w.close()
                assert c.version().version  # still serving
                filler.unlink()
                w = c.content.writer("big")
                offset = w.status().offset
                assert 0 < offset < len(data)
                w.write(data[offset:])
                assert w.commit(len(data), digest(data), ROOT) == digest(data)
                assert b"".join(c.content.read(digest(data))) == data
            _assert_blobs_verified(d)
        finally:
            d.stop()
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


# -- leases and garbage collection in the daemon ------------------------------------


def _collect(c: Client) -> None:
    """A synchronous collection: delete a scratch lease with ``sync``."""
    c.leases.delete(c.leases.create().id, sync=True)


def _put(c: Client, data: bytes, labels: dict[str, str] | None = None) -> str:
    with c.content.writer(f"put-{digest(data)}", total=len(data)) as w:
        w.write(data)
        return w.commit(len(data), digest(data), labels)


def test_gc_collects_what_only_an_expired_lease_held(shared: DaemonProcess) -> None:
    with Client(shared.address, namespace="gc-expire") as c:
        soon = (datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lease = c.leases.create("short", {"containerd.io/gc.expire": soon})
        c.content.lease = lease.id
        held = _put(c, os.urandom(1000))
        c.content.lease = None
        rooted = _put(c, os.urandom(1000), ROOT)
        _collect(c)
        assert c.content.info(held).size == 1000
        time.sleep(1.2)
        _collect(c)
        with pytest.raises(errdefs.NotFound):
            c.content.info(held)
        assert held[7:] not in _blob_files(shared)
        assert c.content.info(rooted).size == 1000
        assert [x.id for x in c.leases.list()] == []


def test_gc_with_a_client_lease_through_a_pull_like_sequence(shared: DaemonProcess) -> None:
    with Client(shared.address, namespace="gc-pull") as c:
        with c.with_lease(sync_delete=True):
            layers = [_put(c, os.urandom(50_000)) for _ in range(3)]
            _collect(c)
            config = _put(c, os.urandom(2000))
            refs = {f"containerd.io/gc.ref.content.l.{i}": d for i, d in enumerate(layers)}
            manifest = _put(
                c, os.urandom(500), {**refs, "containerd.io/gc.ref.content.config": config}
            )
            _collect(c)
            for d in [*layers, config, manifest]:
                assert c.content.info(d)
            stray = _put(c, os.urandom(100))
            info = c.content.info(manifest)
            c.content.update(attrs.evolve(info, labels=ROOT), ["labels.containerd.io/gc.root"])
        # the lease is gone (deleted with sync): what the rooted manifest references stays
        for d in [*layers, config, manifest]:
            assert c.content.info(d)
        with pytest.raises(errdefs.NotFound):
            c.content.info(stray)
    _assert_blobs_verified(shared)


def test_gc_concurrent_with_writes_keeps_leased_blobs(shared: DaemonProcess) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def collector() -> None:
        try:
            with Client(shared.address, namespace="gc-busy") as g:
                while not stop.is_set():
                    _collect(g)
        except BaseException as exc:
            errors.append(exc)

    with Client(shared.address, namespace="gc-busy") as c:
        lease = c.leases.create("busy")
        c.content.lease = lease.id
        t = threading.Thread(target=collector)
        t.start()
        written = []
        try:
            for i in range(40):
                written.append(_put(c, os.urandom(20_000 + i)))
        finally:
            stop.set()
            t.join()
        assert errors == []
        _collect(c)
        for d in written:
            assert digest(b"".join(c.content.read(d))) == d
        resources = {r.id for r in c.leases.list_resources("busy")}
        assert set(written) <= resources

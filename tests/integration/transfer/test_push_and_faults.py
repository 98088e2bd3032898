"""transfer.push with cross-repo mounts; a lying registry; a pull cancelled mid-download."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycontainerd.api import errdefs
from pycontainerd.api.transfer import Progress
from pycontainerd.client import Client
from tests import imagebuild
from tests.integration.daemon import DaemonProcess
from tests.integration.remotes.registry import FakeServer, RegistryProcess, reply

from .conftest import MULTI


class ImageServer:
    """Serves one image as ``/v2/fake/...``: honestly, with one layer's bytes
    corrupted (``lie``), or with the big layer trickling out (``slow``)."""

    def __init__(self, image: imagebuild.BuiltImage) -> None:
        self.image = image
        self.mode = "honest"
        self.blobs = {b.desc.digest: b for b in image.blobs}

    def __call__(self, request: http.server.BaseHTTPRequestHandler, method: str, path: str) -> None:
        kind, _, name = path.removeprefix("/v2/fake/").partition("/")
        blob = self.image.target if name == "1" else self.blobs.get(name)
        if self.mode == "huge" and blob is self.image.target:
            data = blob.data[:-1] + b" " * (5 << 20) + b"}"
            blob = imagebuild.Blob.of(blob.desc.media_type, data)
        if blob is None or kind not in ("manifests", "blobs"):
            reply(request, 404)
            return
        headers = {"Content-Type": blob.desc.media_type, "Docker-Content-Digest": blob.desc.digest}
        big = max(self.image.layers, key=lambda b: b.desc.size)
        if kind == "blobs" and blob.desc.digest == big.desc.digest and method == "GET":
            if self.mode == "lie":
                corrupt = bytearray(blob.data)
                corrupt[len(corrupt) // 2] ^= 0xFF
                reply(request, 200, bytes(corrupt), headers)
                return
            if self.mode == "slow":
                start = int(request.headers.get("Range", "bytes=0-")[6:].split("-")[0])
                request.send_response(206 if start else 200)
                request.send_header("Content-Length", str(len(blob.data) - start))
                if start:
                    size = len(blob.data)
                    request.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                request.end_headers()
                try:
                    for off in range(start, len(blob.data), 16384):
                        request.wfile.write(blob.data[off : off + 16384])
                        request.wfile.flush()
                        time.sleep(0.05)
                except OSError:
                    pass
                return
        reply(request, 200, blob.data, headers)


@pytest.fixture
def fake(multi_image: imagebuild.BuiltImage) -> Iterator[tuple[ImageServer, FakeServer]]:
    handler = ImageServer(multi_image)
    server = FakeServer(handler)
    yield handler, server
    server.close()


def _nothing_left(c: Client) -> None:
    """After a collection, the namespace holds nothing: no image, lease, blob, snapshot."""
    c.leases.delete(c.leases.create().id, sync=True)
    assert c.images.list() == []
    assert c.leases.list() == []
    assert c.content.walk() == []
    assert c.content.list_statuses() == []
    assert list(c.snapshots("overlayfs").walk()) == []


def test_push_to_another_repository_mounts_the_blobs(
    client: Client, pushed: RegistryProcess, daemon: DaemonProcess
) -> None:
    source = f"{pushed.host}/{MULTI}"
    pulled = client.pull(source, plain_http=True, all_platforms=True, unpack=False)
    events: list[Progress] = []
    target = f"{pushed.host}/copies/multi:2"
    client.push(target, source_ref=source, plain_http=True, progress=events.append)
    by_event = {e.name: e.event for e in events if e.name.startswith(("layer-", "config-"))}
    assert set(by_event.values()) == {"mounted"}
    assert {e.event for e in events if e.name.startswith(("manifest-", "index-"))} == {"pushed"}
    assert client.leases.list() == []
    again: list[Progress] = []
    client.push(target, source_ref=source, plain_http=True, progress=again.append)
    last = {e.name: e.event for e in again if e.name.startswith(("layer-", "config-", "manifest-"))}
    assert set(last.values()) == {"exists"}

    with Client(daemon.address, namespace="push-check") as other:
        try:
            image = other.pull(target, plain_http=True, unpack=False)
            assert image.target.digest == pulled.target.digest
        finally:
            for rec in other.images.list():
                other.images.delete(rec.name)
            other.leases.delete(other.leases.create().id, sync=True)


def test_a_registry_that_lies_gets_nothing_committed(
    client: Client, fake: tuple[ImageServer, FakeServer], multi_image: imagebuild.BuiltImage
) -> None:
    handler, server = fake
    handler.mode = "lie"
    with pytest.raises(errdefs.FailedPrecondition):
        client.pull(f"{server.host}/fake:1", plain_http=True)
    big = max(multi_image.layers, key=lambda b: b.desc.size).desc.digest
    assert big not in {i.digest for i in client.content.walk()}
    assert f"layer-{big}" not in {s.ref for s in client.content.list_statuses()}  # aborted
    _nothing_left(client)


def test_a_cancelled_pull_leaves_nothing_referenced(
    client: Client, fake: tuple[ImageServer, FakeServer]
) -> None:
    handler, server = fake
    handler.mode = "slow"
    req = {"ref": f"{server.host}/fake:1", "plain_http": True}
    stream = client.conn.stream("transfer.pull", req, namespace=client.namespace)
    seen = []
    with pytest.raises(errdefs.Canceled):
        for item in stream:
            seen.append(item["event"])
            if item["event"] == "downloading" and item["progress"] > 0:
                stream.cancel()
    assert "downloading" in seen and "saved" not in seen
    _nothing_left(client)
    handler.mode = "honest"
    image = client.pull(f"{server.host}/fake:1", plain_http=True)
    assert image.is_unpacked()


def test_a_pull_resumes_after_the_daemon_was_killed(
    fake: tuple[ImageServer, FakeServer], multi_image: imagebuild.BuiltImage, workdir: Path
) -> None:
    handler, server = fake
    handler.mode = "slow"
    big = max(multi_image.layers, key=lambda b: b.desc.size).desc
    ref = f"{server.host}/fake:1"
    (workdir / "killed").mkdir()
    daemon = DaemonProcess(workdir / "killed").start()
    try:
        with Client(daemon.address, namespace="resume") as c:
            stream = c.conn.stream("transfer.pull", {"ref": ref, "plain_http": True})
            with pytest.raises(errdefs.Unavailable):
                for item in stream:
                    if item["event"] == "downloading" and item["progress"] > 0:
                        daemon.kill()
        daemon.start()
        with Client(daemon.address, namespace="resume") as c:
            [partial] = c.content.list_statuses()
            assert partial.ref == f"layer-{big.digest}" and 0 < partial.offset < big.size
            image = c.pull(ref, plain_http=True)
            assert image.is_unpacked()
            assert c.images.get(ref).target.digest == multi_image.target.desc.digest
            assert c.content.list_statuses() == []
        ranges = [
            h.get("Range") for m, p, h in server.requests if m == "GET" and p.endswith(big.digest)
        ]
        assert ranges == [None, f"bytes={partial.offset}-"]
    finally:
        daemon.stop()


def test_two_pulls_of_one_image_at_once_fetch_each_blob_once(
    client: Client, daemon: DaemonProcess, fake: tuple[ImageServer, FakeServer]
) -> None:
    handler, server = fake
    handler.mode = "slow"
    ref = f"{server.host}/fake:1"
    results: dict[int, object] = {}

    def pull(n: int) -> None:
        with Client(daemon.address, namespace=client.namespace) as c:
            try:
                results[n] = c.pull(ref, plain_http=True).target.digest
            except errdefs.ErrdefsError as exc:
                results[n] = exc

    threads = [threading.Thread(target=pull, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results[0] == results[1] == handler.image.target.desc.digest
    big = max(handler.image.layers, key=lambda b: b.desc.size).desc.digest
    gets = [p for m, p, _ in server.requests if m == "GET" and p.endswith(big)]
    assert len(gets) == 1
    assert len(list(client.snapshots("overlayfs").walk())) == 2


def test_a_manifest_over_4_mib_is_refused(
    client: Client, fake: tuple[ImageServer, FakeServer]
) -> None:
    handler, server = fake
    handler.mode = "huge"
    with pytest.raises(errdefs.ResourceExhausted):
        client.pull(f"{server.host}/fake:1", plain_http=True)
    _nothing_left(client)

"""Issue 6's bad registries and crashes: redirects, 500s that recover, a kill during unpack.

A :class:`~.proxy.RegistryProxy` in front of the real ``docker-registry``
redirects blob GETs (absolute and relative ``Location``, or for ever) and
answers 500s; a daemon of the test's own is SIGKILLed while it applies a
layer that takes a while to extract.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycontainerd import images
from pycontainerd.api import errdefs
from pycontainerd.client import Client
from pycontainerd.images import platforms
from pycontainerd.mount import with_temp_mount
from tests import imagebuild
from tests.integration.daemon import DaemonProcess
from tests.integration.remotes.registry import RegistryProcess

from .conftest import MULTI, push
from .proxy import STORAGE, RegistryProxy

LAYERED = "test/layered:1"
HEAVY_FILES = 3000


@pytest.fixture
def proxy(pushed: RegistryProcess) -> Iterator[RegistryProxy]:
    front = RegistryProxy(pushed.host)
    yield front
    front.close()


def _host_manifest(image: imagebuild.BuiltImage) -> images.Manifest:
    matcher = platforms.only(platforms.default_platform())
    for blob in image.manifests:
        if blob.desc.platform is not None and matcher.match(blob.desc.platform):
            return images.Manifest.parse(blob.data)
    raise AssertionError("no manifest for the host platform")


def _gets(proxy: RegistryProxy, digest: str) -> list[int]:
    """Statuses the proxy answered to the GETs of ``digest`` (its own storage URLs excluded)."""
    return [
        status
        for method, path, status in proxy.answers
        if method == "GET"
        and path.partition("?")[0].endswith(digest)
        and not path.startswith(STORAGE)
    ]


def _nothing_referenced(c: Client) -> None:
    """No image; once the leases are gone and garbage collected, nothing at all."""
    assert c.images.list() == []
    for lease in c.leases.list():
        c.leases.delete(lease.id)
    c.leases.delete(c.leases.create().id, sync=True)
    assert c.content.walk() == []
    assert c.content.list_statuses() == []
    assert list(c.snapshots("overlayfs").walk()) == []


@pytest.mark.parametrize(("mode", "manifests"), [("absolute", True), ("relative", False)])
def test_redirected_blobs_are_fetched_and_verified(
    client: Client,
    proxy: RegistryProxy,
    multi_image: imagebuild.BuiltImage,
    mode: str,
    manifests: bool,
) -> None:
    proxy.redirect = mode
    proxy.redirect_manifests = manifests
    image = client.pull(f"{proxy.host}/{MULTI}", plain_http=True)

    assert image.target.digest == multi_image.target.desc.digest
    assert image.is_unpacked()
    manifest = _host_manifest(multi_image)
    stored = {i.digest: i.size for i in client.content.walk()}
    for desc in (manifest.config, *manifest.layers):
        assert stored[desc.digest] == desc.size  # committed: size and digest verified
        assert _gets(proxy, desc.digest) == [307]
    assert _gets(proxy, image.target.digest) == ([307] if manifests else [200])
    if mode == "relative":
        followed = [p for m, p, s in proxy.answers if p.startswith(STORAGE) and s == 200]
        assert len(followed) == 1 + len(manifest.layers) + int(manifests)


def test_a_redirect_loop_fails_clearly_and_commits_nothing(
    client: Client, proxy: RegistryProxy, multi_image: imagebuild.BuiltImage
) -> None:
    proxy.redirect = "loop"
    started = time.monotonic()
    with pytest.raises(errdefs.Unknown, match="stopped after 10 redirects") as caught:
        client.pull(f"{proxy.host}/{MULTI}", plain_http=True)
    assert time.monotonic() - started < 15
    assert proxy.host in str(caught.value)
    config = _host_manifest(multi_image).config.digest
    # the request and 10 redirects followed (containerd stops at 10 too), no retry
    assert len(_gets(proxy, config)) == 11
    assert config not in {i.digest for i in client.content.walk()}
    _nothing_referenced(client)


def test_a_500_is_retried_once_per_get(
    client: Client, proxy: RegistryProxy, multi_image: imagebuild.BuiltImage
) -> None:
    manifest = _host_manifest(multi_image)
    blobs = [manifest.config, *manifest.layers]
    for desc in blobs:
        proxy.fail[desc.digest] = 1
    image = client.pull(f"{proxy.host}/{MULTI}", plain_http=True)
    assert image.is_unpacked()
    for desc in blobs:
        assert _gets(proxy, desc.digest) == [500, 200]


def test_a_mirror_answering_500_is_not_retried_the_next_host_serves(
    client: Client,
    proxy: RegistryProxy,
    pushed: RegistryProcess,
    multi_image: imagebuild.BuiltImage,
    workdir: Path,
) -> None:
    """containerd retries a 500 only on the last host; a mirror's falls through."""
    certs = workdir / f"certs.d-{client.namespace}"
    (certs / "registry.test").mkdir(parents=True)
    (certs / "registry.test" / "hosts.toml").write_text(
        f'server = "http://{pushed.host}"\n'
        f'[host."http://{proxy.host}"]\n'
        '  capabilities = ["pull", "resolve"]\n'
    )
    manifest = _host_manifest(multi_image)
    blobs = [manifest.config, *manifest.layers]
    for desc in blobs:
        proxy.fail[desc.digest] = 1
    image = client.pull(f"registry.test/{MULTI}", hosts_dir=str(certs))
    assert image.is_unpacked()
    for desc in blobs:
        assert _gets(proxy, desc.digest) == [500]  # then the server, directly
    assert _gets(proxy, image.target.digest) == [200]  # the mirror serves what it can


def test_a_500_on_head_is_not_retried(client: Client, proxy: RegistryProxy) -> None:
    """distribution answers 500 for deterministic failures of a HEAD: no retry."""
    proxy.fail_head = 1
    with pytest.raises(errdefs.Unavailable, match="500"):
        client.pull(f"{proxy.host}/{MULTI}", plain_http=True)
    heads = [s for m, p, s in proxy.answers if m == "HEAD"]
    assert heads == [500]
    _nothing_referenced(client)


def test_500s_that_outlast_the_retry_fail_and_the_next_pull_resumes(
    client: Client, proxy: RegistryProxy, multi_image: imagebuild.BuiltImage
) -> None:
    manifest = _host_manifest(multi_image)
    big, small = sorted(manifest.layers, key=lambda d: d.size, reverse=True)[:2]
    proxy.slow.add(big.digest)
    proxy.fail[small.digest] = 5
    proxy.hold_failures = True  # the 500s come once the big layer is well under way
    ref = f"{proxy.host}/{MULTI}"
    lease = client.leases.create().id  # the caller's: it keeps the partial ingest
    stream = client.conn.stream(
        "transfer.pull", {"ref": ref, "plain_http": True}, namespace=client.namespace, lease=lease
    )
    with pytest.raises(errdefs.Unavailable) as caught:
        for _ in stream:
            pass
    message = str(caught.value)
    assert proxy.host in message and "500" in message and "storage backend flaked" in message
    assert _gets(proxy, small.digest) == [500, 500]  # the retry, then no second one
    assert client.images.list() == []
    stored = {i.digest for i in client.content.walk()}
    assert small.digest not in stored and big.digest not in stored
    [partial] = [s for s in client.content.list_statuses() if s.ref == f"layer-{big.digest}"]
    assert 0 < partial.offset < big.size

    # the registry recovers, and now sends blobs to its storage: Range survives the redirect
    proxy.fail.clear()
    proxy.slow.clear()
    proxy.redirect = "relative"
    image = client.pull(ref, plain_http=True)
    assert image.is_unpacked()
    resumed = f"bytes={partial.offset}-"
    big_gets = [
        (p.startswith(STORAGE), h.get("Range"))
        for m, p, h in proxy.server.requests
        if m == "GET" and p.endswith(big.digest)
    ]
    assert big_gets == [(False, None), (False, resumed), (True, resumed)]
    assert client.content.list_statuses() == []
    client.leases.delete(lease, sync=True)
    assert client.images.get(ref).target.digest == multi_image.target.desc.digest


# -- the daemon killed while it applies a layer --------------------------------------------


@pytest.fixture(scope="module")
def layered(pushed: RegistryProcess) -> imagebuild.BuiltImage:
    """busybox; a layer of HEAVY_FILES files (slow to apply); a layer changing two of them."""
    heavy = {f"data/d{i // 100}/f{i}": b"heavy %d\n" % i for i in range(HEAVY_FILES)}
    top = imagebuild.files_layer({"data/d0/f0": b"changed\n", "data/.wh.d1": b""})
    layers = [imagebuild.busybox_layer(), imagebuild.files_layer(heavy), top]
    image = imagebuild.build_image(layers)
    push(pushed.host, LAYERED, image)
    return image


def _snapshot_dirs(daemon: DaemonProcess) -> set[str]:
    found = list(daemon.root.glob("*overlayfs*/snapshots"))
    assert len(found) == 1, found
    return {p.name for p in found[0].iterdir()}


def test_a_daemon_killed_during_unpack_leaves_no_half_unpacked_image(
    pushed: RegistryProcess, layered: imagebuild.BuiltImage, workdir: Path
) -> None:
    config = images.ImageConfig.parse(layered.configs[0].data)
    chain = images.chain_ids(config.diff_ids)
    heavy = images.Manifest.parse(layered.target.data).layers[1]
    ref = f"{pushed.host}/{LAYERED}"
    (workdir / "unpack-kill").mkdir()
    daemon = DaemonProcess(workdir / "unpack-kill").start()
    try:
        with (
            Client(daemon.address, namespace="k") as c,
            Client(daemon.address, namespace="k") as watcher,
        ):
            stream = c.conn.stream("transfer.pull", {"ref": ref, "plain_http": True}, namespace="k")
            killed_during: list[str] = []
            with pytest.raises(errdefs.Unavailable):
                for item in stream:
                    if item["event"] != "extracting" or item["name"] != f"layer-{heavy.digest}":
                        continue
                    deadline = time.monotonic() + 10
                    while not killed_during and time.monotonic() < deadline:
                        keys = [i.name for i in watcher.snapshots("overlayfs").walk()]
                        active = [k for k in keys if k.startswith("extract-")]
                        if active:
                            assert chain[1] not in keys
                            killed_during = active
                            daemon.kill()
            assert killed_during and killed_during[0].endswith(f" {chain[1]}")

        daemon.start()
        with Client(daemon.address, namespace="k") as c:
            sn = c.snapshots("overlayfs")
            infos = {i.name: i for i in sn.walk()}
            assert c.images.list() == []  # no image record before the chain is whole
            assert set(infos) == {chain[0], *killed_during}  # layer 0 committed, 1 half
            assert infos[chain[0]].parent == ""

            image = c.pull(ref, plain_http=True)
            assert image.is_unpacked() and image.rootfs() == chain
            infos = {i.name: i for i in sn.walk()}
            for i in range(1, len(chain)):
                assert infos[chain[i]].parent == chain[i - 1]
            sn.view("check", chain[-1])
            try:
                with with_temp_mount(sn.mounts("check")) as mounted:
                    root = Path(mounted)
                    assert (root / "bin" / "busybox").is_file()
                    assert (root / "data/d0/f0").read_bytes() == b"changed\n"
                    assert (root / "data/d0/f1").read_bytes() == b"heavy 1\n"
                    assert not (root / "data/d1").exists()
                    last = HEAVY_FILES - 1
                    assert (
                        root / f"data/d{last // 100}/f{last}"
                    ).read_bytes() == b"heavy %d\n" % last
            finally:
                sn.remove("check")

            # the killed job's lease (24 h) still holds the half snapshot; once it is gone
            # (expired, or removed as here) the collector leaves exactly the image's chain
            for lease in c.leases.list():
                c.leases.delete(lease.id)
            c.leases.delete(c.leases.create().id, sync=True)
            names = {i.name for i in sn.walk()}
            assert names == set(chain)
            assert len(_snapshot_dirs(daemon)) == len(chain)  # no orphan directory
            assert c.image(ref).is_unpacked()

            c.images.delete(ref)
            c.leases.delete(c.leases.create().id, sync=True)
            assert list(sn.walk()) == [] and _snapshot_dirs(daemon) == set()
            assert c.content.walk() == [] and c.content.list_statuses() == []
    finally:
        daemon.stop()

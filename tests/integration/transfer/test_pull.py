"""transfer.pull against a real docker-registry into a real daemon (overlayfs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pycontainerd import images
from pycontainerd.api import errdefs
from pycontainerd.api.transfer import Progress
from pycontainerd.client import Client
from pycontainerd.images import platforms
from pycontainerd.mount import with_temp_mount
from tests import imagebuild
from tests.integration.daemon import DaemonProcess
from tests.integration.remotes.registry import RegistryProcess

from .conftest import MULTI, PASSWORD, USER, ZSTD

HOST_PLATFORM = platforms.format(platforms.default_platform())


def _host_manifest(image: imagebuild.BuiltImage) -> imagebuild.Blob:
    for blob in image.manifests:
        assert blob.desc.platform is not None
        if platforms.only(platforms.default_platform()).match(blob.desc.platform):
            return blob
    raise AssertionError("no manifest for the host platform")


def _labels(c: Client) -> dict[str, dict[str, str]]:
    return {i.digest: dict(i.labels) for i in c.content.walk()}


def test_pull_selects_the_host_platform_and_unpacks_by_chain_id(
    client: Client, pushed: RegistryProcess, multi_image: imagebuild.BuiltImage
) -> None:
    events: list[Progress] = []
    ref = f"{pushed.host}/{MULTI}"
    image = client.pull(ref, plain_http=True, progress=events.append)

    assert image.name == ref
    assert image.target.digest == multi_image.target.desc.digest
    assert client.images.get(ref).target.digest == multi_image.target.desc.digest
    manifest = _host_manifest(multi_image)
    config = images.ImageConfig.parse(multi_image.configs[0].data)
    chain = images.chain_ids(config.diff_ids)
    assert image.rootfs() == chain

    # labels as containerd sets them: GC refs down the tree, sources, uncompressed, snapshot ref
    labels = _labels(client)
    source = {"containerd.io/distribution.source.127.0.0.1": "test/multi"}
    index = labels[multi_image.target.desc.digest]
    # every child of the index, as containerd 1.6 labels it, though one was fetched
    parsed_index = images.Index.parse(multi_image.target.data)
    assert index == {**images.child_labels(parsed_index.manifests), **source}
    assert manifest.desc.digest in index.values()
    parsed = images.Manifest.parse(manifest.data)
    assert labels[manifest.desc.digest] == {
        "containerd.io/gc.ref.content.config": parsed.config.digest,
        **{f"containerd.io/gc.ref.content.l.{i}": d.digest for i, d in enumerate(parsed.layers)},
        **source,
    }
    assert labels[parsed.config.digest] == {
        "containerd.io/gc.ref.snapshot.overlayfs": chain[-1],
        **source,
    }
    for layer, diff_id in zip(parsed.layers, config.diff_ids, strict=True):
        assert labels[layer.digest] == {"containerd.io/uncompressed": diff_id, **source}
    # only the host's manifest was fetched
    assert len(labels) == 2 + 2 + len(parsed.layers) - 1

    sn = client.snapshots("overlayfs")
    infos = {i.name: i for i in sn.walk()}
    assert set(infos) == set(chain)
    assert infos[chain[1]].parent == chain[0]
    assert infos[chain[1]].labels["containerd.io/snapshot.ref"] == chain[1]
    mounts = sn.view("check-view", chain[-1])
    try:
        with with_temp_mount(mounts) as root:
            assert os.access(Path(root) / "bin/busybox", os.X_OK)
            assert (Path(root) / "etc/motd").read_bytes() == b"hello\n"
    finally:
        sn.remove("check-view")

    kinds = [e.event for e in events]
    assert kinds[0] == f"Resolving from {ref}"
    assert kinds[-1] == f"Completed pull from {ref}"
    assert "saved" in kinds and "extracting" in kinds
    # the job's lease is gone
    assert client.leases.list() == []


def test_pull_twice_downloads_and_unpacks_nothing(client: Client, pushed: RegistryProcess) -> None:
    ref = f"{pushed.host}/{MULTI}"
    client.pull(ref, plain_http=True)
    events: list[Progress] = []
    client.pull(ref, plain_http=True, progress=events.append)
    kinds = {e.event for e in events}
    assert "downloading" not in kinds and "extracting" not in kinds
    assert "already exists" in kinds
    assert len(list(client.snapshots("overlayfs").walk())) == 2


def test_pull_all_platforms_fetches_every_manifest_and_unpacks_the_host_one(
    client: Client, pushed: RegistryProcess, multi_image: imagebuild.BuiltImage
) -> None:
    image = client.pull(f"{pushed.host}/{MULTI}", plain_http=True, all_platforms=True)
    labels = _labels(client)
    assert set(labels) == {b.desc.digest for b in multi_image.blobs}
    index = labels[multi_image.target.desc.digest]
    assert {
        index["containerd.io/gc.ref.content.m.0"],
        index["containerd.io/gc.ref.content.m.1"],
    } == {m.desc.digest for m in multi_image.manifests}
    assert image.is_unpacked("overlayfs")


def test_pull_of_another_platform_without_unpack(
    client: Client, pushed: RegistryProcess, multi_image: imagebuild.BuiltImage
) -> None:
    other = "linux/arm64" if HOST_PLATFORM != "linux/arm64" else "linux/amd64"
    image = client.pull(f"{pushed.host}/{MULTI}", plain_http=True, platform=other, unpack=False)
    assert image.config().architecture == other.split("/")[1]
    assert list(client.snapshots("overlayfs").walk()) == []
    wanted = next(
        m
        for m in multi_image.manifests
        if m.desc.platform and m.desc.platform.architecture == other.split("/")[1]
    )
    assert wanted.desc.digest in _labels(client)


def test_pull_zstd_layers(
    client: Client, pushed: RegistryProcess, zstd_image: imagebuild.BuiltImage
) -> None:
    image = client.pull(f"{pushed.host}/{ZSTD}", plain_http=True)
    assert image.target.media_type == images.MEDIA_TYPE_OCI_MANIFEST
    assert {layer.desc.media_type for layer in zstd_image.layers} == {
        images.MEDIA_TYPE_OCI_LAYER_ZSTD
    }
    config = images.ImageConfig.parse(zstd_image.configs[0].data)
    assert image.rootfs() == images.chain_ids(config.diff_ids)
    assert image.is_unpacked()
    assert image.size() == sum(b.desc.size for b in zstd_image.blobs)


def test_pull_with_basic_auth(client: Client, basic_registry: RegistryProcess) -> None:
    ref = f"{basic_registry.host}/{MULTI}"
    image = client.pull(ref, plain_http=True, user=f"{USER}:{PASSWORD}", unpack=False)
    assert image.name == ref
    with pytest.raises(errdefs.PermissionDenied) as caught:
        client.pull(ref, plain_http=True, user=f"{USER}:wrong", unpack=False)
    assert basic_registry.host in str(caught.value)
    assert "wrong" not in str(caught.value)


def test_pull_with_token_auth(client: Client, token_registry: RegistryProcess) -> None:
    ref = f"{token_registry.host}/{MULTI}"
    image = client.pull(ref, plain_http=True, user=(USER, PASSWORD))
    assert image.is_unpacked()


def _mirror(certs: Path, upstream: str) -> Path:
    (certs / "registry.test").mkdir(parents=True)
    (certs / "registry.test" / "hosts.toml").write_text(
        'server = "https://registry.test"\n'
        f'[host."http://{upstream}"]\n'
        '  capabilities = ["pull", "resolve"]\n'
    )
    return certs


def test_pull_through_a_hosts_dir_mirror(
    client: Client, pushed: RegistryProcess, workdir: Path
) -> None:
    certs = _mirror(workdir / f"certs.d-{client.namespace}", pushed.host)
    image = client.pull(f"registry.test/{MULTI}", hosts_dir=str(certs), unpack=False)
    assert image.name == f"registry.test/{MULTI}"
    labels = _labels(client)[image.target.digest]
    assert labels["containerd.io/distribution.source.registry.test"] == "test/multi"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"ref": "no-host-or:tag:here:"}, errdefs.InvalidArgument, "reference"),
        (
            {"ref": "@HOST@/test/multi:1", "platform": "a/b/c/d"},
            errdefs.InvalidArgument,
            "a/b/c/d",
        ),
        ({"ref": "@HOST@/test/multi:1", "platform": "windows/amd64"}, errdefs.NotFound, "platform"),
        ({"ref": "@HOST@/test/absent:1"}, errdefs.NotFound, "absent"),
        ({"ref": "@HOST@/test/multi:1", "snapshotter": "nope"}, errdefs.InvalidArgument, "nope"),
    ],
)
def test_pull_bad_input(
    client: Client,
    pushed: RegistryProcess,
    kwargs: dict[str, str],
    error: type[errdefs.ErrdefsError],
    match: str,
) -> None:
    ref = kwargs.pop("ref").replace("@HOST@", pushed.host)
    with pytest.raises(error, match=match):
        client.pull(ref, plain_http=True, **kwargs)  # type: ignore[arg-type]
    assert client.images.list() == []
    assert client.leases.list() == []


def test_image_unpack_from_the_client_into_another_snapshotter(
    client: Client, pushed: RegistryProcess
) -> None:
    ref = f"{pushed.host}/{MULTI}"
    image = client.pull(ref, plain_http=True, unpack=False)
    assert not image.is_unpacked("native")
    chain = image.unpack("native")
    assert chain == image.rootfs()
    assert image.is_unpacked("native") and not image.is_unpacked("overlayfs")
    _, manifest = image.manifest()
    config = client.content.info(manifest.config.digest)
    assert config.labels["containerd.io/gc.ref.snapshot.native"] == chain[-1]
    layer = client.content.info(manifest.layers[0].digest)
    assert layer.labels["containerd.io/uncompressed"] == image.config().diff_ids[0]
    # what the client made is referenced from the image: a collection keeps it
    client.leases.delete(client.leases.create().id, sync=True)
    assert {s.name for s in client.snapshots("native").walk()} == set(chain)
    assert image.unpack("native") == chain  # already unpacked: nothing to do


def test_the_daemons_config_path_is_the_default_hosts_dir(
    pushed: RegistryProcess, workdir: Path
) -> None:
    certs = _mirror(workdir / "daemon-certs.d", pushed.host)
    (workdir / "configured").mkdir()
    daemon = DaemonProcess(workdir / "configured")
    daemon.config_path.write_text(
        f'version = 2\n[plugins."io.containerd.grpc.v1.transfer"]\n  config_path = "{certs}"\n'
    )
    daemon.start()
    try:
        with Client(daemon.address, namespace="configured") as c:
            image = c.pull(f"registry.test/{MULTI}", unpack=False)
            assert image.target.digest == c.images.get(f"registry.test/{MULTI}").target.digest
    finally:
        daemon.stop()


def test_delete_and_collect_leaves_no_orphans(client: Client, pushed: RegistryProcess) -> None:
    ref = f"{pushed.host}/{MULTI}"
    client.pull(ref, plain_http=True)
    client.images.create("example.com/alias:1", client.images.get(ref).target)
    client.images.delete(ref, sync=True)
    assert len(list(client.snapshots("overlayfs").walk())) == 2  # the alias keeps all
    client.images.delete("example.com/alias:1", sync=True)
    assert client.content.walk() == []
    assert list(client.snapshots("overlayfs").walk()) == []
    assert client.leases.list() == []

"""transfer.import/export: OCI layout and docker-save tarballs, both ways with containerd."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from collections.abc import Collection, Iterator
from pathlib import Path

import pytest

from pycontainerd import images
from pycontainerd.api import errdefs
from pycontainerd.client import Client
from pycontainerd.images import platforms
from tests import imagebuild
from tests.integration.daemon import DaemonProcess
from tests.integration.remotes.registry import RegistryProcess

from .conftest import MULTI

HOST = platforms.format(platforms.default_platform())


def _tar_dir(directory: Path, out: Path, skip: Collection[str] = ()) -> Path:
    with tarfile.open(out, "w") as tar:
        for name in ("oci-layout", "index.json"):
            tar.add(directory / name, arcname=name)
        for blob in sorted((directory / "blobs" / "sha256").iterdir()):
            if f"sha256:{blob.name}" not in skip:
                tar.add(blob, arcname=f"blobs/sha256/{blob.name}")
    return out


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        out = {}
        for m in tar.getmembers():
            f = tar.extractfile(m)
            if f is not None:
                out[m.name] = f.read()
        return out


@pytest.fixture
def scratch(workdir: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    path = workdir / f"s-{request.node.name}"[:60]
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_export_then_import_in_another_namespace(
    client: Client,
    daemon: DaemonProcess,
    pushed: RegistryProcess,
    multi_image: imagebuild.BuiltImage,
    scratch: Path,
) -> None:
    ref = f"{pushed.host}/{MULTI}"
    pulled = client.pull(ref, plain_http=True)
    out = scratch / "out.tar"
    client.export(str(out), [ref])

    members = _members(out)
    assert json.loads(members["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(members["index.json"])
    [entry] = index["manifests"]
    assert entry["digest"] == multi_image.target.desc.digest
    assert entry["annotations"] == {
        "io.containerd.image.name": ref,
        "org.opencontainers.image.ref.name": "1",
    }
    [docker] = json.loads(members["manifest.json"])
    assert docker["RepoTags"] == [ref]
    config = pulled.manifest()[1].config
    assert docker["Config"] == "blobs/sha256/" + config.digest.split(":")[1]
    blobs = {n.split("/")[-1] for n in members if n.startswith("blobs/")}
    owned = {i.digest.split(":")[1] for i in client.content.walk()}
    assert blobs == owned  # the host's platform only: what the pull fetched

    with Client(daemon.address, namespace="import-target") as other:
        try:
            [image] = other.import_(str(out))
            assert image.name == ref
            assert image.target.digest == pulled.target.digest
            assert {i.digest for i in other.content.walk()} == {
                i.digest for i in client.content.walk()
            }
            assert image.rootfs() == pulled.rootfs()
            assert image.is_unpacked()
        finally:
            for rec in other.images.list():
                other.images.delete(rec.name)
            other.leases.delete(other.leases.create().id, sync=True)


def test_import_selects_a_platform_of_a_layout_missing_the_others(
    client: Client, multi_image: imagebuild.BuiltImage, scratch: Path
) -> None:
    multi_image.write_oci_layout(scratch / "layout", tag="v1")
    other = [
        m
        for m in multi_image.manifests
        if m.desc.platform is not None
        and not platforms.only(platforms.default_platform()).match(m.desc.platform)
    ]
    tarball = _tar_dir(scratch / "layout", scratch / "partial.tar", {other[0].desc.digest})
    [image] = client.import_(str(tarball), base_name="example.com/partial")
    assert image.name == "example.com/partial:v1"
    assert image.is_unpacked()
    with pytest.raises(errdefs.NotFound, match="not found in archive"):
        client.import_(str(tarball), base_name="example.com/partial", all_platforms=True)


def test_import_of_a_docker_save_tarball(client: Client, scratch: Path) -> None:
    layer = imagebuild.busybox_layer(compression="")
    built = imagebuild.build_image([layer], flavour="docker")
    config = built.configs[0]
    config_name = config.desc.digest.split(":")[1] + ".json"
    manifest = [{"Config": config_name, "RepoTags": ["busybox:saved"], "Layers": ["l0/layer.tar"]}]
    tarball = scratch / "saved.tar"
    with tarfile.open(tarball, "w") as tar:
        for name, data in (
            (config_name, config.data),
            ("l0/layer.tar", layer.tar),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    [image] = client.import_(str(tarball))
    assert image.name == "docker.io/library/busybox:saved"
    assert image.target.media_type == images.MEDIA_TYPE_DOCKER_SCHEMA2_MANIFEST
    assert image.rootfs() == [layer.diff_id]
    _, parsed = image.manifest()
    assert parsed.layers[0].media_type == images.MEDIA_TYPE_DOCKER_SCHEMA2_LAYER
    assert image.is_unpacked()


def test_import_refuses_unsafe_names_and_missing_blobs(client: Client, scratch: Path) -> None:
    evil = scratch / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("../escape")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(errdefs.InvalidArgument, match="unsafe name"):
        client.import_(str(evil))
    assert not (scratch.parent / "escape").exists()

    built = imagebuild.busybox_image()
    built.write_oci_layout(scratch / "layout")
    layer = built.layers[0].desc.digest
    tarball = _tar_dir(scratch / "layout", scratch / "missing.tar", {layer})
    with pytest.raises(errdefs.NotFound, match=layer):
        client.import_(str(tarball), base_name="example.com/missing")
    assert client.images.list() == []
    assert os.path.exists(tarball)

"""tests/imagebuild.py builds valid, deterministic images (used by pull and run tests)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from pycontainerd import images
from pycontainerd.images import platforms
from tests import imagebuild
from tests.requirements import require


@pytest.fixture(autouse=True)
def _need_busybox() -> None:
    require(imagebuild.BUSYBOX, "busybox-static")


def test_deterministic_and_self_consistent() -> None:
    one = imagebuild.busybox_image(for_platforms=("linux/amd64", "linux/arm64/v8"))
    two = imagebuild.busybox_image(for_platforms=("linux/amd64", "linux/arm64/v8"))
    assert [b.desc for b in one.blobs] == [b.desc for b in two.blobs]
    for blob in one.blobs:
        assert blob.desc.digest == "sha256:" + hashlib.sha256(blob.data).hexdigest()
        assert blob.desc.size == len(blob.data)
    index = images.Index.parse(one.target.data)
    assert [platforms.format(m.platform) for m in index.manifests if m.platform] == [
        "linux/amd64",
        "linux/arm64/v8",
    ]
    arm = images.select_manifest(index, platforms.only(platforms.parse("linux/aarch64")))
    kids = images.children(arm, one.blob(arm.digest))
    config = images.ImageConfig.parse(one.blob(kids[0].digest))
    assert (config.architecture, config.variant) == ("arm64", "v8")
    assert config.diff_ids == tuple(
        imagebuild.digest_of(imagebuild.decompress(one.blob(k.digest))) for k in kids[1:]
    )
    # blobs come children first: an index can be pushed in this order
    kinds = [b.desc.media_type for b in one.blobs]
    assert kinds[-1] == images.MEDIA_TYPE_OCI_INDEX
    assert images.child_labels(kids)["containerd.io/gc.ref.content.l.0"] == kids[1].digest


def test_busybox_layer_contents() -> None:
    layer = imagebuild.busybox_layer(compression="zstd", applets=("sh", "echo"))
    assert layer.blob.desc.media_type == images.MEDIA_TYPE_OCI_LAYER_ZSTD
    assert imagebuild.decompress(layer.blob.data) == layer.tar
    with tarfile.open(fileobj=io.BytesIO(layer.tar)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["bin/busybox"].mode == 0o755
    assert members["bin/sh"].issym() and members["bin/sh"].linkname == "busybox"
    assert members["tmp"].mode == 0o1777
    assert all(m.mtime == 0 and m.uid == 0 for m in members.values())


def test_files_layer_docker_flavour_and_config() -> None:
    layer = imagebuild.files_layer(
        {"etc/app/conf": b"x=1\n"}, symlinks={"usr/bin/app": "/bin/true"}, flavour="docker"
    )
    assert layer.blob.desc.media_type == images.MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_GZIP
    with tarfile.open(fileobj=io.BytesIO(layer.tar)) as tar:
        names = tar.getnames()
    assert names == ["etc", "etc/app", "usr", "usr/bin", "etc/app/conf", "usr/bin/app"]
    image = imagebuild.build_image(
        [layer], entrypoint=["/bin/sh", "-c"], cmd=["echo hi"], env=["A=1"], user="1000"
    )
    config = images.ImageConfig.parse(image.configs[0].data)
    assert config.config.entrypoint == ("/bin/sh", "-c")
    assert config.config.cmd == ("echo hi",)
    assert (config.config.env, config.config.user) == (("A=1",), "1000")
    assert image.target.desc.platform == config.platform
    assert platforms.default_comparer().match(config.platform)


def test_write_oci_layout(tmp_path: Path) -> None:
    image = imagebuild.busybox_image()
    layout = image.write_oci_layout(tmp_path / "layout", tag="v1")
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = images.Index.parse((layout / "index.json").read_bytes())
    assert index.manifests[0].digest == image.target.desc.digest
    assert index.manifests[0].annotations == {"org.opencontainers.image.ref.name": "v1"}
    for blob in image.blobs:
        path = layout / "blobs" / "sha256" / blob.desc.digest.split(":", 1)[1]
        assert path.read_bytes() == blob.data

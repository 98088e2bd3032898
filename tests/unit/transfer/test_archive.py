"""Image tarballs without a daemon: names, media types, unsafe members, round trips."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from pycontainerd import images, transfer
from pycontainerd.api import errdefs
from pycontainerd.images import platforms
from pycontainerd.transfer._archive import (
    Archive,
    familiar,
    image_name,
    layer_media_type,
    ref_object,
)
from tests import imagebuild

HOST = platforms.only(platforms.default_platform())


def test_familiar_names_as_docker_prints_them() -> None:
    assert familiar("docker.io/library/busybox:1") == "busybox:1"
    assert familiar("docker.io/me/app:2") == "me/app:2"
    assert familiar("docker.io/library/a/b:3") == "library/a/b:3"
    assert familiar("127.0.0.1:5000/x/y:1") == "127.0.0.1:5000/x/y:1"


def test_ref_object_is_the_tag_part() -> None:
    assert ref_object("example.com/app:1") == "1"
    digest = "sha256:" + "a" * 64
    assert ref_object(f"example.com/app:1@{digest}") == f"1@{digest}"
    assert ref_object("not a reference") == "not a reference"


def test_image_name_as_containerd_imports_it() -> None:
    full = {transfer.ANNOTATION_IMAGE_NAME: "example.com/a:1", transfer.ANNOTATION_REF_NAME: "1"}
    assert image_name(full, "") == "example.com/a:1"
    assert image_name({transfer.ANNOTATION_REF_NAME: "v2"}, "example.com/base") == (
        "example.com/base:v2"
    )
    assert image_name({transfer.ANNOTATION_REF_NAME: "example.com/x:3"}, "") == "example.com/x:3"
    assert image_name({transfer.ANNOTATION_REF_NAME: "v2"}, "") == ""
    assert image_name({}, "example.com/base") == ""


def test_layer_media_type_from_magic() -> None:
    assert layer_media_type(b"\x1f\x8b\x08\x00") == images.MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_GZIP
    assert layer_media_type(b"\x28\xb5\x2f\xfd") == images.MEDIA_TYPE_OCI_LAYER_ZSTD
    assert layer_media_type(b"bin/") == images.MEDIA_TYPE_DOCKER_SCHEMA2_LAYER


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "blobs/../../x"])
def test_archive_refuses_unsafe_member_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(errdefs.InvalidArgument, match="unsafe name"):
        Archive(_tar(tmp_path / "bad.tar", {name: b"x"}))


def test_archive_of_a_missing_or_non_tar_file(tmp_path: Path) -> None:
    with pytest.raises(errdefs.NotFound):
        Archive(tmp_path / "absent.tar")
    (tmp_path / "plain").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(errdefs.InvalidArgument, match="not a tar"):
        Archive(tmp_path / "plain")


async def test_import_then_export_round_trip(stores: transfer.Stores, tmp_path: Path) -> None:
    built = imagebuild.busybox_image(for_platforms=("linux/amd64", "linux/arm64"))
    built.write_oci_layout(tmp_path / "layout", tag="7")
    members = {
        str(p.relative_to(tmp_path / "layout")): p.read_bytes()
        for p in sorted((tmp_path / "layout").glob("**/*"))
        if p.is_file()
    }
    source = _tar(tmp_path / "in.tar", members)

    [rec] = await transfer.import_(
        stores, source, matcher=HOST, base_name="example.com/bb", all_platforms=True, unpack=False
    )
    assert rec.name == "example.com/bb:7"
    assert rec.target.digest == built.target.desc.digest
    owned = {i.digest for i in stores.content(None).walk()}
    assert owned == {b.desc.digest for b in built.blobs}
    index = stores.content(None).info(built.target.desc.digest)
    assert set(index.labels.values()) == {m.desc.digest for m in built.manifests}

    out = tmp_path / "out.tar"
    [again] = await transfer.export(stores, out, [rec.name], matcher=HOST, all_platforms=True)
    assert again.name == rec.name
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        index_json = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
    assert names == {"oci-layout", "index.json", "manifest.json"} | {
        f"blobs/sha256/{b.desc.digest.split(':')[1]}" for b in built.blobs
    }
    assert index_json["manifests"][0]["annotations"] == {
        transfer.ANNOTATION_IMAGE_NAME: "example.com/bb:7",
        transfer.ANNOTATION_REF_NAME: "7",
    }
    # the job's own lease is gone
    assert stores.runner.view(lambda q: q.execute("SELECT COUNT(*) FROM leases").fetchone()) == (0,)


async def test_export_of_an_unknown_image(stores: transfer.Stores, tmp_path: Path) -> None:
    with pytest.raises(errdefs.NotFound):
        await transfer.export(stores, tmp_path / "x.tar", ["example.com/none:1"], matcher=HOST)
    with pytest.raises(errdefs.InvalidArgument):
        await transfer.export(stores, tmp_path / "x.tar", [], matcher=HOST)
    assert not (tmp_path / "x.tar").exists()


async def test_export_into_a_missing_directory(stores: transfer.Stores, tmp_path: Path) -> None:
    built = imagebuild.busybox_image()
    built.write_oci_layout(tmp_path / "layout", tag="1")
    members = {
        str(p.relative_to(tmp_path / "layout")): p.read_bytes()
        for p in sorted((tmp_path / "layout").glob("**/*"))
        if p.is_file()
    }
    source = _tar(tmp_path / "in.tar", members)
    [rec] = await transfer.import_(
        stores, source, matcher=HOST, base_name="example.com/one", unpack=False
    )
    with pytest.raises(errdefs.NotFound, match="export to"):
        await transfer.export(stores, tmp_path / "no" / "x.tar", [rec.name], matcher=HOST)
